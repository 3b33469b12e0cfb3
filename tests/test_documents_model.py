"""Document span lookups (section titles, page ranges) and the inner-space rule of normalisation, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.documents.model import Document, Page, Section
from pipeline.documents.normalise import normalise_text

TEXT = "x" * 40


def _doc(sections: tuple[Section, ...] = (), pages: tuple[Page, ...] = ()) -> Document:
    return Document(path=Path("d.txt"), text=TEXT, title="d", language="en", sections=sections, pages=pages)


SECTIONS = (Section("A", 0, 10), Section("B", 10, 25), Section("C", 25, 40))
PAGES = (Page(1, 0, 12), Page(2, 12, 12), Page(3, 12, 30), Page(4, 30, 40))


@pytest.mark.parametrize(
    ("start", "end", "title"),
    [(0, 10, "A"), (5, 11, "A … B"), (0, 40, "A … C"), (10, 10, "B"), (24, 26, "B … C"), (39, 40, "C")],
)
def test_section_title_names_the_first_and_last_section_touched(start: int, end: int, title: str) -> None:
    assert _doc(SECTIONS).section_title(start, end) == title


def test_section_title_is_empty_without_sections_or_outside_them() -> None:
    assert _doc().section_title(0, 5) == ""
    assert _doc((Section("A", 10, 20),)).section_title(0, 5) == ""
    assert _doc((Section("A", 10, 20),)).section_title(25, 30) == ""


@pytest.mark.parametrize(
    ("start", "end", "pages"),
    [(0, 5, (1, 1)), (11, 13, (1, 3)), (12, 12, (3, 3)), (29, 31, (3, 4)), (0, 40, (1, 4)), (40, 41, None)],
)
def test_pages_for_names_the_first_and_last_page_touched(start: int, end: int, pages: tuple[int, int] | None) -> None:
    assert _doc(pages=PAGES).pages_for(start, end) == pages
    assert _doc().pages_for(start, end) is None


def test_pages_out_of_order_are_scanned() -> None:
    shuffled = (PAGES[2], PAGES[0], PAGES[3], PAGES[1])  # the whole text touches them in this order: 3, 1, 4, 2
    assert _doc(pages=shuffled).pages_for(0, 40) == (3, 2)
    assert _doc(pages=shuffled).pages_for(0, 5) == (1, 1)
    assert _doc(pages=shuffled).pages_for(40, 41) is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("one  two   three", "one two three"),  # plain spaces only
        ("one \t two\u00a0three\u2003 four", "one two three four"),  # other horizontal space
        ("a.  B", "a. B"),
    ],
)
def test_runs_of_inner_space_become_one_space(raw: str, clean: str) -> None:
    assert normalise_text(raw) == clean
