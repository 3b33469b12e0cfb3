"""Whitespace, hard wraps, hyphenation and page furniture: raw extracted text to clean paragraphs.

The result has one paragraph per line, paragraphs separated by exactly ``"\\n\\n"``, no trailing spaces.
Work is done with compiled regexes over the whole text plus one pass over lines (never per character).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

from pipeline.documents.headings import is_heading_line
from pipeline.language import SPEAKER_LABEL, transcript_lines
from pipeline.scripts import is_cjk_char
from pipeline.transcript_formats import as_turn_lines

_CHARACTER_FIXES = str.maketrans(
    {"\u2028": "\n", "\u2029": "\n", "\x0c": "\n", "\x0b": "\n", "\x85": "\n",
     "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"}
)  # fmt: skip
_NEEDS_FIXES = re.compile("[" + "".join(chr(c) for c in _CHARACTER_FIXES) + "]")
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufeff\u200b\u200c\u200d\u2060\u00ad]")
# Runs of horizontal space after a visible character; leading indentation is kept for paragraph detection.
# (A single plain space, by far the most common run, is left alone: matching it only to write it back is slow.)
_SPACE_CHARS = " \t\u00a0\u2000-\u200a\u202f\u205f"
_OTHER_SPACE = re.compile("[" + _SPACE_CHARS[1:] + "]")  # horizontal space other than a plain space
# A space character after a visible one: a plain space needs more space after it, any other space does not.
_INNER_SPACE = re.compile(
    f"[{_SPACE_CHARS}](?<=\\S[{_SPACE_CHARS}])(?:(?<=\\S )[{_SPACE_CHARS}]+|(?<! )[{_SPACE_CHARS}]*)"
)
_SPACE_RUN = re.compile("  +")
# Stripped from each line's end (str.rstrip per line is several times faster than a multi-line regex).
_TRAILING_CHARS = " \t\u00a0\u3000\u202f\u205f" + "".join(chr(c) for c in range(0x2000, 0x200B))
_LEADING_SPACE = " \t\u00a0\u3000"
_LIST_ITEM = re.compile(r"(?:[-*+•·▪]\s|\d{1,3}[.)]\s|\|)")
_PARAGRAPH_END = tuple('.!?:;"”’)]。！？：；」』）…')
# A PDF line shorter than this share of the typical line length, ending a sentence, ends its paragraph.
_SHORT_LINE_RATIO = 0.8
_PAGE_NUMBER = re.compile(
    r"(?:[Pp]age|PAGE|[Pp]\.|[Pp]g\.)?\s*[-–—]?\s*(?:\d{1,4}|[ivxlc]{1,6})\s*[-–—]?(?:\s*(?:/|of)\s*\d{1,4})?"
    r"|第\s*\d{1,4}\s*页(?:\s*共\s*\d{1,4}\s*页)?"
)
_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")
# Lines at the top/bottom of each page that are checked for running headers and footers.
_EDGE_LINES = 3
_RUNNING_SHARE = 0.4
_MIN_PAGES_FOR_RUNNING = 3
# Long lines whose first characters (digits masked) recur at a page edge are running lines too,
# e.g. a printer's slug that ends differently on pages with figures.
_RUNNING_PREFIX_CHARS = 24
_BLOCK_CHARS = 1 << 20  # long texts are normalised in blocks of about this many characters
# Two line breaks, each in any convention (a CR before an LF is never a break of its own).
_BLANK_LINE = re.compile(r"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
# A block whose lines mostly open with a speaker label ("Project Manager: ", "说话人1：") is a transcript:
# each turn stays a paragraph of its own instead of being rejoined as a hard-wrapped line.
_TRANSCRIPT_SHARE = 0.6
# Text written one paragraph a line, with no blank line between (a word processor's export, a dataset's
# "\n"-joined paragraphs): a hard wrap never leaves a line this long, so where such lines carry most of a
# block's text every line is a paragraph of its own, and a short line between them (a section title) stays
# one too instead of running into the next paragraph's first sentence.
# Words (spaces) count, not characters: unspaced scripts (Chinese, Japanese) keep their line handling.
_PARAGRAPH_LINE = 150
_PARAGRAPH_LINE_SPACES = 20
_PARAGRAPH_LINE_SHARE = 0.5


def normalise_text(text: str, *, markdown: bool = False, pdf_lines: bool = False) -> str:
    """Clean ``text``: unify newlines, collapse spaces, rejoin hyphenated words and hard-wrapped lines.

    Args:
        text: raw text (any newline convention).
        markdown: treat ``#`` lines as headings (kept as their own paragraphs).
        pdf_lines: lines come from a PDF page, where paragraphs are not separated by blank lines, so a
            short line that ends a sentence also ends its paragraph.

    Returns:
        Paragraphs, one per line, separated by exactly ``"\\n\\n"``; CJK lines are joined without a space.
    """
    return "\n\n".join(normalise_blocks(text, markdown=markdown, pdf_lines=pdf_lines))


def normalise_blocks(text: str, *, markdown: bool = False, pdf_lines: bool = False) -> list[str]:
    """``normalise_text`` as consecutive pieces to be joined with ``"\\n\\n"`` (none of them empty)."""
    if pdf_lines:
        whole = _normalise_block(_unified(text), markdown=markdown, pdf_lines=True)
        return [whole] if whole else []
    return list(iter_normalised(text, 0, len(text), markdown=markdown))


def iter_normalised(
    text: str,
    start: int,
    end: int,
    *,
    markdown: bool = False,
    clean: Callable[[str], str] | None = None,
    keep_whole: Sequence[tuple[int, int]] = (),
) -> Iterator[str]:
    """``normalise_blocks`` of ``text[start:end]``, block by block, without a whole copy of the span.

    A long span goes in blocks of about ``_BLOCK_CHARS``, each ending at a blank line in any newline convention
    (no paragraph spans one) and outside every ``keep_whole`` span (sorted ``(start, end)`` offsets of ``text``,
    e.g. what ``clean`` removes); each block is sliced, its newlines unified, ``clean``-ed and normalised, so
    temporaries exist for one block at a time (the caller may store each before the next is made) and the
    caller's raw text is never copied whole.
    """
    firsts = [a for a, _ in keep_whole]
    pos = start
    while pos < end:
        cut = end
        at = pos + _BLOCK_CHARS
        while at < end:
            found = _BLANK_LINE.search(text, at, end)
            cut = end if found is None else found.end()
            inside = bisect_right(firsts, cut - 1) - 1
            if inside < 0 or keep_whole[inside][1] <= cut:
                break
            at = cut = keep_whole[inside][1]  # a block boundary never falls inside a span kept whole
        block = _unified(text[pos:cut])
        if clean is not None:
            block = clean(block)
        piece = _normalise_block(block, markdown=markdown, pdf_lines=False)
        if piece:
            yield piece
        pos = cut


def _unified(text: str) -> str:
    """``text`` with every newline as ``"\\n"``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_transcript(lines: list[str]) -> bool:
    """Most non-empty lines open with a speaker label (checked on the first lines: books are long)."""
    return transcript_lines([line for line in lines[:2000] if line.strip()], share=_TRANSCRIPT_SHARE)


