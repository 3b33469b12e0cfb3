"""Structure-aware chunking: split a Document into contiguous chunks that each fit the prompt room.

Guarantees (tested on tiny exact examples and on every corpus book):

- Nothing is dropped or duplicated: ``"".join(c.text for c in chunks) == doc.text``; chunk ``i`` ends where
  chunk ``i + 1`` starts.
- A chunk is a span: it holds the document's text by reference and slices its own ``text`` when asked (a plan of
  a 50 MB text does not keep a second copy of it).
- Every chunk's ``token_count`` is a real count of its text and is at most ``max_tokens`` (local tokens).
- Cuts prefer a section boundary, then a paragraph (blank line or indented line), then a sentence end
  (``. ! ?`` followed by space, or CJK ``。！？；``, each with closing quotes); a hard cut only falls inside a single
  sentence that is itself longer than the budget.
- Balanced: a section longer than the budget is split into ``k = ceil(tokens / budget)`` pieces of even size;
  short sections are packed together, fewest chunks first and then the most even sizes, so no chunk is a tiny tail.

A chunk that spans several sections is titled ``"First … Last"`` (first and last section titles it touches);
``section_index`` is the index in ``doc.sections`` of the first section it touches (-1 if it touches none).

How: the text is cut once into units (paragraphs; sentences inside paragraphs longer than a fine grain; hard
fragments inside over-long sentences), each unit is counted once, and every later decision uses prefix sums of
those counts. Counts of joined units are only nearly additive, so each final chunk is counted again and re-split
if it overflows.
"""

from __future__ import annotations

import math
import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from pipeline.documents.model import Document
from pipeline.errors import ChunkingError, EmptyDocumentError
from pipeline.packing import pack_groups
from pipeline.prompt_room import PromptRoom
from pipeline.span_memo import SpanMemo as SpanMemo  # re-exported: tests and callers import it from here
from pipeline.tokens import TokenCounter

# Boundary strength of the cut before a unit: higher is a better place to cut. Line breaks count only inside
# a sentence longer than the budget (verse, lists, tables), where the alternative is a hard cut.
_SECTION, _PARAGRAPH, _SENTENCE, _LINE, _HARD = 4, 3, 2, 1, 0
# Cost added to a cut's distance from the ideal position (as a share of the piece size) by strength.
_CUT_PENALTY = {_SECTION: -0.05, _PARAGRAPH: 0.0, _SENTENCE: 0.10, _LINE: 0.30, _HARD: 0.60}

_LINE_END = re.compile(r"\n\s*")
_SOFT_BREAK = re.compile(r"[\s,，、;:：]")


@dataclass(frozen=True, kw_only=True)
class Chunk:
    """A contiguous span of ``Document.text`` with its real token count (local tokens) and place.

    ``source`` is the document's whole text, shared (not copied); ``text`` slices the span from it on each use.
    """

    index: int
    start: int
    end: int
    token_count: int
    section_title: str
    section_index: int
    pages: tuple[int, int] | None
    source: str = field(repr=False, compare=False)

    @property
    def text(self) -> str:
        """The chunk's text (a new slice of ``source`` each time: callers that need it twice keep it)."""
        return self.source[self.start : self.end]

    def as_dict(self, *, with_text: bool = False) -> dict[str, Any]:
        """JSON-ready fields; the text only when asked for."""
        data: dict[str, Any] = {"index": self.index}
        if with_text:
            data["text"] = self.text
        data.update(
            start=self.start,
            end=self.end,
            token_count=self.token_count,
            section_title=self.section_title,
            section_index=self.section_index,
            pages=list(self.pages) if self.pages else None,
        )
        return data


@dataclass(frozen=True, slots=True)
class _Part:
    """A stretch of text under one section (or untitled text outside every section)."""

    start: int
    end: int
    section_index: int  # -1: outside every section


