"""The loaded document (what every loader returns): normalised text plus its sections and page spans."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
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
        touched = [p.number for p in self.pages if p.start < max(end, start + 1) and p.end > start]
        return (touched[0], touched[-1]) if touched else None

    def section_title(self, start: int, end: int) -> str:
        """The title of the section(s) the span [start, end) touches: "A" or "A … B" ("" outside every section).

        The one place section titles are built: chunks, prompts and summary nodes all use it.
        """
        sections = self.sections
        if not sections:
            return ""
        i = bisect_right([s.end for s in sections], start)
        touched = [s for s in sections[i:] if s.start < max(end, start + 1)]
        if not touched:
            return ""
        first, last = touched[0].title, touched[-1].title
        return first if first == last else f"{first} … {last}"
