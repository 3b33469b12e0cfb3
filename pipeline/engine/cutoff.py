"""Cut-off recovery: what becomes of an answer that stopped at ``max_tokens`` (finish_reason "length").

Chosen per provider (``cutoff_recovery`` in configs/providers.toml, measured by bench/bench_cutoff.py):
- "trim": keep the answer up to its last complete sentence and flag it ``trimmed``; no second call.
- "continue": Moonshot's partial mode: the cut answer goes back as a prefilled assistant message and the model
  writes on from where it stopped (the prompt is paid again, cached at a quarter; the answer so far is kept).
  A continuation is overflow-checked like a first attempt; when it does not fit, or is cut again, the joined
  answer is trimmed.
Only an answer without one complete sentence, under "trim", gets a second full-prompt call (a stricter length,
its room sized by the live calibration): the last resort. A second cut is kept and flagged truncated.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.engine import calibration, length
from pipeline.engine.state import CallOutcome, CallSpec, LevelRun, Overflow, RunState
from pipeline.llm.types import Completion, Message

if TYPE_CHECKING:
    from pipeline.engine.resolver import CallResolver

log = logging.getLogger("tome.engine")

RECOVERIES = ("trim", "continue")


def combined(first: CallOutcome, second: CallOutcome, text: str) -> CallOutcome:
    """One logical call's outcome from two requests (the cut answer and its continuation or retry)."""
    return CallOutcome(
        text=text,
        calls=first.calls + second.calls,
        cached_calls=first.cached_calls + second.cached_calls,
        splits=first.splits + second.splits,
        cached=first.cached and second.cached,
        prompt_tokens=first.prompt_tokens + second.prompt_tokens,
        completion_tokens=first.completion_tokens + second.completion_tokens,
        cost=first.cost + second.cost,
        latency_s=first.latency_s + second.latency_s,
    )


def trimmed(state: RunState, call: CallSpec, outcome: CallOutcome, text: str) -> CallOutcome | None:
    """``outcome`` kept up to the last complete sentence of ``text`` (flagged trimmed), or None without one."""
    kept = length.trim_to_sentence(text)
    if kept is None:
        return None
    state.usage.trimmed += 1
    log.info("level %d call %d: cut off at max_tokens; kept up to its last complete sentence", call.level, call.index)
    outcome.text, outcome.trimmed = kept, True
    return outcome


@dataclass(frozen=True)
class CutCall:
    """A call whose answer stopped at max_tokens, with what recovering it needs."""

    resolver: CallResolver
    state: RunState
    run: LevelRun
    call: CallSpec
    depth: int


async def recover(
    cut: CutCall, messages: tuple[Message, ...], outcome: CallOutcome, completion: Completion
) -> CallOutcome:
    """The outcome of the cut call whose answer (``completion``, to ``messages``) stopped at max_tokens."""
    if cut.resolver.backend.cutoff_recovery == "continue" and completion.content.strip():
        continued = await _continue(cut, messages, outcome, completion)
        if continued is not None:
            return continued
    kept = trimmed(cut.state, cut.call, outcome, completion.content)
    if kept is not None:
        return kept
    return await _stricter(cut, outcome)


async def _continue(
    cut: CutCall, messages: tuple[Message, ...], outcome: CallOutcome, completion: Completion
) -> CallOutcome | None:
    """The cut answer continued in partial mode; None when the continuation cannot be sent (no room)."""
    resolver, state, call = cut.resolver, cut.state, cut.call
    prefix = completion.content
    partial = (*messages, Message("assistant", prefix, partial=True))
    live = calibration.live_calibration(state)
    # The room by the server's own count (live calibration), as a first attempt's is checked.
    room = (
        state.window.tokens
        - resolver.model.safety_margin_tokens
        - math.ceil(resolver.sizer.local_prompt(partial) * live)
    )
    max_tokens = min(call.max_tokens, room)
    if max_tokens < length.MIN_ASKED_TOKENS:
        return None
    answer = await resolver.ask(state, cut.run, call, partial, max_tokens, depth=cut.depth, first=False)
    if isinstance(answer, Overflow):
        return None
    more, rest = answer
    state.usage.continued += 1
    joined = combined(outcome, more, prefix + rest.content)
    if rest.finish_reason != "length":
        log.info("level %d call %d: cut off at max_tokens; continued in partial mode", call.level, call.index)
        return joined
    return trimmed(state, call, joined, joined.text) or _truncated(state, call, joined)


async def _stricter(cut: CutCall, outcome: CallOutcome) -> CallOutcome:
    """The last resort: the whole prompt again with a stricter length and up to twice the room."""
    resolver, state, call = cut.resolver, cut.state, cut.call
    sizer = resolver.sizer
    first = sizer.send_max_tokens(state, call, sizer.messages(state, call, strict=False))
    max_tokens = sizer.retry_max_tokens(state, call, first, calibration=calibration.live_calibration(state))
    if max_tokens <= first:  # the context leaves a retry no more room than the cut answer had
        return _truncated(state, call, outcome)
    state.usage.retries += 1
    messages = sizer.messages(state, call, strict=True)
    retry = await resolver.ask(state, cut.run, call, messages, max_tokens, depth=cut.depth, first=False)
    if isinstance(retry, Overflow):
        outcome.calls += int(retry.sent)
        return _truncated(state, call, outcome)
    again, completion = retry
    joined = combined(outcome, again, again.text)
    if completion.finish_reason == "length":
        return _truncated(state, call, joined)
    return joined


def _truncated(state: RunState, call: CallSpec, outcome: CallOutcome) -> CallOutcome:
    outcome.truncated = True
    log.warning(
        "%s: level %d call %d: the summary was cut off at max_tokens without a complete sentence, even after "
        "recovery; kept and flagged truncated",
        state.document.path.name,  # in a batch, every warning names its document
        call.level,
        call.index,
    )
    return outcome
