"""Sizing level-0 calls so that they pack the tokens-per-minute window.

Under a TPM limit the gateway admits at most ``tpm`` tokens (prompt + max_tokens) in any 60 s, so a run takes
about one minute per window it fills; a 20,000-TPM window holds three 6,000-token calls but only two
7,500-token ones. When TPM binds, the chunk budget is chosen among a few sizes (the largest the context allows,
and sizes that put k calls in a window) by simulating the windows each plan needs, level by level, the way the
rate budget admits calls (a call goes into the first window with room: a smaller call is admitted while a
larger one waits, when it does not delay it). The plan needing the fewest windows wins; among those, one whose
last window is not crowded, then the one admitting the fewest tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline.chunking import Chunk, chunk_document
from pipeline.documents.model import Document, Page, Section
from pipeline.sentences import sentence_spans
from pipeline.tokens import TokenCounter

if TYPE_CHECKING:
    from pipeline.planning import Plan

# The budget admits a prompt at its calibrated estimate times this until the server has counted it
# (pipeline.engine.resolver.ADMISSION_MARGIN): windows are simulated with the same count.
ESTIMATE_MARGIN = 1.03
WINDOW_FILL = 0.99  # a k-calls-per-window chunk size aims this far into the window (chunks vary in size)
EXTRA_SIZES = 3  # sizes tried beyond the largest: k, k+1, k+2 calls per window
LAST_WINDOW_SHARE = 0.75  # a last window fuller than this is crowded (see score)
# A call may end at a paragraph end this far into its share rather than at the sentence nearest the share
# (a cut short of the share leaves the difference of the window empty).
PARAGRAPH_CUT = 0.97


def admissions(
    plan: Plan,
    *,
    margin: float = ESTIMATE_MARGIN,
    text_tokens: Callable[[Chunk], int] | None = None,
    summary_share: float = 1.0,
    map_output: int | None = None,
    framing: int | None = None,
) -> list[list[int]]:
    """Admission tokens of every planned call, level by level, as the budget counts them before any answer.

    ``text_tokens``: the server's count of a chunk's text, when known better than by the plan's calibration.
    ``summary_share``: the share of its output budget a summary is expected to fill (merges' inputs).
    ``map_output``: the max_tokens level 0's calls after the first are sent with, when not the plan's;
    ``framing``: what level 0's calls after the first send besides their text, when counted by the server.
    """
    levels = []
    for n, level in enumerate(plan.levels):
        costs = []
        for c in level.calls:
            prompt = c.est_prompt_tokens
            if n == 0 and text_tokens is not None:
                prompt += text_tokens(plan.chunks[c.index]) - c.input_tokens
                if framing is not None and c.index > 0:
                    prompt = text_tokens(plan.chunks[c.index]) + framing
            elif n > 0:
                prompt -= c.input_tokens - math.ceil(c.input_tokens * summary_share)
            output = map_output if n == 0 and c.index > 0 and map_output else c.max_tokens
            costs.append(math.ceil(prompt * margin) + output)
        levels.append(costs)
    return levels


def windows_needed(levels: Sequence[Sequence[int]], tpm: int, *, lag: int = 0, used: int = 0) -> int:
    """60-s windows needed to admit ``levels`` (admission tokens, in order) at ``tpm``, level after level.

    Each call goes into the first window with room, no earlier than the window the level below ended in, and
    (``lag``) no earlier than the call whose summary it carries. ``used``: tokens already in the first window.
    """
    return _windows(levels, tpm, lag=lag, used=used)[0]


def _windows(
    levels: Sequence[Sequence[int]],
    tpm: int,
    *,
    lag: int,
    used: int = 0,
    early: Sequence[Sequence[Sequence[int]]] | None = None,
) -> tuple[int, int]:
    """(windows needed, tokens in the last one).

    ``early``: each level's groups (indexes in the level below), from level 1 up, when a merge starts as soon as
    its summaries and the one after them exist (pipeline.engine.early) rather than after the whole level below.
    """
    room = [tpm - used]
    start = 0
    below: list[int] = []
    for n, calls in enumerate(levels):
        placed: list[int] = []
        end = start
        for i, cost in enumerate(calls):
            floor = start
            if n > 0 and early is not None:
                floor = max(below[: early[n - 1][i][-1] + 2])
            w = max(floor, placed[i - lag]) if lag and i >= lag else floor
            while True:
                if w == len(room):
                    room.append(tpm)
                if cost <= room[w] or room[w] == tpm:  # an empty window takes any call the budget admits
                    break
                w += 1
            room[w] -= cost
            placed.append(w)
            end = max(end, w)
        start, below = end, placed
    return start + 1, tpm - room[start]


Costs = Callable[["Plan"], list[list[int]]]


def score(
    plan: Plan, tpm: int, *, lag: int, costs: Costs = admissions, early: bool = False
) -> tuple[int, bool, int]:
    """How well ``plan`` packs TPM windows, lower is better: (windows, last window crowded, all tokens).

    A crowded last window (over LAST_WINDOW_SHARE of the TPM) leaves the calls that wait for everything else
    (the last merges) little room: one late answer and they spill into one window more. ``early``: every merge
    starts as soon as its summaries exist.
    """
    levels = costs(plan)
    groups = [[c.inputs for c in level.calls] for level in plan.levels[1:]] if early else None
    windows, last = _windows(levels, tpm, lag=lag, early=groups)
    return windows, last > LAST_WINDOW_SHARE * tpm, sum(map(sum, levels))


def chunk_limits(
    largest: int, *, tpm: int, fixed: int, calibration: float, margin: float = ESTIMATE_MARGIN
) -> list[int]:
    """Chunk budgets (local tokens) worth trying: ``largest``, and those putting k, k+1, ... calls in a window.

    ``fixed``: a call's admission tokens besides its chunk (prompt overhead, carried context, max_tokens).
    """
    limits = [largest]
    per_call = math.ceil(largest * calibration * margin) + fixed
    k = max(1, math.ceil(tpm / per_call))
    for calls in range(k, k + EXTRA_SIZES):
        local = int((tpm * WINDOW_FILL / calls - fixed) / (calibration * margin))
        if 0 < local < largest and local not in limits:
            limits.append(local)
    return limits


def best_plan(
    candidates: Sequence[Callable[[], Plan]],
    *,
    tpm: int,
    lag: int,
    costs: Costs = admissions,
    early: bool = False,
) -> Plan:
    """The candidate plan that packs the windows best (:func:`score`; the first on a tie)."""
    best: tuple[int, bool, int] | None = None
    chosen: Plan | None = None
    for make in candidates:
        plan = make()
        scored = score(plan, tpm, lag=lag, costs=costs, early=early)
        if best is None or scored < best:
            best, chosen = scored, plan
    if chosen is None:
        raise ValueError("best_plan needs at least one candidate")
    return chosen


def chunk_tail(doc: Document, counter: TokenCounter, limit: int, start: int, first_index: int) -> list[Chunk]:
    """Chunks of ``doc.text[start:]`` (offsets, sections and pages of ``doc``), numbered from ``first_index``."""
    kept = [i for i, s in enumerate(doc.sections) if s.end > start]
    tail = replace(
        doc,
        text=doc.text[start:],
        sections=tuple(
            Section(s.title, max(0, s.start - start), s.end - start, s.level)
            for s in (doc.sections[i] for i in kept)
        ),
        pages=tuple(
            Page(p.number, max(0, p.start - start), p.end - start) for p in doc.pages if p.end > start
        ),
    )
    chunks = []
    for c in chunk_document(tail, counter, limit):
        a, b = c.start + start, c.end + start
        chunks.append(
            Chunk(
                index=first_index + c.index,
                start=a,
                end=b,
                token_count=c.token_count,
                section_title=doc.section_title(a, b) if c.section_index >= 0 else "",
                section_index=kept[c.section_index] if c.section_index >= 0 else -1,
                pages=doc.pages_for(a, b),
                source=doc.text,
            )
        )
    return chunks


def packed_plan(plan: Plan, plan_for: Callable[[int], Plan], *, tpm: int, lag: int) -> Plan:
    """``plan``, or the plan of another chunk budget needing fewer TPM windows (``plan_for(local_limit)``)."""
    if not tpm or plan.admission_tokens <= tpm or len(plan.levels[0].calls) < 2:
        return plan
    first = plan.levels[0]
    fixed = plan.settings.prompt_overhead_tokens + plan.budget.carried_context_tokens + first.output_tokens
    sizes = chunk_limits(
        plan.budget.max_local_tokens, tpm=tpm, fixed=fixed, calibration=plan.model.calibration
    )
    return best_plan([lambda: plan, *(lambda s=s: plan_for(s) for s in sizes[1:])], tpm=tpm, lag=lag)


def window_chunks(
    doc: Document,
    counter: TokenCounter,
    start: int,
    first_index: int,
    *,
    tpm: int,
    used: int,
    calibration: float,
    fixed: int,
    largest: int,
    margin: float = ESTIMATE_MARGIN,
    fill: float = WINDOW_FILL,
    ratio_at: Callable[[int], float] | None = None,
) -> list[Chunk]:
    """Chunks of ``doc.text[start:]`` cut so that each 60-s window's calls fill it (section-blind).

    Window by window (the first already holds ``used``): as few calls as the context allows (``largest`` local
    tokens of text at most), equal in admission tokens and together ``fill`` of the window; cuts at the
    sentence end (a paragraph end when one is near) at or before each call's share of text. ``ratio_at``: the
    server's tokens per local token of the text at an offset, when measured there (else ``calibration``).
    """
    text = doc.text
    spans = [(start + a, start + b) for a, b in sentence_spans(text[start:])]
    local = [counter.count(text[a:b]) for a, b in spans]
    # In the server's tokens as admission counts them, so that a window's calls add up to what it holds.
    sizes = [n * (ratio_at(a) if ratio_at else calibration) * margin for n, (a, _) in zip(local, spans, strict=True)]
    per_token = calibration * margin
    most = math.ceil(largest * per_token) + fixed  # the largest call's admission
    cuts: list[int] = []
    i, room = 0, tpm - used
    while i < len(spans):
        calls = max(1, math.ceil(room / most))
        target = max(1.0, min(largest * per_token, room * fill / calls - fixed))
        for _ in range(calls):
            if i >= len(spans):
                break
            total, count, j, paragraph = 0.0, 0, i, None
            while j < len(spans) and (j == i or (total + sizes[j] <= target and count + local[j] <= largest)):
                total += sizes[j]
                count += local[j]
                j += 1
                if text[spans[j - 1][0] : spans[j - 1][1]].endswith("\n\n") and total >= PARAGRAPH_CUT * target:
                    paragraph = j
            i = paragraph if paragraph is not None and j < len(spans) else j
            cuts.append(spans[i - 1][1])
        room = tpm
    if len(cuts) >= 2 and counter.count(text[cuts[-2] : cuts[-1]]) < largest // 4:
        merged = counter.count(text[(cuts[-3] if len(cuts) >= 3 else start) : cuts[-1]])
        if merged <= largest:  # no tiny last call: its overhead is not worth it
            del cuts[-2]
    chunks: list[Chunk] = []
    for n, (a, b) in enumerate(zip([start, *cuts[:-1]], cuts, strict=True)):
        touched = [k for k, s in enumerate(doc.sections) if s.start < b and s.end > a]
        chunks.append(
            Chunk(
                index=first_index + n,
                start=a,
                end=b,
                token_count=counter.count(text[a:b]),
                section_title=doc.section_title(a, b),
                section_index=touched[0] if touched else -1,
                pages=doc.pages_for(a, b),
                source=text,
            )
        )
    # A sentence longer than the context allows: leave such text to the chunker (it cuts inside sentences).
    return chunks if all(c.token_count <= largest for c in chunks) else []
