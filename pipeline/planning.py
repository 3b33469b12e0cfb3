"""The plan: the whole recursion tree a run will execute, its tokens, cost and minimum wall time — before any call.

Level 0 makes one call per chunk. Each later level packs the previous level's summaries into merge calls that
fit the input budget, until one call (the final summary) remains. The engine reuses the same pure helpers with
the ACTUAL summary sizes (``plan_merge``), so the plan and the run take the same decisions.

Per-level output budgets are set from the top down (``level_output_tokens``): the final call writes
``target_tokens``; every lower level writes as much as the level above can take in, capped by
``chunk_output_tokens``; and every level shrinks the total text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.chunking import Chunk, chunk_document
from pipeline.config import ModelSpec, RateLimits
from pipeline.context import effective_lag
from pipeline.documents.model import Document
from pipeline.errors import DepthLimitError, EmptyDocumentError
from pipeline.merge_plan import (
    MIN_CALL_OUTPUT_TOKENS,
    level_output_tokens,
    merge_input_budget,
    plan_merge,
    shrunk_output,
)
from pipeline.packing import pack_groups
from pipeline.prompt_room import PromptRoom, chunk_room
from pipeline.settings import RunSettings
from pipeline.span_memo import SpanMemo
from pipeline.tokens import TokenCounter, calibrated, counter_for
from pipeline.tpm_packing import packed_plan
from pipeline.wall_time import WallTime, min_wall_time


@dataclass(frozen=True, kw_only=True)
class PlannedCall:
    """One call of the tree. Tokens are the provider's (calibrated local estimates)."""

    level: int
    index: int
    inputs: tuple[int, ...]  # level 0: the chunk index; later: indexes of calls in the level below
    input_tokens: int  # the text being summarised: the chunk, or the child summaries (at their max size)
    carried_tokens: int  # room for earlier summaries carried as context (0 without context)
    est_prompt_tokens: int  # input + prompt overhead + carried context
    max_tokens: int  # the output budget

    @property
    def admission_tokens(self) -> int:
        """What the gateway counts against TPM/TPD when the call is admitted: prompt + max_tokens."""
        return self.est_prompt_tokens + self.max_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "index": self.index,
            "inputs": list(self.inputs),
            "input_tokens": self.input_tokens,
            "carried_tokens": self.carried_tokens,
            "est_prompt_tokens": self.est_prompt_tokens,
            "max_tokens": self.max_tokens,
            "admission_tokens": self.admission_tokens,
        }


@dataclass(frozen=True, kw_only=True)
class PlannedLevel:
    """All calls of one level; they may run concurrently, and only after the level below has finished."""

    level: int
    output_tokens: int  # per-call output budget (max_tokens)
    input_budget_tokens: int  # input one call of this level may take
    calls: tuple[PlannedCall, ...]

    @property
    def est_prompt_tokens(self) -> int:
        return sum(c.est_prompt_tokens for c in self.calls)

    @property
    def est_completion_tokens(self) -> int:
        return sum(c.max_tokens for c in self.calls)

    @property
    def admission_tokens(self) -> int:
        return sum(c.admission_tokens for c in self.calls)

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "calls": len(self.calls),
            "output_tokens": self.output_tokens,
            "input_budget_tokens": self.input_budget_tokens,
            "est_prompt_tokens": self.est_prompt_tokens,
            "est_completion_tokens": self.est_completion_tokens,
            "admission_tokens": self.admission_tokens,
            "call_list": [c.as_dict() for c in self.calls],
        }


