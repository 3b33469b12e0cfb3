"""load_document: pick the reader by file type, normalise, find structure, build the Document."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

from pipeline.documents.assemble import TextBuilder
from pipeline.documents.epub import EpubPart, read_epub
from pipeline.documents.gutenberg import book_spans, drop_illustrations, illustration_spans
from pipeline.documents.headings import Heading, build_sections, find_headings
from pipeline.documents.model import Document, Page, Section
from pipeline.documents.normalise import iter_normalised, normalise_text, strip_page_furniture
from pipeline.documents.pdf import OutlineEntry, read_pdf
from pipeline.documents.text import decode_text
from pipeline.errors import (
    CorruptDocumentError,
    DocumentNotFoundError,
    EmptyDocumentError,
    UnsupportedDocumentError,
)
from pipeline.language import detect_language
from pipeline.memory import fix_mmap_threshold_once

logger = logging.getLogger("tome.documents")

SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown", ".pdf", ".epub", ".vtt", ".srt")
_SUBTITLE_SUFFIXES = (".vtt", ".srt")  # text: their cues read as "Name: text" turns (pipeline.transcript_formats)
_MARKDOWN_SUFFIXES = (".md", ".markdown")
# The title of the text before a document's first heading, in the document's language where the report's own
# labels are in it too (elsewhere English, as those labels are).
_FRONT_MATTER = {"zh": "卷首", "ja": "前付け", "ko": "머리말"}
_PART_SEPARATOR = "\n\n"
_MAX_TITLE_CHARS = 80
_WORD_EXPORT_PREFIX = re.compile(r"^Microsoft (?:Word|PowerPoint) - ")
_SPACES = re.compile(r"\s+")
# From this size on, loading sets glibc's mmap threshold first (pipeline.memory), as the CLI does at start.
_BIG_FILE_BYTES = 4 << 20


def load_document(path: str | Path, *, password: str | None = None, encoding: str | None = None) -> Document:
    """Read a .txt, .md, .pdf, .epub (or .vtt/.srt subtitles) file into a normalised :class:`Document`.

    Args:
        path: the file to read.
        password: user password for an encrypted PDF (PDFs with an empty user password open without it).
        encoding: force this codec for .txt/.md files instead of detecting one.

    Raises:
        DocumentNotFoundError: no such file.
        UnsupportedDocumentError: another file type.
        DocumentEncodingError, CorruptDocumentError, PasswordRequiredError, NoTextLayerError: see readers.
        EmptyDocumentError: no text left after normalising.
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():  # a folder, a device, a pipe: there, but nothing tome can read as a document
            raise DocumentNotFoundError(f"{path} is not a file: give a text, Markdown, PDF or EPUB file.")
        raise DocumentNotFoundError(f"No such file: {path}. Check the path and try again.")
    if path.stat().st_size >= _BIG_FILE_BYTES:
        fix_mmap_threshold_once()  # freed blocks of a big text go back to the system (library users included)
    suffix = path.suffix.lower()
    if suffix in (".txt", *_MARKDOWN_SUFFIXES, *_SUBTITLE_SUFFIXES):
        return _load_text(path, markdown=suffix in _MARKDOWN_SUFFIXES, encoding=encoding)
    if suffix == ".pdf":
        return _load_pdf(path, password=password)
    if suffix == ".epub":
        return _load_epub(path)
    raise UnsupportedDocumentError(
        f"tome cannot read '{suffix or path.name}' files ({path}). "
        f"Supported types: {', '.join(SUPPORTED_SUFFIXES)}."
    )


def _load_text(path: Path, *, markdown: bool, encoding: str | None) -> Document:
    decoded = decode_text(path.read_bytes(), path=path, encoding=encoding)
    for warning in decoded.warnings:
        logger.warning(warning)
    warnings, raw = decoded.warnings, [decoded.text]
    del decoded  # ``raw`` holds the only reference: _from_raw frees it before joining the normalised text
    return replace(_from_raw(path, raw, markdown=markdown), warnings=warnings)


