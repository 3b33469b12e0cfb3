"""Planning level 0 again: for the window its first call found, or by the token count its first answer reported.

Under a binding TPM limit level 0's first call goes alone, and its answer sizes the rest.

Before any answer, tome's token counts are calibrated estimates; a gateway whose tokenizer counts more refuses
calls planned near the context (400) and fits fewer of them in a TPM window than planned. When the level needs
more than one window anyway, sending the first call alone costs nothing: its answer reports the server's count,
and the rest of the document is chunked again by it, sized to pack the windows (``pipeline.tpm_packing``).
The first call's answer is cached, so a rerun learns the same count and builds the same calls.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial

from pipeline.chunking import Chunk
from pipeline.config import ModelSpec, RateLimits
from pipeline.context import bounded_context, context_source
from pipeline.engine import length, server_counts
from pipeline.engine.calibration import MIN_CALIBRATION
from pipeline.engine.server_counts import Count, TextRatios
from pipeline.engine.sizing import PromptSizer
from pipeline.engine.state import CallSpec, RunState
from pipeline.llm.types import Message
from pipeline.merge_plan import merge_input_budget
from pipeline.planning import Plan, build_plan, plan_document
from pipeline.prompt_room import chunk_room
from pipeline.settings import RunSettings
from pipeline.tokens import TokenCounter
from pipeline.tpm_packing import (
    ESTIMATE_MARGIN,
    admissions,
    best_plan,
    chunk_limits,
    chunk_tail,
    window_chunks,
)

# With admission counting every prompt as the server does, a window's calls are cut to fill this much of it:
# what is left covers the ~2 % a region-scaled estimate of a chunk can miss by.
EXACT_WINDOW_FILL = 0.985
# A sampled server ratio this far from the calibration sizes level 0 by it (closer: the safety margin and the
# admission margin absorb the difference).
RECALIBRATE = 0.05

log = logging.getLogger("tome.engine")


def wanted(state: RunState, limits: RateLimits, *, billable: bool) -> bool:
    """Whether level 0's first call should go alone: a real server, several calls, more than one TPM window."""
    level = state.plan.levels[0]
    return (
        billable
        and len(level.calls) > 1
        and limits.tpm > 0
        and level.admission_tokens > limits.tpm
        and state.observed_calibration is None
    )


def for_window(
    state: RunState, level: int, model: ModelSpec, settings: RunSettings, limits: RateLimits, *, counter: TokenCounter
) -> None:
    """Plan the run again for the window its first call found: level 0's chunks, or later levels' packing."""
    if level == 0:
        capped = replace(model, context_tokens=state.window.tokens)
        plan = plan_document(state.document, capped, settings, limits, counter=counter)
        state.plan, state.chunks, state.model = plan, list(plan.chunks), plan.model
        state.progress.plan_ready(plan)
    else:
        state.model = replace(state.model, context_tokens=state.window.tokens)
    state.room = chunk_room(state.model, settings)
    state.input_budget = merge_input_budget(state.model, settings)
    log.info("level %d planned again for a %d-token window (%d chunks)", level, state.window.tokens, len(state.chunks))


@contextmanager
def counting(
    state: RunState, count: Count | None, counter: TokenCounter, *, wanted: bool
) -> Iterator[asyncio.Task[TextRatios | None] | None]:
    """The server's count of the document region by region, started while level 0's first call is in flight
    (None when not ``wanted``, the run does not count exactly or the backend cannot count); cancelled on exit."""
    task = None
    if wanted and count is not None and state.count_exactly:
        task = asyncio.ensure_future(server_counts.measure(state.document.text, counter, count))
    try:
        yield task
    finally:
        if task is not None:
            task.cancel()  # done already unless level 0's first call failed


def framing_sample(state: RunState, first: CallSpec, sizer: PromptSizer) -> tuple[Message, ...]:
    """Call 0's messages as call 1 would send them (carrying the tail of the input before it): counted by the
    server, less the text, they are what a call of level 0 costs besides its text."""
    first = first.with_text(state.document.text)  # a planned map call holds its chunk's span until it starts
    tail = ""
    if sizer.settings.context_strategy != "none":
        tail = bounded_context(
            context_source(1, strategy="lagged", lag=2), summaries={}, inputs={0: first.text},
            max_tokens=sizer.context_room(state, first), counter=sizer.counter,
        )  # fmt: skip
    return sizer.messages(state, replace(first, context=tail), strict=False)


async def after_first_answer(
    state: RunState,
    *,
    settings: RunSettings,
    limits: RateLimits,
    counter: TokenCounter,
    count: Count | None = None,
    counting: Awaitable[TextRatios | None] | None = None,
    sample: Sequence[Message] = (),
) -> None:
    """Level 0 with chunk 0 kept and the rest chunked by the server's count its answer reported.

    ``count``: the server's token count of a prompt (its endpoint); ``counting``: its count of the text region
    by region (:func:`start_counting`). With them admission counts every prompt exactly, so windows are planned
    to be filled further.
    """
    ratios, framing = None, None
    if count is not None and counting is not None and state.observed_calibration is not None:
        ratios = await counting
        if ratios is not None and sample:
            framing = await server_counts.framing(sample, state.plan.chunks[0].text, count)
    # What the first answer wrote of its output budget (as learned: a cached answer reports it the same way).
    share = min(1.0, (state.observed_overshoot or state.headroom) / state.headroom)
    if ratios is not None:  # the window binds: the rest of level 0 gets headroom over what was written
        state.map_max_tokens = length.after_first_answer(state, state.plan.levels[0].output_tokens)
    plan = _rest_plan(
        state, settings=settings, limits=limits, counter=counter, ratios=ratios, share=share, framing=framing
    )
    if plan is not state.plan:
        state.plan, state.chunks = plan, list(plan.chunks)
        state.progress.plan_ready(plan)
        log.info("level 0 planned again by the server's token count: %d chunks", len(plan.chunks))


