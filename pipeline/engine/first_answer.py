"""Level 0 under a binding TPM limit: its first call goes alone, and its answer sizes the rest.

Before any answer, tome's token counts are calibrated estimates; a gateway whose tokenizer counts more refuses
calls planned near the context (400) and fits fewer of them in a TPM window than planned. When the level needs
more than one window anyway, sending the first call alone costs nothing: its answer reports the server's count,
and the rest of the document is chunked again by it, sized to pack the windows (``pipeline.tpm_packing``).
The first call's answer is cached, so a rerun learns the same count and builds the same calls.
"""

from __future__ import annotations

from dataclasses import replace

from pipeline.config import RateLimits
from pipeline.engine.state import RunState
from pipeline.planning import Plan, build_plan
from pipeline.prompt_room import chunk_room
from pipeline.settings import RunSettings
from pipeline.tokens import TokenCounter
from pipeline.tpm_packing import admissions, chunk_limits, chunk_tail, windows_needed


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


def replan_rest(state: RunState, *, settings: RunSettings, limits: RateLimits, counter: TokenCounter) -> Plan:
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

    candidates = []
    if all(c.token_count <= room.max_local_tokens for c in plan.chunks[1:]):
        candidates.append(build_plan(doc, plan.chunks, model, settings, limits))  # still fit: kept if as good
    fixed = settings.prompt_overhead_tokens + room.carried_context_tokens + plan.levels[0].output_tokens
    for limit in chunk_limits(room.max_local_tokens, tpm=limits.tpm, fixed=fixed, calibration=ratio):
        candidates += [plan_for(limit, True), plan_for(limit, False)]
    best, chosen = None, plan
    for candidate in candidates:
        levels = admissions(candidate)
        score = (windows_needed(levels, limits.tpm, lag=lag), sum(map(sum, levels)))
        if best is None or score < best:
            best, chosen = score, candidate
    return chosen