def chunk_document(
    doc: Document,
    counter: TokenCounter,
    max_tokens: int | PromptRoom,
    *,
    memo: SpanMemo | None = None,
) -> list[Chunk]:
    """Split ``doc.text`` into contiguous, balanced chunks of at most ``max_tokens`` local tokens each.

    Args:
        doc: the loaded document.
        counter: the local tokenizer (the model's encoding).
        memo: what an earlier call learnt about ``doc.text`` with ``counter`` (when several budgets are tried).
        max_tokens: the budget in LOCAL tokens, i.e. the provider budget divided by the model's calibration
            (``PromptRoom.max_local_tokens``); a PromptRoom may be passed instead.

    Returns:
        Chunks in order; see the module docstring for the guarantees.

    Raises:
        EmptyDocumentError: the document has no text.
        ChunkingError: ``max_tokens`` is too small to hold any text.
    """
    limit = max_tokens.max_local_tokens if isinstance(max_tokens, PromptRoom) else int(max_tokens)
    if limit < 1:
        raise ChunkingError(f"The chunk budget must be at least 1 token, got {limit}.")
    text = doc.text
    if not text.strip():
        raise EmptyDocumentError(f"{doc.path} contains no text to summarise.")
    parts = _parts(doc)
    if memo is None:
        memo = SpanMemo(text, counter)
    elif memo.text is not text or memo.counter != counter:
        raise ValueError("chunk_document: the memo was made of another text or with another counter")
    memo.count_paragraphs([(part.start, part.end) for part in parts])
    units = _Units(memo, limit)
    for part in parts:
        units.add_part(part.start, part.end)
    units.finish()
    cuts = _choose_cuts(units, limit)
    spans = _verified_spans(units, cuts, limit)
    titled = [p for p in parts if p.section_index >= 0]
    titled_ends = [p.end for p in titled]
    return [_make_chunk(doc, titled, titled_ends, i, a, b, n) for i, (a, b, n) in enumerate(spans)]


def _parts(doc: Document) -> list[_Part]:
    """Sections plus the untitled gaps between them, covering the whole text."""
    parts: list[_Part] = []
    pos = 0
    size = len(doc.text)
    for i, section in sorted(enumerate(doc.sections), key=lambda item: item[1].start):
        start, end = max(section.start, pos), min(section.end, size)
        if end <= start:
            continue
        if start > pos:
            parts.append(_Part(pos, start, -1))
        parts.append(_Part(start, end, i))
        pos = end
    if pos < size:
        parts.append(_Part(pos, size, -1))
    return parts


