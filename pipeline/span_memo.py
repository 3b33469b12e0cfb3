"""What chunking learns about spans of one text (token counts, paragraph and sentence cuts), each found once."""

from __future__ import annotations

import os
import re
from array import array
from concurrent.futures import ThreadPoolExecutor

from pipeline.sentences import sentence_ends
from pipeline.tokens import TiktokenCounter, TokenCounter

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\u3000\xa0]*\n\s*|\n(?=[ \t\u3000]+\S)")
# Counting a big text's paragraphs up front: tiktoken encodes without the GIL, so a second thread halves the
# wall time of the largest part of planning on two cores. Below this many spans the lazy count is as fast.
_COUNT_THREADS = 2
_COUNT_BATCH = 512
_PARALLEL_MIN_SPANS = 4 * _COUNT_BATCH


class SpanMemo:
    """What chunking learns about spans of one text (token counts, paragraph and sentence cuts), each found once:
    planning tries several chunk budgets on one document, and every budget cuts it into the same paragraphs and
    sentences."""

    def __init__(self, text: str, counter: TokenCounter) -> None:
        self.text = text
        self.counter = counter
        self._stride = len(text) + 1
        self._counts: dict[int, int] = {}  # start * stride + end -> tokens (an int key: half a tuple's memory)
        self._paragraphs: dict[int, array[int]] = {}  # arrays: 8 bytes an offset, not a Python int each
        self._sentences: dict[int, array[int]] = {}
        self._prefetched = False  # whether count_paragraphs has run

    def count(self, start: int, end: int) -> int:
        """Tokens of ``text[start:end]``."""
        key = start * self._stride + end
        tokens = self._counts.get(key)
        if tokens is None:
            tokens = self._counts[key] = self.counter.count(self.text[start:end])
        return tokens

    def count_paragraphs(self, parts: list[tuple[int, int]]) -> None:
        """Count the paragraphs of the ``(start, end)`` parts up front, in a few threads when there are many
        (tiktoken only; once per memo)."""
        threads = min(_COUNT_THREADS, os.cpu_count() or 1)
        if self._prefetched or threads < 2 or not isinstance(self.counter, TiktokenCounter):
            return  # counted one by one as chunking asks
        self._prefetched = True
        stride, counts = self._stride, self._counts
        # Spans as two arrays (16 bytes a span; tuples in a list took ~120, 20 MB for a 50 MB book).
        starts, ends = array("q"), array("q")
        for start, end in parts:
            pos = start
            for cut in (*self.paragraph_cuts(start, end), end):
                if pos * stride + cut not in counts:
                    starts.append(pos)
                    ends.append(cut)
                pos = cut
        if len(starts) < _PARALLEL_MIN_SPANS:
            return
        text, count = self.text, self.counter.count

        def batch(lo: int) -> list[int]:
            return [count(text[a:b]) for a, b in zip(starts[lo : lo + _COUNT_BATCH], ends[lo : lo + _COUNT_BATCH], strict=True)]

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tome-count") as pool:
            for lo, tokens in zip(range(0, len(starts), _COUNT_BATCH), pool.map(batch, range(0, len(starts), _COUNT_BATCH)), strict=True):
                for i, n in enumerate(tokens, start=lo):
                    counts[starts[i] * stride + ends[i]] = n

    def paragraph_cuts(self, start: int, end: int) -> array[int]:
        """Where paragraphs after the first begin inside ``text[start:end]``."""
        key = start * self._stride + end
        cuts = self._paragraphs.get(key)
        if cuts is None:
            cuts = self._paragraphs[key] = array("q")
            for m in _PARAGRAPH_BREAK.finditer(self.text, start, end):
                if m.end() >= end:
                    break
                cuts.append(m.end())
        return cuts

    def sentence_cuts(self, start: int, end: int) -> array[int]:
        """Where sentences after the first begin inside ``text[start:end]`` (the space after one stays with it)."""
        key = start * self._stride + end
        cuts = self._sentences.get(key)
        if cuts is None:
            cuts = self._sentences[key] = array("q")
            pos, text = start, self.text
            for cut in sentence_ends(text, start, end):
                while cut < end and text[cut].isspace():
                    cut += 1
                if cut >= end or cut <= pos:
                    continue
                cuts.append(cut)
                pos = cut
        return cuts