def _rest_plan(
    state: RunState,
    *,
    settings: RunSettings,
    limits: RateLimits,
    counter: TokenCounter,
    ratios: TextRatios | None = None,
    share: float = 1.0,
    framing: int | None = None,
) -> Plan:
    """The plan with chunk 0 kept and the rest chunked by the server's reported count (packing the windows).

    ``ratios``: the server's count region by region (admission then counts exactly: no estimate margin);
    ``share``: how much of its output budget the first answer filled (the size merges are simulated with);
    ``framing``: the server's count of what a call sends besides its text (instructions, context, chat framing).
    """
    ratio = state.observed_calibration
    plan = state.plan
    if ratio is None:
        return plan
    model = replace(plan.model, calibration=ratio)
    doc, first = plan.document, plan.chunks[0]
    room = chunk_room(model, settings)
    lag = state.lag if settings.context_strategy != "none" else 0

    def plan_for(limit: int, sections: bool) -> Plan:
        source = doc if sections else replace(doc, sections=())
        rest = chunk_tail(source, counter, limit, first.end, 1)
        if not sections:  # titled from the real document's sections
            rest = [replace(c, section_title=doc.section_title(c.start, c.end)) for c in rest]
        return build_plan(doc, [first, *rest], model, settings, limits)

    candidates: list[Callable[[], Plan]] = []
    if all(c.token_count <= room.max_local_tokens for c in plan.chunks[1:]):
        candidates.append(lambda: build_plan(doc, plan.chunks, model, settings, limits))  # still fit
    output = state.map_max_tokens or plan.levels[0].output_tokens
    if framing is None:
        framing = settings.prompt_overhead_tokens + room.carried_context_tokens
    fixed = framing + output
    largest, *smaller = chunk_limits(room.max_local_tokens, tpm=limits.tpm, fixed=fixed, calibration=ratio)
    # Sections kept at the largest size; sizes that put k calls in a window pack only when cut evenly.
    candidates.append(partial(plan_for, largest, True))
    if ratios is None:  # (with the server's counts the window-filling cut below packs best: each costs ~0.3 s)
        candidates += [partial(plan_for, largest, False), *(partial(plan_for, size, False) for size in smaller)]
    # Or cut so that each window's calls fill it (the first call's admission already in the first window).
    call0 = plan.levels[0].calls[0]
    used = math.ceil(call0.est_prompt_tokens / plan.model.calibration * ratio * ESTIMATE_MARGIN) + call0.max_tokens
    costs = admissions
    if ratios is not None:
        def text_tokens(chunk: Chunk) -> int:
            return ratios.tokens(chunk.start, chunk.end, chunk.token_count)

        costs = partial(
            admissions, margin=1.0, text_tokens=text_tokens, summary_share=share, map_output=output, framing=framing
        )
        used = call0.est_prompt_tokens - call0.input_tokens + text_tokens(first) + call0.max_tokens
    cut = partial(window_chunks, doc, counter, first.end, 1, tpm=limits.tpm, used=used, calibration=ratio,
                  fixed=fixed, largest=largest)  # fmt: skip
    filled = cut() if ratios is None else cut(margin=1.0, fill=EXACT_WINDOW_FILL, ratio_at=ratios.sentence_at)
    if filled:
        candidates.append(partial(build_plan, doc, [first, *filled], model, settings, limits))
    # With exact counts the run starts every merge early (engine.early): windows are simulated so.
    return best_plan(candidates, tpm=limits.tpm, lag=lag, costs=costs, early=ratios is not None)


async def by_sampled_count(
    state: RunState, count: Count, *, model: ModelSpec, settings: RunSettings, limits: RateLimits,
    counter: TokenCounter,
) -> None:
    """Level 0 sized by the server's own tokenizer, sampled before its first call (when the server counts).

    A tokenizer that counts less than the calibration leaves chunks smaller than the window holds (more calls
    pay the instructions and output room again): level 0 is planned again by it. One that counts more is taken
    as the level's calibration without cutting the chunks smaller (they stay as the section packing chose; a
    prompt then over the window is predicted and sent with less output room, never refused). The count is the
    server's and deterministic: a rerun plans the same prompts.
    """
    ratio = await server_counts.sampled_ratio(state.document.text, counter, count)
    if ratio is None or abs(ratio / state.calibration - 1) < RECALIBRATE:
        return
    ratio = max(MIN_CALIBRATION, ratio)
    if ratio > state.calibration:
        state.calibration = ratio
        return
    calibrated = replace(state.model, calibration=ratio, calibration_cjk=None)
    plan = plan_document(state.document, calibrated, state.settings, limits, counter=counter)
    state.plan, state.chunks, state.model, state.calibration = plan, list(plan.chunks), plan.model, ratio
    state.room = chunk_room(state.model, settings)
    state.input_budget = merge_input_budget(state.model, settings)
    state.progress.plan_ready(plan)
    log.info("level 0 planned by the server's token count (%.3f per local token, not %.3f): %d chunks",
             ratio, model.for_language(state.document.language).calibration, len(plan.chunks))  # fmt: skip
