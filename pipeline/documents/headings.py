"""Structure detection: heading paragraphs in normalised text become contiguous Sections.

Normalised text has one paragraph per line, so a heading is a whole line: a Markdown ``#`` heading, an
English "CHAPTER IV" / "Chapter 4: Title" line, or a Chinese "第三章" / "第一回 ..." line. Contents blocks
(a run of headings with no body between them) are dropped so they do not become empty chapters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.documents.model import Section
from pipeline.scripts import has_cjk

# A heading whose body (up to the next heading) has fewer non-space characters than this is a contents
# entry or a bare part title, not a section of its own.
MIN_BODY_CHARS = 40
# Headings closer together than this (in characters) form a run; a run of 3+ is a contents block.
_CONTENTS_GAP_CHARS = 200
_MAX_EN_HEADING_CHARS = 100
_MAX_ZH_HEADING_CHARS = 60
_MAX_SUBTITLE_CHARS = 80
_MAX_ZH_SUBTITLE_CHARS = 30

_ROMAN = r"[IVXLCDM]+|[ivxlcdm]+"
_EN_HEADING = re.compile(
    r"(?P<label>CHAPTER|Chapter|BOOK|Book|PART|Part|VOLUME|Volume|STAVE|Stave)\s+"
    rf"(?P<num>(?:{_ROMAN}|\d+|[A-Za-z]+(?:-[A-Za-z]+)?)(?![A-Za-z0-9]))"
    r"\.?\]?(?P<sep>\s*[:.\-–—]\s*|\s+)?(?P<title>.*)"
)
_EN_STANDALONE = re.compile(
    r"(?P<label>PROLOGUE|Prologue|EPILOGUE|Epilogue|PREFACE|Preface|INTRODUCTION|Introduction|"
    r"AFTERWORD|Afterword|APPENDIX|Appendix)\.?"
)
_ZH_NUM = "一二三四五六七八九十百千零〇○两兩0-9０-９"
_ZH_HEADING = re.compile(
    rf"第(?P<num>[{_ZH_NUM}]{{1,8}})(?P<label>[回章卷节節篇部集幕])(?:[\s:：.、]*(?P<title>.*))?"
)
_ZH_STANDALONE = re.compile(r"(?P<label>楔子|序言|序章|前言|引子|尾声|尾聲|后记|後記)")
_STANDALONE_FIRST = frozenset("PEIA楔序前引尾后後")  # first letters of _EN_STANDALONE's and _ZH_STANDALONE's labels
_HEADING_FIRST = frozenset("#第CBPVS") | _STANDALONE_FIRST  # every heading opens with one of these
_MD_HEADING = re.compile(r"(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*#*")

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "first": 1, "second": 2, "third": 3,
    "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
}  # fmt: skip
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_ZH_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
_SENTENCE_END = tuple(".,;:。，；：、")
_QUOTES = tuple("\"'“”‘’「『(")
_CHAPTER_TITLE = re.compile(r"(?:chapter|stave)\s+\S+|第\S{1,8}?[回章]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Heading:
    """A heading found in the text: its span [start, end) (including an absorbed subtitle line)."""

    title: str
    start: int
    end: int
    level: int = 1
    key: tuple[str, int | str] | None = None  # (label, number), or ("standalone", name); finds contents entries


def looks_like_chapter(title: str) -> bool:
    """True for section titles such as "CHAPTER IV. ...", "Chapter 4" or "第三章" / "第一回 ..."."""
    return _CHAPTER_TITLE.match(title.strip()) is not None


def is_heading_line(line: str, *, markdown: bool = False) -> bool:
    """True if the stripped line is a heading on its own (used to keep it out of joined paragraphs)."""
    return _classify(line, markdown=markdown) is not None


def find_headings(text: str, *, markdown: bool = False) -> list[Heading]:
    """Every heading paragraph in normalised ``text`` (one paragraph per line), in order."""
    headings: list[Heading] = []
    pos = 0
    length = len(text)
    while pos < length:
        end = text.find("\n", pos)
        if end == -1:
            end = length
        found = _classify(text[pos:end], markdown=markdown)
        if found is not None:
            title, level, key, wants_subtitle = found
            heading_end = end
            if wants_subtitle:
                subtitle, subtitle_end = _subtitle_after(text, end, markdown=markdown)
                if subtitle:
                    title = f"{title} {subtitle}" if has_cjk(title) else f"{title}. {subtitle}"
                    heading_end = subtitle_end
            headings.append(Heading(title=title, start=pos, end=heading_end, level=level, key=key))
            end = heading_end
        pos = end + 1
    return headings


def build_sections(
    text: str, headings: list[Heading], *, front_title: str, drop_contents: bool = True
) -> tuple[Section, ...]:
    """Contiguous, sorted sections covering ``text``: front matter, then one per kept heading.

    With ``drop_contents``, headings without body text (contents entries, bare part titles) are dropped,
    so their lines fold into the section before them.
    """
    ordered = sorted(headings, key=lambda h: h.start)
    kept = _drop_contents(text, ordered) if drop_contents else _dedupe_starts(ordered)
    if not text:
        return ()
    if not kept:
        return (Section(title=front_title, start=0, end=len(text), level=1),)
    sections: list[Section] = []
    first_start = kept[0].start
    if first_start > 0 and _body_chars(text, 0, first_start) >= MIN_BODY_CHARS:
        sections.append(Section(title=front_title, start=0, end=first_start, level=1))
    else:
        # Tiny front matter (a title line, a blank) belongs to the first section.
        first_start = 0
    for index, heading in enumerate(kept):
        start = first_start if index == 0 else heading.start
        end = kept[index + 1].start if index + 1 < len(kept) else len(text)
        if end > start:
            sections.append(Section(title=heading.title, start=start, end=end, level=heading.level))
    return tuple(sections)


def _classify(line: str, *, markdown: bool) -> tuple[str, int, tuple[str, int | str] | None, bool] | None:
    """(title, level, key, wants_subtitle) when ``line`` is a heading, else None."""
    line = line.strip()
    if not line:
        return None
    first = line[0]
    if first not in _HEADING_FIRST:  # most lines are prose: one set lookup
        return None
    if first == "#":
        if not markdown:
            return None
        match = _MD_HEADING.fullmatch(line)
        if match is None:
            return None
        return match["title"], len(match["hashes"]), None, False
    if first == "第":
        if len(line) > _MAX_ZH_HEADING_CHARS:
            return None
        match = _ZH_HEADING.fullmatch(line)
        if match is None:
            return None
        title = (match["title"] or "").strip()
        if title.endswith(("。", "，", "；", "！", "？", "”", "」")):
            return None
        number = _zh_number(match["num"])
        label = match["label"]
        key = (label, number) if number is not None else None
        head = f"第{match['num']}{label}"
        return (f"{head} {title}" if title else head), 1, key, not title
    if len(line) > _MAX_EN_HEADING_CHARS:
        return None
    if first in "CBPVS":
        match = _EN_HEADING.fullmatch(line)
        if match is not None:
            return _classify_english(match)
    # Standalone headings open with one of these letters (checked first: most lines are prose).
    match = None
    if first in _STANDALONE_FIRST:
        match = _EN_STANDALONE.fullmatch(line) or _ZH_STANDALONE.fullmatch(line)
    if match is not None:
        # Keyed by name, so a contents list's last entry ("Epilogue") is known when the real one comes later.
        return line.rstrip("."), 1, ("standalone", line.rstrip(".").lower()), False
    return None


def _classify_english(match: re.Match[str]) -> tuple[str, int, tuple[str, int] | None, bool] | None:
    """Validate an English "Chapter N ..." match: a real number and a title-like remainder."""
    number = _en_number(match["num"])
    if number is None:
        return None
    title = match["title"].strip().rstrip("]").strip()
    separator = (match["sep"] or "").strip()
    if title:
        if title.endswith((",", ";")):
            return None
        # "Chapter 4 of the report says ..." is prose; a heading's own title is capitalised or set off.
        if not separator and not (title[0].isupper() or title[0].isdigit() or title[0] in _QUOTES):
            return None
    label = match["label"].lower()
    head = f"{match['label']} {match['num']}."
    return (f"{head} {title}" if title else head.rstrip(".")), 1, (label, number), not title


def _subtitle_after(text: str, end: int, *, markdown: bool) -> tuple[str, int]:
    """The short title paragraph right after a bare "CHAPTER I." line, and where it ends; else ("", end)."""
    if not text.startswith("\n\n", end):
        return "", end
    start = end + 2
    stop = text.find("\n", start)
    if stop == -1:
        return "", end  # a subtitle needs a body after it
    candidate = text[start:stop].strip()
    limit = _MAX_ZH_SUBTITLE_CHARS if has_cjk(candidate) else _MAX_SUBTITLE_CHARS
    if (
        not candidate
        or len(candidate) > limit
        or candidate.endswith(_SENTENCE_END)
        or candidate.startswith(_QUOTES)
        or _classify(candidate, markdown=markdown) is not None
    ):
        return "", end
    return candidate, stop


def _drop_contents(text: str, headings: list[Heading]) -> list[Heading]:
    """Drop contents-block entries: headings without body, and a run's last entry whose key recurs."""
    headings = _dedupe_starts(headings)
    count = len(headings)
    in_run = [False] * count
    run_of = [0] * count
    run_start = 0
    for index in range(1, count + 1):
        closes = index == count or headings[index].start - headings[index - 1].end > _CONTENTS_GAP_CHARS
        if closes:
            for member in range(run_start, index):
                run_of[member] = run_start
                in_run[member] = index - run_start >= 3
            run_start = index
    later_keys: set[tuple[str, int | str]] = set()
    recurs = [False] * count
    for index in range(count - 1, -1, -1):
        key = headings[index].key
        if key is not None:
            recurs[index] = key in later_keys
            later_keys.add(key)
    kept: list[Heading] = []
    for index, heading in enumerate(headings):
        next_start = headings[index + 1].start if index + 1 < count else len(text)
        if _body_chars(text, heading.end, next_start) < MIN_BODY_CHARS:
            continue
        last_of_run = in_run[index] and (index + 1 == count or run_of[index + 1] != run_of[index])
        if last_of_run and recurs[index]:
            continue
        kept.append(heading)
    return kept