@dataclass(frozen=True, kw_only=True)
class Plan:
    """Everything a run will do, estimated before any call."""

    document: Document
    chunks: tuple[Chunk, ...]
    model: ModelSpec
    settings: RunSettings
    limits: RateLimits
    budget: PromptRoom  # the level-0 (chunk) budget
    levels: tuple[PlannedLevel, ...]
    wall_time: WallTime | None = field(default=None, compare=False)  # set by build_plan

    @property
    def total_calls(self) -> int:
        return sum(len(level.calls) for level in self.levels)

    @property
    def calls_per_level(self) -> list[int]:
        return [len(level.calls) for level in self.levels]

    @property
    def min_wall_time_s(self) -> float | None:
        """The least wall time the plan's rate limits allow (None before build_plan sets it)."""
        return self.wall_time.seconds if self.wall_time else None

    @property
    def depth(self) -> int:
        """Merge levels above level 0."""
        return len(self.levels) - 1

    @property
    def est_prompt_tokens(self) -> int:
        return sum(level.est_prompt_tokens for level in self.levels)

    @property
    def est_completion_tokens(self) -> int:
        """Upper bound: every call writes its whole output budget."""
        return sum(level.est_completion_tokens for level in self.levels)

    @property
    def admission_tokens(self) -> int:
        return sum(level.admission_tokens for level in self.levels)

    @property
    def est_cost(self) -> float:
        """Upper-bound price in ``model.currency`` (prompt estimate + every output budget used up)."""
        return self.model.cost(self.est_prompt_tokens, self.est_completion_tokens)

    def calls(self) -> list[PlannedCall]:
        """Every call, level by level."""
        return [call for level in self.levels for call in level.calls]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: document, settings, budget derivation, every chunk, the tree, totals, wall time."""
        doc = self.document
        return {
            "document": {
                "path": str(doc.path),
                "title": doc.title,
                "language": doc.language,
                "format": doc.source_format,
                "chars": len(doc.text),
                "sections": len(doc.sections),
                "pages": len(doc.pages),
            },
            "model": self.model.name,
            "tier": self.settings.tier,
            "limits": {
                "concurrency": self.limits.concurrency,
                "rpm": self.limits.rpm,
                "tpm": self.limits.tpm,
                "tpd": self.limits.tpd,
            },
            "target_tokens": self.settings.target_tokens,
            "context_strategy": self.settings.context_strategy,
            "budget": self.budget.as_dict(),
            "chunks": [
                {**c.as_dict(), "calibrated_tokens": calibrated(self.model, c.token_count)}
                for c in self.chunks
            ],
            "levels": [level.as_dict() for level in self.levels],
            "totals": {
                "calls": self.total_calls,
                "depth": self.depth,
                "est_prompt_tokens": self.est_prompt_tokens,
                "est_completion_tokens": self.est_completion_tokens,
                "admission_tokens": self.admission_tokens,
                "est_cost": round(self.est_cost, 6),
                "currency": self.model.currency,
            },
            "wall_time": self.wall_time.as_dict() if self.wall_time else None,
        }


def build_plan(
    doc: Document,
    chunks: Sequence[Chunk],
    model: ModelSpec,
    settings: RunSettings,
    limits: RateLimits,
    *,
    latency_s_per_call: float | None = None,
) -> Plan:
    """The whole recursion tree for ``chunks`` of ``doc``, with token, cost and wall-time estimates.

    Level 0: one call per chunk; prompt = calibrated chunk tokens + prompt overhead + carried context (calls
    after the first, when context is carried). Later levels: ``plan_merge`` over the previous level's
    output budgets, exactly as the engine does with actual sizes.

    Raises:
        EmptyDocumentError: no chunks.
        DepthLimitError: the tree would be deeper than ``settings.max_depth``.
    """
    if not chunks:
        raise EmptyDocumentError(f"{doc.path} has no text to plan for.")
    budget = chunk_room(model, settings)
    input_budget = merge_input_budget(model, settings)
    carry = settings.context_strategy != "none"
    overhead = settings.prompt_overhead_tokens

    def carried(index: int, output: int) -> int:
        return (
            budget.with_output(output).carried_context_tokens
            if carry and index >= 1  # the engine gives every call after the first some context
            else 0
        )

    chunk_tokens = [calibrated(model, c.token_count) for c in chunks]
    if len(chunks) == 1:
        # A single call writes the final summary; it may use what the context has left beyond the chunk.
        room = model.context_tokens - overhead - model.safety_margin_tokens - chunk_tokens[0]
        o0 = max(1, min(shrunk_output(settings.target_tokens, chunk_tokens[0], 1), room))
    else:
        o0 = level_output_tokens(
            len(chunks),
            target_tokens=settings.target_tokens,
            max_output_tokens=settings.chunk_output_tokens,
            input_budget=input_budget,
            max_depth=settings.max_depth,
            source_tokens=sum(chunk_tokens),
        )[0]
    calls = tuple(
        _call(0, i, (i,), tokens, carried(i, o0), overhead, o0) for i, tokens in enumerate(chunk_tokens)
    )
    levels = [PlannedLevel(level=0, output_tokens=o0, input_budget_tokens=budget.input_tokens, calls=calls)]
    while len(levels[-1].calls) > 1:
        level = len(levels)
        if level > settings.max_depth:
            raise DepthLimitError(
                f"The summary tree needs more than max_depth={settings.max_depth} merge levels; "
                "use a model with a larger context window or a shorter target length."
            )
        sizes = [c.max_tokens for c in levels[-1].calls]
        output, groups = plan_merge(
            sizes,
            target_tokens=settings.target_tokens,
            max_output_tokens=settings.chunk_output_tokens,
            input_budget=input_budget,
            max_depth=settings.max_depth - level + 1,
        )
        calls = tuple(
            _call(level, i, tuple(g), sum(sizes[j] for j in g), carried(i, output), overhead, output)
            for i, g in enumerate(groups)
        )
        levels.append(
            PlannedLevel(
                level=level, output_tokens=output, input_budget_tokens=input_budget(output), calls=calls
            )
        )
    plan = Plan(
        document=doc,
        chunks=tuple(chunks),
        model=model,
        settings=settings,
        limits=limits,
        budget=budget,
        levels=tuple(levels),
    )
    return replace(plan, wall_time=min_wall_time(plan, limits, latency_s_per_call))


def _call(
    level: int, index: int, inputs: tuple[int, ...], tokens: int, carried: int, overhead: int, output: int
) -> PlannedCall:
    return PlannedCall(
        level=level,
        index=index,
        inputs=inputs,
        input_tokens=tokens,
        carried_tokens=carried,
        est_prompt_tokens=tokens + overhead + carried,
        max_tokens=output,
    )


__all__ = [
    "MIN_CALL_OUTPUT_TOKENS",
    "Plan",
    "PlannedCall",
    "PlannedLevel",
    "build_plan",
    "level_output_tokens",
    "merge_input_budget",
    "pack_groups",
    "plan_merge",
]


def plan_document(
    doc: Document,
    model: ModelSpec,
    settings: RunSettings,
    limits: RateLimits,
    *,
    counter: TokenCounter | None = None,
    latency_s_per_call: float | None = None,
) -> Plan:
    """Chunk ``doc`` for ``model`` (calibrated for the document's language) and plan the whole tree."""
    model = model.for_language(doc.language)
    count = counter or counter_for(model)
    memo = SpanMemo(doc.text, count)  # each paragraph is counted once, however many budgets are tried

    def plan_for(limit: int | PromptRoom) -> Plan:
        chunks = chunk_document(doc, count, limit, memo=memo)
        return build_plan(doc, chunks, model, settings, limits, latency_s_per_call=latency_s_per_call)

    # Under a binding TPM limit, the chunk size that packs the 60-s windows best (pipeline.tpm_packing). Chunks
    # are spans of the one text, so comparing budgets copies none of it.
    lag = effective_lag(settings.context_lag, limits.concurrency) if settings.context_strategy != "none" else 0
    return packed_plan(plan_for(chunk_room(model, settings)), plan_for, tpm=limits.tpm, lag=lag)