def document_from_text(path: str | Path, text: str, *, source_format: str = "txt") -> Document:
    """A Document from text extracted elsewhere (e.g. by the provider's file-extract service)."""
    return replace(_from_raw(Path(path), [text], markdown=False), source_format=source_format)


def _from_raw(path: Path, holder: list[str], *, markdown: bool) -> Document:
    """The Document of the raw text in ``holder`` (a one-item list this empties, so the raw text can be freed)."""
    raw = holder.pop()
    # Books, illustrations and normalisation block by block over the raw text (no whole-text copy per step); the
    # blocks are kept as UTF-8 (pipeline.documents.assemble), so a big text is held about once at its width: raw
    # + UTF-8 blocks, then UTF-8 + text.
    spans, gutenberg_title = book_spans(raw)
    joined = TextBuilder()
    for start, end in spans:
        cut = illustration_spans(raw, start, end)
        clean = drop_illustrations if cut else None
        for block in iter_normalised(raw, start, end, markdown=markdown, clean=clean, keep_whole=cut):
            if joined:
                joined.append(_PART_SEPARATOR)
            joined.append(block)
    del raw
    text = joined.text()
    del joined
    _require_text(text, path)
    headings = find_headings(text, markdown=markdown)
    title = gutenberg_title or _markdown_title(headings, markdown) or _leading_title(text, headings)
    language = detect_language(text)
    sections = build_sections(text, headings, front_title=title or _front_matter(language))
    return Document(
        path=path,
        text=text,
        title=title or _stem_title(path),
        language=language,
        sections=sections,
        source_format="md" if markdown else "txt",
    )


def _load_pdf(path: Path, *, password: str | None) -> Document:
    content = read_pdf(path, password=password)
    cleaned = strip_page_furniture(content.pages)
    if cleaned is not content.pages:
        content.pages.clear()  # the raw pages, as ``cleaned`` holds them from here
    joined = TextBuilder()
    pages: list[Page] = []
    for number, raw in enumerate(cleaned, start=1):
        page_text = normalise_text(raw, pdf_lines=True)
        cleaned[number - 1] = ""  # each raw page is freed once normalised
        if not page_text:
            continue
        if joined:
            joined.append(_PART_SEPARATOR)
        pages.append(Page(number=number, start=joined.offset, end=joined.offset + len(page_text)))
        joined.append(page_text)
    text = joined.text()
    _require_text(text, path)
    title = _clean_pdf_title(content.title)
    if content.outline:
        headings = _outline_headings(text, pages, content.outline)
        drop_contents = False
    else:
        headings = find_headings(text)
        drop_contents = True
    # No /Title: the first bookmark when it points at the first page, else a title-like opening line.
    title = title or next((e.title for e in content.outline if e.page_index == 0), None) or _leading_title(text, headings)
    language = detect_language(text)
    sections = build_sections(
        text, headings, front_title=title or _front_matter(language), drop_contents=drop_contents
    )
    return Document(
        path=path,
        text=text,
        title=title or _stem_title(path),
        language=language,
        sections=sections,
        pages=tuple(pages),
        source_format="pdf",
    )


def _load_epub(path: Path) -> Document:
    content = read_epub(path)
    warnings = _missing_warnings(path, content.missing, content.missing_text)
    joined = TextBuilder()
    sections: list[Section] = []
    parts = content.parts
    for i, part in enumerate(parts):
        part_text = normalise_text(part.text)
        parts[i] = EpubPart(part.title, "")  # each raw part is freed once normalised
        if not part_text:
            continue
        if joined:
            joined.append(_PART_SEPARATOR)
            # Sections are contiguous: the separator belongs to the section before it.
            last = sections[-1]
            sections[-1] = Section(title=last.title, start=last.start, end=joined.offset, level=last.level)
        sections.append(Section(title=part.title, start=joined.offset, end=joined.offset + len(part_text)))
        joined.append(part_text)
    text = joined.text()
    if not text.strip() and content.missing:
        raise CorruptDocumentError(
            f"{path} has no readable text: the archive lacks {_listing(content.missing)}; "
            "download or export it again."
        )
    _require_text(text, path)
    title = content.title or (sections[0].title if sections else None)
    return Document(
        path=path,
        text=text,
        title=title or _stem_title(path),
        language=detect_language(text),
        sections=tuple(sections),
        source_format="epub",
        warnings=warnings,
    )