def _normalise_block(text: str, *, markdown: bool, pdf_lines: bool) -> str:
    """``normalise_text`` of text whose newlines are already "\\n"."""
    if _NEEDS_FIXES.search(text):  # rare; translate() walks every character even when nothing changes
        text = text.translate(_CHARACTER_FIXES)
    text = text.replace("\u00ad\n", "-\n")  # a soft hyphen at a line end is a hyphenation point
    if _INVISIBLE.search(text):
        text = _INVISIBLE.sub("", text)
    text = _collapse_inner_space(as_turn_lines(text))  # subtitles, clocked turns: "Name: text" lines
    lines = [line.rstrip(_TRAILING_CHARS) for line in text.split("\n")]
    short_line = _short_line_threshold(lines) if pdf_lines else 0
    turns = _is_transcript(lines)
    line_paragraphs = not pdf_lines and _lines_are_paragraphs(lines)
    paragraphs: list[str] = []
    current: list[str] = []
    previous_indent = 0
    previous_line = ""
    for raw in lines:
        content = raw.lstrip(_LEADING_SPACE)
        if not content:
            if current:
                paragraphs.append("".join(current))
                current = []
            continue
        if is_heading_line(content, markdown=markdown):
            if current:
                paragraphs.append("".join(current))
                current = []
            paragraphs.append(content)
            previous_line = ""
            continue
        indent = len(raw) - len(content)
        starts_paragraph = (
            not current
            or raw[0] == "\u3000"  # CJK paragraphs open with an ideographic-space indent
            or indent > previous_indent
            or _LIST_ITEM.match(content) is not None
            or (turns and SPEAKER_LABEL.match(content) is not None)
            or line_paragraphs
            or (
                short_line > 0
                and len(previous_line) < short_line
                and previous_line.endswith(_PARAGRAPH_END)
            )
        )
        if starts_paragraph:
            if current:
                paragraphs.append("".join(current))
            current = [content]
        else:
            _join(current, content)
        previous_indent = indent
        previous_line = content
    if current:
        paragraphs.append("".join(current))
    return "\n\n".join(paragraphs)


