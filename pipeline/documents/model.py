"""The loaded document (what every loader returns): normalised text plus its sections and page spans."""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Section:
    """A titled part of the document (chapter, 回, heading) as a character span of ``Document.text``."""

    title: str
    start: int
    end: int
    level: int = 1


@dataclass(frozen=True, slots=True)
class Page:
    """One source page (PDFs; 1-based number) as a character span of ``Document.text``."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """Normalised text with structure. Sections and pages are sorted, non-overlapping spans."""

    path: Path
    text: str
    title: str
    language: str  # "en", "zh", ... detected from the text
    sections: tuple[Section, ...] = field(default_factory=tuple)
    pages: tuple[Page, ...] = field(default_factory=tuple)
    source_format: str = "txt"
    warnings: tuple[str, ...] = ()  # what was repaired or skipped while reading (shown to the user)

    def pages_for(self, start: int, end: int) -> tuple[int, int] | None:
        """First and last page number touched by the span [start, end), or None without pages."""
        first, stop = _touched(self._page_index, self.pages, start, end)
        return (self.pages[first].number, self.pages[stop - 1].number) if stop > first else None

    def section_title(self, start: int, end: int) -> str:
        """The title of the section(s) the span [start, end) touches: "A" or "A … B" ("" outside every section).

        The one place section titles are built: chunks, prompts and summary nodes all use it.
        """
        first, stop = _touched(self._section_index, self.sections, start, end)
        if stop <= first:
            return ""
        head, last = self.sections[first].title, self.sections[stop - 1].title
        return head if head == last else f"{head} … {last}"

    # Span lookups are binary searches (a 50 MB text has thousands of sections and chunks); the sorted
    # starts and ends are built once per document.
    @cached_property
    def _section_index(self) -> _SpanIndex | None:
        return _SpanIndex.of(self.sections)

    @cached_property
    def _page_index(self) -> _SpanIndex | None:
        return _SpanIndex.of(self.pages)


@dataclass(frozen=True, slots=True)
class _SpanIndex:
    """Starts and ends of spans sorted by both (None from ``of`` when they are not: then spans are scanned)."""

    starts: list[int]
    ends: list[int]

    @staticmethod
    def of(spans: Sequence[Section | Page]) -> _SpanIndex | None:
        starts, ends = [s.start for s in spans], [s.end for s in spans]
        ordered = all(a <= b for a, b in itertools.pairwise(starts)) and all(a <= b for a, b in itertools.pairwise(ends))
        return _SpanIndex(starts, ends) if ordered else None


def _touched(
    index: _SpanIndex | None, spans: Sequence[Section | Page], start: int, end: int
) -> tuple[int, int]:
    """The index range [first, stop) of the spans the span [start, end) touches (an empty one touches its start)."""
    bound = max(end, start + 1)
    if index is not None:
        first = bisect_right(index.ends, start)
        return first, max(first, bisect_left(index.starts, bound, first))
    touched = [i for i, s in enumerate(spans) if s.start < bound and s.end > start]
    return (touched[0], touched[-1] + 1) if touched else (0, 0)