def _dedupe_starts(headings: list[Heading]) -> list[Heading]:
    """One heading per start offset (the first given wins)."""
    result: list[Heading] = []
    for heading in headings:
        if not result or heading.start > result[-1].start:
            result.append(heading)
    return result


def _body_chars(text: str, start: int, end: int) -> int:
    """Non-whitespace characters in text[start:end] (capped early: only small counts matter)."""
    chunk = text[start : min(end, start + 4 * MIN_BODY_CHARS + 400)]
    return len(chunk) - chunk.count(" ") - chunk.count("\n")


def _en_number(token: str) -> int | None:
    """Arabic, Roman or English-word numeral to int, else None."""
    if token.isdigit():
        return int(token)
    upper = token.upper()
    if all(ch in _ROMAN_VALUES for ch in upper) and (token.isupper() or token.islower()):
        total = 0
        for index, ch in enumerate(upper):
            value = _ROMAN_VALUES[ch]
            nxt = _ROMAN_VALUES[upper[index + 1]] if index + 1 < len(upper) else 0
            total += -value if value < nxt else value
        return total if total > 0 else None
    parts = token.lower().split("-")
    if all(part in _NUMBER_WORDS for part in parts):
        return sum(_NUMBER_WORDS[part] for part in parts)
    return None


def _zh_number(token: str) -> int | None:
    """Chinese numeral ("十四", "一○○", "二十一") or digits to int."""
    token = token.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if token.isdigit():
        return int(token)
    if not any(ch in _ZH_UNITS for ch in token):
        # Positional style used by some editions: 一○ = 10, 一○○ = 100.
        digits = [_ZH_DIGITS.get(ch) for ch in token]
        if any(d is None for d in digits):
            return None
        return int("".join(str(d) for d in digits))
    total, current = 0, 0
    for ch in token:
        if ch in _ZH_DIGITS:
            current = _ZH_DIGITS[ch]
        elif ch in _ZH_UNITS:
            total += (current or 1) * _ZH_UNITS[ch]
            current = 0
        else:
            return None
    return total + current