def _lines_are_paragraphs(lines: list[str]) -> bool:
    """Most of the text is in lines longer than any hard wrap (two at least): each line is a paragraph."""
    long = [len(line) for line in lines if len(line) > _PARAGRAPH_LINE and line.count(" ") >= _PARAGRAPH_LINE_SPACES]
    return len(long) >= 2 and sum(long) >= _PARAGRAPH_LINE_SHARE * sum(len(line) for line in lines)


def strip_page_furniture(pages: list[str]) -> list[str]:
    """Drop running headers/footers and page numbers from the first/last lines of each page.

    A line (digits masked; long lines by their first 24 characters) that opens or closes at least 40%
    of the pages (3+ pages) is a running header/footer; a lone number, "Page N", "- N -" or "N of M"
    at a page edge is a page number.
    """
    split_pages = [page.replace("\r\n", "\n").replace("\r", "\n").split("\n") for page in pages]
    edges = [_edge_indexes(lines) for lines in split_pages]
    top_counts: Counter[str] = Counter()
    bottom_counts: Counter[str] = Counter()
    for lines, (top, bottom) in zip(split_pages, edges, strict=True):
        top_counts.update({key for i in top for key in _running_keys(lines[i])})
        bottom_counts.update({key for i in bottom for key in _running_keys(lines[i])})
    if len(pages) >= _MIN_PAGES_FOR_RUNNING:
        threshold = max(_MIN_PAGES_FOR_RUNNING, math.ceil(len(pages) * _RUNNING_SHARE))
    else:
        threshold = len(pages) + 1  # too few pages to tell a running line from content
    cleaned: list[str] = []
    for lines, (top, bottom) in zip(split_pages, edges, strict=True):
        drop = {i for i in top if _is_furniture(lines[i], top_counts, threshold)}
        drop |= {i for i in bottom if _is_furniture(lines[i], bottom_counts, threshold)}
        cleaned.append("\n".join(line for i, line in enumerate(lines) if i not in drop))
    return cleaned


def _collapse_inner_space(text: str) -> str:
    """Each run of horizontal space after a visible character becomes one space (``_INNER_SPACE``).

    Text with plain spaces only (most) takes a literal search for two spaces, several times faster than
    trying the pattern at every space.
    """
    if _OTHER_SPACE.search(text):
        return _INNER_SPACE.sub(" ", text)

    def one_space(match: re.Match[str]) -> str:
        start = match.start()
        return " " if start > 0 and not text[start - 1].isspace() else match.group(0)

    return _SPACE_RUN.sub(one_space, text)


def _join(current: list[str], content: str) -> None:
    """Append a wrapped continuation line to the paragraph being built."""
    last = current[-1]
    tail = last[-1]
    if tail == "-" and len(last) >= 2 and last[-2].isalnum() and not last.endswith("--"):
        if content[0].islower():
            current[-1] = last[:-1]  # "exam-" + "ple" -> "example"
        current.append(content)  # "Lucene-" + "BM25" keeps its hyphen
    elif is_cjk_char(tail) or is_cjk_char(content[0]):
        current.append(content)
    else:
        current.append(" ")
        current.append(content)


def _short_line_threshold(lines: list[str]) -> int:
    """Length under which a sentence-ending PDF line closes its paragraph (from the typical line)."""
    lengths = sorted(len(line.strip()) for line in lines if line.strip())
    if len(lengths) < 5:
        return 0
    typical = lengths[int(len(lengths) * 0.75)]
    return int(typical * _SHORT_LINE_RATIO)


def _edge_indexes(lines: list[str]) -> tuple[list[int], list[int]]:
    """Indexes of the first and last few non-empty lines of a page."""
    nonempty = [i for i, line in enumerate(lines) if line.strip()]
    return nonempty[:_EDGE_LINES], nonempty[-_EDGE_LINES:]


def _running_keys(line: str) -> tuple[str, ...]:
    """The masked line, plus its masked opening for long lines (running lines with a varying tail)."""
    masked = _SPACES.sub(" ", _DIGITS.sub("#", line.strip().lower()))
    if len(masked) > _RUNNING_PREFIX_CHARS:
        return masked, "prefix:" + masked[:_RUNNING_PREFIX_CHARS]
    return (masked,)


def _is_furniture(line: str, counts: Counter[str], threshold: int) -> bool:
    return _is_page_number(line) or any(counts[key] >= threshold for key in _running_keys(line))


def _is_page_number(line: str) -> bool:
    return _PAGE_NUMBER.fullmatch(line.strip()) is not None
