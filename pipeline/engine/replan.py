"""Planning level 0 again: for the window its first call found, or by the token count its first answer reported.

Under a binding TPM limit level 0's first call goes alone, and its answer sizes the rest.

Before any answer, tome's token counts are calibrated estimates; a gateway whose tokenizer counts more refuses
calls planned near the context (400) and fits fewer of them in a TPM window than planned. When the level needs
more than one window anyway, sending the first call alone costs nothing: its answer reports the server's count,
and the rest of the document is chunked again by it, sized to pack the windows (``pipeline.tpm_packing``).
The first call's answer is cached, so a rerun learns the same count and builds the same calls.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from pipeline.config import ModelSpec, RateLimits
from pipeline.engine.state import RunState
from pipeline.merge_plan import merge_input_budget
from pipeline.planning import Plan, build_plan, plan_document
from pipeline.prompt_room import chunk_room
from pipeline.settings import RunSettings
from pipeline.tokens import TokenCounter
from pipeline.tpm_packing import ESTIMATE_MARGIN, best_plan, chunk_limits, chunk_tail, window_chunks

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


def after_first_answer(state: RunState, *, settings: RunSettings, limits: RateLimits, counter: TokenCounter) -> None:
    """Level 0 with chunk 0 kept and the rest chunked by the server's count its answer reported."""
    plan = _rest_plan(state, settings=settings, limits=limits, counter=counter)
    if plan is not state.plan:
        state.plan, state.chunks = plan, list(plan.chunks)
        state.progress.plan_ready(plan)
        log.info("level 0 planned again by the server's token count: %d chunks", len(plan.chunks))


def _rest_plan(state: RunState, *, settings: RunSettings, limits: RateLimits, counter: TokenCounter) -> Plan:
    """The plan with chunk 0 kept and the rest chunked by the server's reported count (packing the windows)."""
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
    fixed = settings.prompt_overhead_tokens + room.carried_context_tokens + plan.levels[0].output_tokens
    largest, *smaller = chunk_limits(room.max_local_tokens, tpm=limits.tpm, fixed=fixed, calibration=ratio)
    # Sections kept at the largest size; sizes that put k calls in a window pack only when cut evenly.
    candidates += [partial(plan_for, largest, True), partial(plan_for, largest, False)]
    candidates += [partial(plan_for, size, False) for size in smaller]
    # Or cut so that each window's calls fill it (the first call's admission already in the first window).
    call0 = plan.levels[0].calls[0]
    used = math.ceil(call0.est_prompt_tokens / plan.model.calibration * ratio * ESTIMATE_MARGIN) + call0.max_tokens
    filled = window_chunks(
        doc, counter, first.end, 1, tpm=limits.tpm, used=used, calibration=ratio, fixed=fixed, largest=largest
    )
    if filled:
        candidates.append(partial(build_plan, doc, [first, *filled], model, settings, limits))
    return best_plan(candidates, tpm=limits.tpm, lag=lag)
