"""The model's real window during a run: capped at the first refusal, recognised in a silent cut, split for.

A server that runs a model with a smaller window than configured either refuses a request (its refusal names
the window: pipeline.llm.error_bodies.context_numbers) or, like llama.cpp's servers, accepts a prompt that fits and
stops generating when the window is full ("length" with prompt + completion = the window). Either way the
window is capped for the rest of the run and the call is split into as many pieces as it needs at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.sentences import sentence_spans
from pipeline.tokens import TokenCounter

# A "length" finish this far below max_tokens was not the model reaching max_tokens: the server ran out of window.
SILENT_CUT_SHARE = 0.9
MAX_PIECES = 64


@dataclass
class Window:
    """One run's idea of the model's window (prompt + completion tokens)."""

    configured: int  # what the configuration (or the server, when asked at start) said
    tokens: int  # what the run uses now: the configured window, capped by refusals and silent cuts
    confirmed: bool  # the server stated it, a refusal named it, or an earlier run learned it
    warned: bool = False

    def cap(self, limit: int) -> bool:
        """Cap the window at ``limit``; True when that lowered it (the caller warns once and persists it)."""
        self.confirmed = True
        if 0 < limit < self.tokens:
            self.tokens = limit
            return True
        return False


def silent_cut(
    *,
    finish_reason: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    max_tokens: int,
    window: int,
    confirmed: bool,
) -> int | None:
    """The window a "length" finish reveals (prompt + completion), or None for an ordinary cut at max_tokens.

    A stop at prompt + completion = the window is a cut at the window. A stop far below max_tokens is one too,
    while the window is unconfirmed (a server that states or enforces its window stops there only at max_tokens).
    """
    if finish_reason != "length" or prompt_tokens <= 0:
        return None
    used = prompt_tokens + completion_tokens
    if used >= window or (not confirmed and completion_tokens < max_tokens * SILENT_CUT_SHARE):
        return used
    return None


def pieces_needed(
    *, input_tokens: int, fixed_tokens: int, max_tokens: int, window: int, margin: int, min_output: int
) -> int | None:
    """Pieces an input needs so that each piece's prompt and output fit ``window``; None if no count does.

    All in the server's tokens: ``input_tokens`` the text to split, ``fixed_tokens`` the rest of a prompt
    (instructions, framing, carried context), ``max_tokens`` the whole call's output, shared by the pieces.
    """
    for n in range(2, MAX_PIECES + 1):
        output = max(min_output, max_tokens // n)
        if math.ceil(input_tokens / n) + fixed_tokens + output + margin <= window:
            return n
    return None


def balanced_cuts(sizes: list[int], n: int) -> list[int]:
    """Where to cut a list into ``n`` contiguous groups of near-equal totals (at least one item each)."""
    n = max(1, min(n, len(sizes)))
    before = [0]
    for size in sizes:
        before.append(before[-1] + size)  # before[i]: the total of sizes[:i]
    cuts: list[int] = []
    previous = 0
    for k in range(1, n):
        goal = before[-1] * k / n
        candidates = range(previous + 1, len(sizes) - (n - k) + 1)  # leave an item for each later group
        previous = min(candidates, key=lambda i: abs(before[i] - goal))
        cuts.append(previous)
    return cuts


def split_text_into(text: str, counter: TokenCounter, n: int) -> list[str]:
    """``text`` as ``n`` consecutive pieces of near-equal tokens, cut at sentence boundaries (else at spaces)."""
    spans = sentence_spans(text)
    if len(spans) < n:
        words = text.split(" ")
        if len(words) < n:
            return [text]
        cuts = balanced_cuts([len(w) + 1 for w in words], n)
        bounds = [0, *cuts, len(words)]
        return [
            " ".join(words[a:b]) + (" " if b < len(words) else "")
            for a, b in zip(bounds, bounds[1:], strict=False)
        ]
    cuts = balanced_cuts([counter.count(text[a:b]) for a, b in spans], n)
    starts = [0, *(spans[c][0] for c in cuts), len(text)]
    return [text[a:b] for a, b in zip(starts, starts[1:], strict=False)]


__all__ = ["Window", "balanced_cuts", "pieces_needed", "silent_cut", "split_text_into"]