def _missing_warnings(path: Path, missing: tuple[str, ...], text_parts: tuple[str, ...]) -> tuple[str, ...]:
    if not missing:
        return ()
    message = f"{path.name}: the EPUB lists {_listing(missing)} but the archive lacks them; read without them"
    if text_parts:
        message += f" ({len(text_parts)} of them chapters, whose text is missing from the summary)"
    logger.warning(message)
    return (message,)


def _listing(names: tuple[str, ...], shown: int = 3) -> str:
    head = ", ".join(names[:shown])
    return f"{len(names)} item(s) ({head}{', ...' if len(names) > shown else ''})"


def _outline_headings(text: str, pages: list[Page], outline: list[OutlineEntry]) -> list[Heading]:
    """Place each bookmark at its title on its page (or the page start when the title is not found)."""
    by_index = {page.number - 1: page for page in pages}
    headings: list[Heading] = []
    for entry in outline:
        page = by_index.get(entry.page_index)
        if page is None:
            # The bookmark points at a page without text: start at the next page that has some.
            later = [p for p in pages if p.number - 1 > entry.page_index]
            if not later:
                continue
            page = later[0]
        start = _find_title(text, entry.title, page.start, page.end)
        headings.append(Heading(title=entry.title, start=start, end=start, level=entry.level))
    headings.sort(key=lambda heading: heading.start)
    return headings


def _find_title(text: str, title: str, start: int, end: int) -> int:
    """Where ``title`` begins a line on the page (case- and spacing-insensitive), else the page start."""
    words = title.split()
    if not words:
        return start
    pattern = re.compile(r"\s*".join(re.escape(word) for word in words), re.IGNORECASE)
    match = pattern.search(text, start, end)
    if match is None:
        return start
    line_start = text.rfind("\n", start, match.start()) + 1
    return max(line_start, start)


def _require_text(text: str, path: Path) -> None:
    if not text.strip():
        raise EmptyDocumentError(f"{path} contains no text to summarise.")


def _markdown_title(headings: list[Heading], markdown: bool) -> str | None:
    if not markdown or not headings:
        return None
    top = min(heading.level for heading in headings)
    return next(heading.title for heading in headings if heading.level == top)


def _leading_title(text: str, headings: list[Heading]) -> str | None:
    """The opening paragraph when it reads as a title: short, not a chapter heading, not a sentence."""
    newline = text.find("\n")
    first = (text if newline < 0 else text[:newline]).strip()  # split() would copy the whole rest
    if headings and headings[0].start == 0:
        return None
    if not first or len(first) > _MAX_TITLE_CHARS or first.endswith((".", ",", ";", ":", "。", "，")):
        return None
    if not any(ch.isalpha() for ch in first):
        return None
    return first


def _clean_pdf_title(title: str | None) -> str | None:
    if not title:
        return None
    title = _WORD_EXPORT_PREFIX.sub("", title).strip()
    if title.lower().endswith((".doc", ".docx", ".pdf", ".tex", ".dvi")) or title.lower() == "untitled":
        return None
    return title or None


def _stem_title(path: Path) -> str:
    return _SPACES.sub(" ", path.stem.replace("_", " ")).strip() or path.name


def _front_matter(language: str) -> str:
    """What the text before a document's first heading is called, in ``language`` where tome has the word."""
    return _FRONT_MATTER.get(language, "Front matter")
