"""Splitting a call's input after a context-length rejection (or its prediction): in two, or in as many pieces
as the window needs."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline.context import tail_sentences
from pipeline.engine.sizing import MIN_OUTPUT_TOKENS, PromptSizer
from pipeline.engine.state import CallOutcome, CallSpec, LevelRun, RunState
from pipeline.errors import ContextLengthError
from pipeline.prompts import merged_source
from pipeline.sentences import sentence_spans
from pipeline.tokens import TokenCounter
from pipeline.window import balanced_cuts, split_text_into

if TYPE_CHECKING:
    from pipeline.engine.resolver import CallResolver

MIN_SPLIT_TOKENS = 48  # an input below twice this is not split further
MAX_SPLIT_DEPTH = 6  # halvings of one input after context-length errors


def splittable(call: CallSpec, depth: int, counter: TokenCounter) -> bool:
    """Whether ``call``'s input can still be halved (depth and size permitting)."""
    if depth >= MAX_SPLIT_DEPTH:
        return False
    if call.kind == "reduce" and len(call.parts) >= 2:
        return True
    return counter.count(call.text) >= 2 * MIN_SPLIT_TOKENS


def halves(state: RunState, call: CallSpec, sizer: PromptSizer) -> tuple[CallSpec, CallSpec]:
    """Two calls covering ``call``'s input (a sentence boundary near the middle, or half the summaries)."""
    counter = sizer.counter
    output = max(MIN_OUTPUT_TOKENS, call.max_tokens // 2)
    # Halves of the final call write half its length each (when it is asked in words or characters).
    share = (1.0 if call.final else call.final_share) / 2
    if call.kind == "reduce" and len(call.parts) >= 2:
        cut = balanced_cut([counter.count(p.text) for p in call.parts])
        left = tuple(replace(p, n=i + 1) for i, p in enumerate(call.parts[:cut]))
        right = tuple(replace(p, n=i + 1) for i, p in enumerate(call.parts[cut:]))
        a = replace(
            call,
            parts=left,
            text=merged_source(list(left)),
            final=False,
            max_tokens=output,
            final_share=share,
        )
        b = replace(
            call,
            parts=right,
            text=merged_source(list(right)),
            final=False,
            max_tokens=output,
            final_share=share,
        )
    else:
        head, tail = split_text(call.text, counter)
        if call.kind == "reduce":
            # One over-long summary: condense its halves as two summaries of their own.
            a = replace(
                call,
                parts=(replace(call.parts[0], text=head),),
                text=head,
                final=False,
                max_tokens=output,
                final_share=share,
            )
            b = replace(
                call,
                parts=(replace(call.parts[0], text=tail),),
                text=tail,
                final=False,
                max_tokens=output,
                final_share=share,
            )
        else:
            a = replace(call, text=head, final=False, max_tokens=output, final_share=share)
            b = replace(call, text=tail, final=False, max_tokens=output, final_share=share)
    # The second half carries the first half's raw tail as context (available at once, deterministic).
    room = sizer.context_room(state, b, window=state.window.tokens)
    return a, replace(b, context=tail_sentences(a.text, room, counter) if room else "")


def split_text(text: str, counter: TokenCounter) -> tuple[str, str]:
    """Two halves of ``text`` split at the sentence boundary nearest its token midpoint (else a space/char)."""
    spans = sentence_spans(text)
    if len(spans) >= 2:
        # Per-sentence counts are nearly additive; one pass finds the boundary nearest the middle.
        sizes = [counter.count(text[a:b]) for a, b in spans]
        cut = spans[balanced_cut(sizes)][0]
    else:
        mid = len(text) // 2
        space = text.rfind(" ", 0, mid)
        cut = space + 1 if space > len(text) // 4 else mid
    return text[:cut], text[cut:]


def balanced_cut(sizes: list[int]) -> int:
    """Where to cut a list in two so the halves' totals are closest (at least one item each)."""
    total = sum(sizes)
    best, best_gap, running = 1, math.inf, 0
    for i in range(1, len(sizes)):
        running += sizes[i - 1]
        gap = abs(running - total / 2)
        if gap < best_gap:
            best, best_gap = i, gap
    return best


def pieces(state: RunState, call: CallSpec, sizer: PromptSizer, n: int) -> list[CallSpec]:
    """``n`` calls covering ``call``'s input (two: :func:`halves`), sharing its output; each piece after the
    first carries the raw tail of the one before as context."""
    if n <= 2:
        return list(halves(state, call, sizer))
    counter = sizer.counter
    output = max(MIN_OUTPUT_TOKENS, call.max_tokens // n)
    if call.kind == "reduce" and len(call.parts) >= 2:
        bounds = [0, *balanced_cuts([counter.count(p.text) for p in call.parts], n), len(call.parts)]
        out = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            group = tuple(replace(p, n=i + 1) for i, p in enumerate(call.parts[a:b]))
            out.append(replace(call, parts=group, text=merged_source(list(group)), final=False, max_tokens=output))
    else:
        texts = split_text_into(call.text, counter, n)
        if call.kind == "reduce":
            # One over-long summary: condense its pieces as summaries of their own.
            out = [
                replace(call, parts=(replace(call.parts[0], text=t),), text=t, final=False, max_tokens=output)
                for t in texts
            ]
        else:
            out = [replace(call, text=t, final=False, max_tokens=output) for t in texts]
    for i in range(1, len(out)):
        room = sizer.context_room(state, out[i], window=state.window.tokens)
        out[i] = replace(out[i], context=tail_sentences(out[i - 1].text, room, counter) if room else "")
    return out


async def split_call(
    resolver: CallResolver, state: RunState, run: LevelRun, call: CallSpec, depth: int, n: int = 2
) -> CallOutcome:
    """Summarise ``call``'s input as ``n`` pieces (concurrently, each through ``resolver``) and join them."""
    if not splittable(call, depth, resolver.sizer.counter):
        raise ContextLengthError(
            f"Level {call.level} call {call.index} does not fit the model's {state.window.tokens}-token "
            "context even after splitting; use a model with a larger context or a shorter --length.",
            status=400,
            limit=state.window.tokens,
        )
    state.usage.splits += 1
    parts = pieces(state, call, resolver.sizer, n)
    outcomes = await asyncio.gather(*(resolver.resolve(state, run, p, depth + 1) for p in parts))
    joined = outcomes[0]
    for outcome in outcomes[1:]:
        joined = joined.join(outcome)
    joined.splits += 1
    return joined
