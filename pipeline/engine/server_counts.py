"""The server's own token count of a document, region by region, for packing TPM windows to what they hold.

A server's tokens per local token vary along a text (±7 % between 6k-token stretches of a novel against the
test server's tokenizer): one ratio for the whole text mis-sizes calls by that much, and a window planned to
hold three calls then holds two. Counting ~1,500-token regions with the server's token-count endpoint brings a
chunk's estimate within ~2 %. Counts are the server's and deterministic, so a rerun cuts the same chunks.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pipeline.llm.types import Message
from pipeline.sentences import sentence_spans
from pipeline.tokens import TokenCounter

REGION_TOKENS = 1_500  # local tokens per counted region
COUNTING_AT_ONCE = 8  # count requests in flight at once

Count = Callable[[Sequence[Message]], Awaitable[int | None]]


@dataclass(frozen=True)
class TextRatios:
    """Server tokens per local token of each region of a text; ``ends[i]``: the offset region i ends at.

    ``ratios`` are per local token of a stretch counted whole; ``per_sentence`` per local token of its sentences
    counted one by one (a few % more tokens than counted whole: each sentence starts afresh).
    """

    ends: tuple[int, ...]
    ratios: tuple[float, ...]
    per_sentence: tuple[float, ...]

    def at(self, offset: int) -> float:
        """The ratio of the region holding ``offset``."""
        return self.ratios[min(bisect.bisect_right(self.ends, offset), len(self.ratios) - 1)]

    def sentence_at(self, offset: int) -> float:
        """The per-sentence ratio of the region holding ``offset``."""
        return self.per_sentence[min(bisect.bisect_right(self.ends, offset), len(self.ratios) - 1)]

    def tokens(self, start: int, end: int, local: int) -> int:
        """Server tokens of ``text[start:end]`` counting ``local`` local tokens (regions weighted by overlap)."""
        if end <= start:
            return 0
        weighted, i, at = 0.0, bisect.bisect_right(self.ends, start), start
        while at < end:
            stop = min(end, self.ends[i]) if i < len(self.ends) else end
            weighted += (stop - at) * self.ratios[min(i, len(self.ratios) - 1)]
            at, i = stop, i + 1
        return round(local * weighted / (end - start))


async def measure(text: str, counter: TokenCounter, count: Count) -> TextRatios | None:
    """The ratios of ``text``'s regions by the server's ``count`` (None when the server offers no count)."""
    base = await count([Message("user", "")])  # what a message costs besides its text
    if base is None:
        return None
    regions: list[tuple[int, int, int]] = []  # (start, end, local tokens)
    start = size = 0
    spans = sentence_spans(text)
    for n, (_, b) in enumerate(spans):
        size += counter.count(text[spans[n][0] : b])
        if size >= REGION_TOKENS or n == len(spans) - 1:
            regions.append((start, b, size))
            start, size = b, 0
    if not regions:
        return None
    gate = asyncio.Semaphore(COUNTING_AT_ONCE)

    async def one(a: int, b: int) -> int | None:
        async with gate:
            return await count([Message("user", text[a:b])])

    counts = await asyncio.gather(*(one(a, b) for a, b, _ in regions))
    if any(c is None for c in counts):
        return None
    server = [max(1, c - base) for c in counts]  # type: ignore[operator]
    whole = [max(1, counter.count(text[a:b])) for a, b, _ in regions]
    return TextRatios(
        ends=tuple(b for _, b, _ in regions),
        ratios=tuple(s / n for s, n in zip(server, whole, strict=True)),
        per_sentence=tuple(s / max(1, n) for s, (_, _, n) in zip(server, regions, strict=True)),
    )


SAMPLES = 8  # stretches of a document counted before level 0 is planned
SAMPLE_CHARS = 4_000  # characters per stretch (~1,000 tokens of English, ~2,500 of Chinese)
MIN_SAMPLE_TOKENS = 200  # local tokens; a shorter stretch's ratio is mostly rounding


async def sampled_ratio(text: str, counter: TokenCounter, count: Count) -> float | None:
    """Server tokens per local token over ``SAMPLES`` stretches spread through ``text`` (None when the server
    offers no count): the server's tokenizer before any prompt is sent. Stretches scatter by a few % around it
    (a prompt near the window is counted exactly before it is sent: the resolver)."""
    if not text.strip():
        return None
    step = max(SAMPLE_CHARS, len(text) // SAMPLES)
    stretches = [text[a : a + SAMPLE_CHARS] for a in range(0, max(1, len(text) - SAMPLE_CHARS // 2), step)]
    stretches = [s for s in stretches[:SAMPLES] if s.strip()]
    counts = await asyncio.gather(count([Message("user", "")]), *(count([Message("user", s)]) for s in stretches))
    base, rest = counts[0], [c for c in counts[1:] if c is not None]
    if base is None or len(rest) < len(stretches):
        return None
    server = sum(c - base for c in rest)
    local = sum(counter.count(s) for s in stretches)
    return server / local if local >= MIN_SAMPLE_TOKENS and server > 0 else None


async def framing(messages: Sequence[Message], text: str, count: Count) -> int | None:
    """Tokens ``messages`` cost besides ``text`` (a prompt's instructions, carried context and chat framing)."""
    whole, alone, empty = await asyncio.gather(
        count(messages), count([Message("user", text)]), count([Message("user", "")])
    )
    if whole is None or alone is None or empty is None:
        return None
    return max(0, whole - (alone - empty))
