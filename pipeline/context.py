"""Carry-forward context: which earlier text a call sees as background, and how it is bounded.

Strategy "lagged" with lag k: call i at a level carries the summary of call i-k at the same level when i >= k
(so k calls of a level run at once, call i starting when call i-k has finished), and for 1 <= i < k the tail of
the previous call's own input (available at once). Call 0 carries nothing. Strategy "none" carries nothing.
Everything here is a pure function of its inputs, so reruns build byte-identical prompts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.sentences import sentence_spans
from pipeline.tokens import TokenCounter

STRATEGIES = ("none", "lagged")
# At most this many local tokens are carried, whatever room the prompt leaves: a few sentences resolve the names
# and references at a chunk's start, and every carried token is billed again (bench/results/billing.md).
MAX_CARRIED_TOKENS = 120


@dataclass(frozen=True, slots=True)
class ContextSource:
    """Where call ``index``'s context comes from: the summary of call ``summary_of`` or the raw tail of call ``tail_of``."""

    index: int
    summary_of: int | None = None
    tail_of: int | None = None

    @property
    def carries(self) -> bool:
        return self.summary_of is not None or self.tail_of is not None


def effective_lag(context_lag: int, concurrency: int) -> int:
    """The lag actually used: at least the calls that may run at once, so carrying context never idles a slot."""
    return max(1, context_lag, concurrency)


def context_source(index: int, *, strategy: str, lag: int) -> ContextSource:
    """Which earlier call feeds call ``index``'s context at the same level."""
    if strategy == "none" or index == 0:
        return ContextSource(index)
    if index >= lag:
        return ContextSource(index, summary_of=index - lag)
    return ContextSource(index, tail_of=index - 1)


def tail_sentences(text: str, max_tokens: int, counter: TokenCounter) -> str:
    """The longest run of whole sentences ending ``text`` that fits ``max_tokens`` ("" when none fits).

    Cuts only at sentence boundaries (English and CJK terminators, blank lines). When even the last sentence is
    too long, it keeps that sentence's own tail cut at a clause or word boundary, never mid-word.
    """
    text = text.strip()
    if max_tokens <= 0 or not text:
        return ""
    if counter.count(text) <= max_tokens:
        return text
    spans = sentence_spans(text)
    # Grow backwards from the end; counts of joined text are not additive for BPE, so count the candidate itself.
    lo, hi = 0, len(spans)
    best = len(spans)
    # Binary search the earliest sentence start whose tail fits (fit is monotone in the start position).
    while lo < hi:
        mid = (lo + hi) // 2
        if counter.count(text[spans[mid][0] :]) <= max_tokens:
            best, hi = mid, mid
        else:
            lo = mid + 1
    if best < len(spans):
        return text[spans[best][0] :].strip()
    return _tail_words(text[spans[-1][0] :], max_tokens, counter)


def _tail_words(sentence: str, max_tokens: int, counter: TokenCounter) -> str:
    """The end of one over-long sentence, cut after a space, comma or CJK pause."""
    cuts = [i + 1 for i, ch in enumerate(sentence) if ch in " ,，、;；:：\n"]
    for cut in cuts:
        tail = sentence[cut:].strip()
        if tail and counter.count(tail) <= max_tokens:
            return tail
    return ""


def bounded_context(
    source: ContextSource,
    *,
    summaries: dict[int, str],
    inputs: Mapping[int, str],
    max_tokens: int,
    counter: TokenCounter,
) -> str:
    """The context text for one call, at most ``max_tokens`` (and MAX_CARRIED_TOKENS), cut at a sentence boundary
    ("" for none)."""
    max_tokens = min(max_tokens, MAX_CARRIED_TOKENS)
    if source.summary_of is not None:
        return tail_sentences(summaries[source.summary_of], max_tokens, counter)
    if source.tail_of is not None:
        return tail_sentences(inputs[source.tail_of], max_tokens, counter)
    return ""
