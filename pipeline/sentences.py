"""The one sentence splitter: lossless spans for every script (used by chunking, context, extraction, judging).

A sentence ends at . ! ? … (then closing quotes/brackets, then whitespace), at a CJK terminator 。！？；
(then closing quotes; no space needed), or at a blank line. A full stop does not end a sentence after a title
("Mr.", "Dr.", "St."), an initial ("J. R. Tolkien"), "e.g."/"i.e.", "No." before a number, or after a dotted
abbreviation, an ellipsis or a quoted cry when the next word is in lower case ("U.S. troops", "Wait... and",
'"Oh!" she said'). Decimals ("3.5") have no space
after the point, so they never end one. A CJK quote closed after a terminator keeps its quote mark (。」)
and, followed by a Japanese quotative particle (「ですね。」と言った), does not end the sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_CLOSERS = "\"'”’»)\\]」』）】〕〉》"
_BOUNDARY = re.compile(
    rf"(?P<western>\.\.\.|[.!?…‽؟۔।॥]+)(?P<wclose>[{_CLOSERS}]*)(?=\s|$)"
    rf"|(?P<cjk>[。！？；｡﹒﹔﹖﹗]+)(?P<cclose>[{_CLOSERS}]*)"
    r"|(?P<blank>\n[ \t\u3000\xa0]*\n)"
)
_WORD_BEFORE = re.compile(r"([^\W\d_]+(?:\.[^\W\d_]+)*)\Z")
_ITEM_NUMBER = re.compile(r"(?<![\w.,])\d{1,2}\Z")
_NEXT_WORD = re.compile(r"\s*[\"'“‘(\[«]*(\S)")
# Japanese quotative particles after a closed quote: 「そうですね。」と言った is one sentence.
_QUOTATIVE = re.compile("と|って|っと")
# Titles and abbreviations that are followed by a name or more of the sentence, never by a new sentence.
_TITLES = frozenset(
    ["mr", "mrs", "ms", "mssrs", "messrs", "dr", "prof", "rev", "revd", "hon", "st", "ste", "mt", "ft", "gen", "col", "capt", "cpt", "lt", "sgt", "maj", "adm", "gov", "sen", "rep", "jr", "sr", "mme", "mlle", "mm", "sra", "srta", "dra", "jan", "feb", "apr", "jun", "jul", "aug", "sept", "oct", "nov", "dec", "vs", "cf", "ca", "approx", "dept", "fig", "figs", "vol", "vols", "ch", "chap", "pp", "sec", "art", "eq", "eqs", "ref", "refs", "ed", "eds", "nr", "nos"]
)
_ALWAYS_INSIDE = frozenset({"e.g", "i.e", "cf", "viz", "a.k.a", "et al", "al"})
_GOES_ON = frozenset({"etc", "approx", "incl", "esp", "resp", "ca", "vs", "al"})
_BEFORE_NUMBER = frozenset({"no", "nos", "nr", "p", "pp", "vol", "ch", "art", "fig", "sec"})
_TRAILING_SPACE = " \t\r\n\u3000\xa0"
# After a dotted abbreviation ("U.S.", "D.C.") a capitalised word is most often the rest of a name ("U.S.
# Department of Agriculture"); a new sentence after one opens with a word like these.
_OPENERS_TEXT = (
    "the this that these those it its in a an as at for from he she they we on of some many most according "
    "however but and under since while when if to by with there such each other their also after before "
    "during although because both all no not one two"
)
_OPENERS = frozenset(_OPENERS_TEXT.split())


def sentence_ends(text: str, start: int = 0, end: int | None = None) -> Iterator[int]:
    """Offsets in ``text[start:end]`` where a sentence ends (after its terminator and closers)."""
    stop = len(text) if end is None else end
    for match in _BOUNDARY.finditer(text, start, stop):
        cut = match.end()
        if match["western"] is not None and not _western_ends(text, match, stop):
            continue
        if match["cjk"] is not None and match["cclose"] and _QUOTATIVE.match(text, cut) is not None:
            continue  # 「ですね。」と言った: the quote is part of the sentence that goes on
        yield cut


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences of ``text`` as ``(start, end)`` spans that tile it exactly (whitespace stays with the left one)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in sentence_ends(text):
        while cut < len(text) and text[cut] in _TRAILING_SPACE:
            cut += 1
        if cut > start:
            spans.append((start, cut))
            start = cut
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def split_sentences(text: str) -> list[str]:
    """Non-empty sentences of ``text`` (stripped)."""
    return [s for a, b in sentence_spans(text) if (s := text[a:b].strip())]


def _western_ends(text: str, match: re.Match[str], stop: int) -> bool:
    """Whether a . ! ? … followed by whitespace really ends the sentence."""
    following = _NEXT_WORD.match(text, match.end(), stop)
    if following is None:
        return True  # end of the text
    first = following.group(1)
    mark = match["western"]
    if mark != ".":
        # "Wait... and then", '"Oh!" she said': an ellipsis or a quoted cry goes on in lower case.
        return not (first.islower() and (mark in ("...", "…") or match["wclose"]))
    before = _WORD_BEFORE.search(text, max(0, match.start() - 40), match.start())
    if before is None:
        # "This report examines: 1. private practices, 2. mechanisms...": an item's number, not an end.
        return not (first.islower() and _ITEM_NUMBER.search(text, max(0, match.start() - 4), match.start()))
    word = before.group(1)
    lower = word.lower()
    if lower in _ALWAYS_INSIDE:
        return False
    if first.isdigit() or first == "§":
        # "No. 5", "vol. 3"; a law's citation: "P.L. 117-58", "H.R. 1402", "S. 4132", "42 U.S.C. §3121".
        return lower not in _BEFORE_NUMBER and "." not in word and not (len(word) == 1 and word.isupper())
    if lower in _TITLES and lower not in _BEFORE_NUMBER:
        return False  # "Mr. Bingley", "St. James"
    if len(word) == 1 and word.isupper():
        return False  # an initial: "J. R. R. Tolkien"
    if "." in word and first.isupper():
        # "the U.S. Department of Agriculture" goes on; "in the U.S. The agency said" ends.
        opener = re.match(r"[^\W\d_]+", text[following.start(1) : following.start(1) + 20])
        return opener is not None and opener.group(0).lower() in _OPENERS
    # A dotted abbreviation or "etc." goes on when the next word is in lower case ("U.S. troops").
    return not (first.islower() and ("." in word or lower in _GOES_ON))


__all__ = ["sentence_ends", "sentence_spans", "split_sentences"]


_ENDS_SENTENCE = re.compile(r"[.!?。！？…][\"'”’»」』)\]]*\s*$")


def complete_sentences(sentences: list[str]) -> list[int]:
    """Indices of the sentences that end in a full stop, ! or ? where most do; else all of them.

    A written piece without one (a PDF's heading line, "as follows:", a table cell) says little alone and,
    placed before another sentence, reads as one sentence with it.
    """
    ended = [i for i, s in enumerate(sentences) if _ENDS_SENTENCE.search(s)]
    return ended if len(ended) >= 0.5 * len(sentences) else list(range(len(sentences)))
