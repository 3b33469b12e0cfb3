"""The least wall time a rate tier allows for a plan, level by level, and the limit that binds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.config import RateLimits

if TYPE_CHECKING:
    from pipeline.planning import Plan

# Assumed call latency when none is given: a fixed start-up cost plus generation speed. Rough figures for
# moonshot-v1; pass ``latency_s_per_call`` to min_wall_time for measured ones.
DEFAULT_CALL_OVERHEAD_S = 2.0
DEFAULT_OUTPUT_TOKENS_PER_S = 40.0


@dataclass(frozen=True, kw_only=True)
class WallTime:
    """The least wall time a rate tier allows for a plan, and the limit that binds."""

    seconds: float
    binding: str  # "latency" | "concurrency" | "context" | "rpm" | "tpm" | "tpd"
    days: int  # calendar days the tokens-per-day quota needs (1 when it fits or is unlimited)
    level_seconds: tuple[float, ...]
    level_binding: tuple[str, ...]
    latency_s_per_call: float | None  # None: estimated from each level's output budget

    def describe(self) -> str:
        """E.g. '3 min 20 s (bound by tpm)' or '3 days (bound by tpd)'."""
        if self.days > 1:
            return f"{self.days} days (bound by tpd: the plan needs more tokens than one day allows)"
        return f"{_duration(self.seconds)} (bound by {self.binding})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "binding": self.binding,
            "days": self.days,
            "level_seconds": [round(s, 1) for s in self.level_seconds],
            "level_binding": list(self.level_binding),
            "latency_s_per_call": self.latency_s_per_call,
            "text": self.describe(),
        }


def min_wall_time(plan: Plan, limits: RateLimits, latency_s_per_call: float | None = None) -> WallTime:
    """The least wall time ``limits`` allow for ``plan``, and which limit binds.

    Levels run one after another. Within a level, with ``n`` calls of latency ``L`` and admission tokens
    ``A`` (prompt + max_tokens, as the gateway counts), the level takes at least the largest of:
    ``L`` (latency: the level cannot finish before one call does), ``ceil(n / concurrency) * L``,
    (lagged context adds no term: the engine's lag is at least the concurrency, so it never idles a slot),
    ``(ceil(n / rpm) - 1) * 60 + L`` and ``(ceil(A / tpm) - 1) * 60 + L`` (per-minute windows).
    The run takes at least the sum over levels, and at least the whole plan's RPM/TPM windows. If the plan's
    admission tokens exceed TPD, it needs ``ceil(A_total / tpd)`` days and TPD binds.

    Args:
        latency_s_per_call: seconds one call takes; None estimates it per level as
            ``DEFAULT_CALL_OVERHEAD_S + max_tokens / DEFAULT_OUTPUT_TOKENS_PER_S``.
    """
    level_seconds: list[float] = []
    level_binding: list[str] = []
    by_limit: dict[str, float] = {}
    for level in plan.levels:
        n = len(level.calls)
        latency = (
            latency_s_per_call
            if latency_s_per_call is not None
            else DEFAULT_CALL_OVERHEAD_S + level.output_tokens / DEFAULT_OUTPUT_TOKENS_PER_S
        )
        terms = {"latency": latency}
        if limits.concurrency > 0:
            terms["concurrency"] = math.ceil(n / limits.concurrency) * latency
        if limits.rpm > 0:
            terms["rpm"] = (math.ceil(n / limits.rpm) - 1) * 60.0 + latency
        if limits.tpm > 0:
            terms["tpm"] = (math.ceil(level.admission_tokens / limits.tpm) - 1) * 60.0 + latency
        kind = _binding(terms)
        level_seconds.append(terms[kind])
        level_binding.append(kind)
        by_limit[kind] = by_limit.get(kind, 0.0) + terms[kind]
    seconds = sum(level_seconds)
    binding = max(by_limit, key=lambda k: (by_limit[k], -_PRIORITY.index(k)))
    totals = {}
    if limits.rpm > 0:
        totals["rpm"] = (math.ceil(plan.total_calls / limits.rpm) - 1) * 60.0
    if limits.tpm > 0:
        totals["tpm"] = (math.ceil(plan.admission_tokens / limits.tpm) - 1) * 60.0
    for kind, value in totals.items():
        if value > seconds:
            seconds, binding = value, kind
    days = 1
    if limits.tpd > 0 and plan.admission_tokens > limits.tpd:
        days = math.ceil(plan.admission_tokens / limits.tpd)
        seconds = max(seconds, (days - 1) * 86_400.0)
        binding = "tpd"
    return WallTime(
        seconds=seconds,
        binding=binding,
        days=days,
        level_seconds=tuple(level_seconds),
        level_binding=tuple(level_binding),
        latency_s_per_call=latency_s_per_call,
    )


# On a tie, name the earlier entry: a limit binds only when it costs more time than the calls themselves.
_PRIORITY = ("latency", "concurrency", "context", "rpm", "tpm")


def _binding(terms: dict[str, float]) -> str:
    return max(terms, key=lambda k: (terms[k], -_PRIORITY.index(k)))


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