class _Units:
    """The text cut into counted units; ``cum[i]`` is the token count before unit ``i`` (prefix sums)."""

    def __init__(self, memo: SpanMemo, limit: int) -> None:
        self.text = memo.text
        self.memo = memo
        self.limit = limit
        # Paragraphs up to this size stay whole; bigger ones are cut into sentences so cuts can land near
        # the ideal position.
        self.fine = max(1, limit // 8)
        # Arrays, not lists: a 50 MB book has ~200k units, and a list holds a 32-byte int object for each offset.
        self.starts: array[int] = array("q")
        self.tokens: array[int] = array("q")
        self.levels: array[int] = array("b")
        self.part_bounds: list[tuple[int, int]] = []  # unit index ranges, one per part
        self.cum: array[int] = array("q", [0])

    def add_part(self, start: int, end: int) -> None:
        first = len(self.starts)
        bounds = [start, *self.memo.paragraph_cuts(start, end), end]
        count, fine = self.memo.count, self.fine
        tokens = [count(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
        # Paragraphs within the fine grain are units as they are, added a run at a time (most of a book's);
        # the others are cut into sentences.
        done = 0
        for i in [i for i, n in enumerate(tokens) if n > fine]:
            self._add_run(bounds, tokens, done, i)
            self._add_paragraph(bounds[i], bounds[i + 1], _SECTION if i == 0 else _PARAGRAPH)
            done = i + 1
        self._add_run(bounds, tokens, done, len(tokens))
        self.part_bounds.append((first, len(self.starts)))

    def _add_run(self, bounds: list[int], tokens: list[int], lo: int, hi: int) -> None:
        """Whole paragraphs ``lo`` to ``hi`` of a part (paragraph 0 opens the part: a section boundary)."""
        if hi <= lo:
            return
        self.starts.extend(bounds[lo:hi])
        self.tokens.extend(tokens[lo:hi])
        self.levels.extend([_PARAGRAPH] * (hi - lo))
        if lo == 0:
            self.levels[len(self.levels) - hi] = _SECTION

    def finish(self) -> None:
        """Prefix sums of the units' counts (after the last part)."""
        self.cum = array("q", [0])
        self.cum.extend(accumulate(self.tokens))

    def _add(self, start: int, tokens: int, level: int) -> None:
        self.starts.append(start)
        self.tokens.append(tokens)
        self.levels.append(level)

    def _add_paragraph(self, start: int, end: int, level: int) -> None:
        tokens = self.memo.count(start, end)
        if tokens <= self.fine:
            self._add(start, tokens, level)
            return
        pos = start
        for cut in self.memo.sentence_cuts(start, end):
            self._add_sentence(pos, cut, level)
            level = _SENTENCE
            pos = cut
        self._add_sentence(pos, end, level)

    def _add_sentence(self, start: int, end: int, level: int) -> None:
        tokens = self.memo.count(start, end)
        if tokens <= self.limit:
            self._add(start, tokens, level)
            return
        pos = start
        for m in _LINE_END.finditer(self.text, start, end):
            if m.end() >= end:
                break
            self._add_line(pos, m.end(), level)
            level = _LINE
            pos = m.end()
        self._add_line(pos, end, level)

    def _add_line(self, start: int, end: int, level: int) -> None:
        tokens = self.memo.count(start, end)
        if tokens <= self.limit:
            self._add(start, tokens, level)
            return
        for a, _end, n in _hard_cut(self.memo, start, end, tokens, self.fine, self.limit):
            self._add(a, n, level if a == start else _HARD)

    def end_of(self, i: int) -> int:
        return self.starts[i + 1] if i + 1 < len(self.starts) else len(self.text)


def _hard_cut(
    memo: SpanMemo, start: int, end: int, tokens: int, fine: int, limit: int
) -> list[tuple[int, int, int]]:
    """Cut one over-long sentence into fragments of about ``fine`` tokens, each within ``limit``."""
    text = memo.text
    pieces = max(2, math.ceil(tokens / fine))
    step = (end - start) / pieces
    cuts = [start]
    for j in range(1, pieces):
        ideal = start + round(j * step)
        cut = _soft_cut_near(
            text, ideal, max(cuts[-1] + 1, ideal - int(step / 4)), min(end - 1, ideal + int(step / 4))
        )
        if cuts[-1] < cut < end:
            cuts.append(cut)
    cuts.append(end)
    out: list[tuple[int, int, int]] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        n = memo.count(a, b)
        if n > limit and b - a > 1:
            out.extend(_hard_cut(memo, a, b, n, fine, limit))
        else:
            out.append((a, b, n))
    return out


def _soft_cut_near(text: str, ideal: int, lo: int, hi: int) -> int:
    """A cut just after the whitespace or comma nearest ``ideal`` within [lo, hi], else ``ideal`` itself."""
    best = -1
    for m in _SOFT_BREAK.finditer(text, lo, hi):
        if best < 0 or abs(m.end() - ideal) < abs(best - ideal):
            best = m.end()
        if m.end() > ideal:
            break
    return best if best > 0 else ideal


def _choose_cuts(units: _Units, limit: int) -> list[int]:
    """Unit indexes where chunks start (the first is always 0)."""
    cum = units.cum
    # Items: whole sections that fit, and even pieces of sections that do not.
    items: list[tuple[int, int]] = []
    for lo, hi in units.part_bounds:
        if lo == hi:
            continue
        if cum[hi] - cum[lo] <= limit:
            items.append((lo, hi))
            continue
        cuts = _split_evenly(cum, units.levels, lo, hi, limit)
        bounds = [lo, *cuts, hi]
        items.extend(zip(bounds, bounds[1:], strict=False))
    groups = pack_groups([cum[b] - cum[a] for a, b in items], limit, min_group=1)
    return [items[g[0]][0] for g in groups]


def _split_evenly(cum: Sequence[int], levels: Sequence[int], lo: int, hi: int, limit: int) -> list[int]:
    """Cut units [lo, hi) into ceil(total / limit) pieces near even multiples, preferring strong boundaries."""
    cuts: list[int] = []
    s = lo
    planned = math.ceil((cum[hi] - cum[lo]) / limit)
    while cum[hi] - cum[s] > limit:
        remaining = cum[hi] - cum[s]
        pieces = max(planned, math.ceil(remaining / limit), 2)
        hi_pos = cum[s] + limit  # this piece stays within budget
        j_hi = bisect_right(cum, hi_pos, s + 1, hi)
        if j_hi <= s + 1:
            raise ChunkingError("A text unit is larger than the chunk budget.")  # units are <= limit
        while True:
            piece = remaining / pieces
            ideal = cum[s] + piece
            lo_pos = cum[hi] - (pieces - 1) * limit  # the rest fits in the pieces left
            best, best_cost = -1, math.inf
            for j in range(bisect_left(cum, lo_pos, s + 1, hi), j_hi):
                cost = abs(cum[j] - ideal) / piece + _CUT_PENALTY[levels[j]]
                if cost < best_cost:
                    best, best_cost = j, cost
            if best >= 0:
                break
            # No boundary allows this many pieces: one more piece, evened out again (never a greedy fill,
            # which would leave a lopsided remainder).
            pieces += 1
        cuts.append(best)
        s = best
        planned = pieces - 1
    return cuts


def _verified_spans(
    units: _Units, starts: list[int], limit: int
) -> list[tuple[int, int, int]]:
    """(start, end, real tokens) per chunk; a chunk whose real count overflows is split again."""
    cum = units.cum
    bounds = [*starts, len(units.starts)]
    out: list[tuple[int, int, int]] = []
    pending = list(zip(bounds, bounds[1:], strict=False))
    pending.reverse()
    text = units.text
    additive = units.memo.counter.additive_at_line_breaks
    # Units whose start is not a cut where counts add up (see _additive_at), in order.
    joined = [j for j, pos in enumerate(units.starts) if not _additive_at(text, pos)] if additive else []
    while pending:
        lo, hi = pending.pop()
        a, b = units.starts[lo], units.end_of(hi - 1)
        first_joined = bisect_right(joined, lo)
        if additive and (first_joined == len(joined) or joined[first_joined] >= hi):
            real = cum[hi] - cum[lo]  # the units' own counts add up exactly: no second pass over the text
        else:
            real = units.memo.count(a, b)
        if real <= limit:
            out.append((a, b, real))
            continue
        if hi - lo == 1:
            raise ChunkingError(
                f"A {limit}-token chunk budget cannot hold even a single character here; raise the budget."
            )
        # Joined units counted more than their sum: split with a budget shrunk by the observed excess.
        estimate = cum[hi] - cum[lo]
        biggest = max(units.tokens[lo:hi])  # no unit may exceed the shrunk budget
        shrunk = max(biggest, min(estimate - 1, int(limit * estimate / real)))
        cuts = _split_evenly(cum, units.levels, lo, hi, shrunk) if estimate > shrunk else []
        if not cuts:  # halve by tokens; each half has fewer units, so this ends
            middle = bisect_left(cum, (cum[lo] + cum[hi]) / 2, lo + 1, hi)
            cuts = [min(max(middle, lo + 1), hi - 1)]
        pieces = [lo, *cuts, hi]
        pending.extend(reversed(list(zip(pieces, pieces[1:], strict=False))))
    return out


def _additive_at(text: str, pos: int) -> bool:
    """Whether token counts add up across a cut at ``pos``: a line break before it, a visible character after.

    tiktoken's pre-tokenizers (cl100k, o200k) never let a piece run from a newline into a visible character, so
    no token spans such a cut and count(a + b) == count(a) + count(b) (counters say so with
    ``additive_at_line_breaks``). Elsewhere (after ". ", after "。" before
    a Han character, which cl100k joins into one piece) the joined text is recounted.
    """
    return 0 < pos < len(text) and text[pos - 1] == "\n" and not text[pos].isspace()


def _make_chunk(
    doc: Document,
    titled: list[_Part],
    titled_ends: list[int],
    index: int,
    start: int,
    end: int,
    tokens: int,
) -> Chunk:
    touched = []
    for p in titled[bisect_right(titled_ends, start) :]:
        if p.start >= end:
            break
        touched.append(p.section_index)
    section_index = touched[0] if touched else -1
    title = doc.section_title(start, end) if touched else ""
    return Chunk(
        index=index,
        start=start,
        end=end,
        token_count=tokens,
        section_title=title,
        section_index=section_index,
        pages=doc.pages_for(start, end),
        source=doc.text,
    )
