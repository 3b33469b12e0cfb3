"""Project Gutenberg furniture: the licence header/footer and ``[Illustration]`` markers."""

from __future__ import annotations

import re

from pipeline.documents.headings import is_heading_line

# A "*" at a line's start (the lookbehind after it): opening with a literal lets re skip ahead to each "*".
_START = re.compile(
    r"\*(?<![^\n]\*)(?:\*{2}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?(?:BOOK|TEXT)|END\*THE SMALL PRINT!)[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_END = re.compile(
    r"^(?:\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG"
    r"|End of (?:the )?Project Gutenberg(?:'s|’s)? (?:E-?book|E-?text))",
    re.IGNORECASE | re.MULTILINE,
)
_TITLE = re.compile(r"^\ufeff?Title:[ \t]*(?P<title>\S[^\r\n]*)", re.MULTILINE)
# What follows an end marker when it closes the file's last book: the licence, or the notes before it.
_LICENCE = re.compile(
    r"Updated editions will replace|FULL LICEN[CS]E|PROJECT GUTENBERG(?:-tm)? LICEN[CS]E|This file should be named"
    r"|Section 1\. General Terms|SMALL PRINT|Project Gutenberg(?:-tm)? (?:is|was) a registered trademark",
    re.IGNORECASE,
)
_LICENCE_WINDOW = 8000
_MIN_BOOK_CHARS = 500
# Where to look for a "Title:" line in a Gutenberg file without a START marker.
_HEADER_CHARS = 5000
# "[Illustration]", "[Illustration: caption]" and multi-line captions with one level of nested [...].
_ILLUSTRATION = re.compile(r"\[Illustration(?:[^\[\]]|\[[^\[\]]*\])*+\]")


def strip_boilerplate(text: str) -> tuple[str, str | None]:
    """Keep every book between Gutenberg's "*** START OF ..." and "*** END OF ..." markers, dropping each header
    and licence block (a file may hold several books, each with its own).

    Returns:
        The books' text, and the title from the first header's "Title:" line when there is one.
    """
    spans, title = book_spans(text)
    if spans == [(0, len(text))]:
        return text, title
    books = (text[a:b].strip("\n") for a, b in spans)
    return "\n\n".join(book for book in books if book.strip()), title


def book_spans(text: str) -> tuple[list[tuple[int, int]], str | None]:
    """Where the books of ``text`` are, as ``(start, end)`` spans (the whole text when it has no markers), and the
    title from the first header's "Title:" line when there is one: what :func:`strip_boilerplate` keeps, found
    without copying the text."""
    starts = [(m.start(), m.end(), True) for m in _START.finditer(text)]
    ends = [(m.start(), m.end(), False) for m in _END.finditer(text)]
    header = text[: starts[0][0]] if starts else text[:_HEADER_CHARS]
    title = _title(header) if starts or ends or "Project Gutenberg" in header else None
    if not starts and not ends:
        return [(0, len(text))], title
    books: list[tuple[int, int]] = []
    # Before the first marker is book text only when that marker is an END (a file whose header was cut off).
    inside = not starts or sorted(starts + ends)[0][2] is False
    cursor = 0
    markers = sorted(starts + ends)
    for index, (begin, finish, is_start) in enumerate(markers):
        if inside and (not is_start or begin > cursor):
            books.append((cursor, begin))
        # An end line followed by more book text (not a licence, not at once another marker) only separates
        # two books of a compilation.
        following = markers[index + 1][0] if index + 1 < len(markers) else None
        separator = (
            not is_start
            and following is not None
            and len(text[finish:following].strip()) > _MIN_BOOK_CHARS
            and _LICENCE.search(text, finish, min(following, finish + _LICENCE_WINDOW)) is None
        )
        inside = is_start or (inside and separator)
        cursor = finish
    if inside:
        books.append((cursor, len(text)))
    return books, title


def _title(header: str) -> str | None:
    """The "Title:" line of a Gutenberg header, with its indented continuation lines."""
    found = _TITLE.search(header)
    if found is None:
        return None
    parts = [found["title"].strip()]
    for line in header[found.end() :].lstrip("\r").split("\n")[1:]:
        if not line.strip() or not line[:1].isspace():
            break
        parts.append(line.strip())
    return " ".join(" ".join(parts).split()) or None


def drop_illustrations(text: str) -> str:
    """Remove illustration markers, keeping any chapter heading a caption block wraps ("Chapter I.]")."""
    if "[Illustration" not in text:
        return text
    return _ILLUSTRATION.sub(_kept_headings, text)


def illustration_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Where :func:`drop_illustrations` would cut in ``text[start:end]`` (a block boundary must not fall inside)."""
    return [m.span() for m in _ILLUSTRATION.finditer(text, start, end)]


def _kept_headings(match: re.Match[str]) -> str:
    inner = match.group(0)[len("[Illustration") : -1].lstrip(":")
    kept = [line.strip() for line in inner.split("\n") if is_heading_line(line.strip())]
    return "\n\n".join(kept)
