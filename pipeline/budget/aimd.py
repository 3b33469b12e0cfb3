"""Learning from 429s: multiplicative decrease of the axis that was hit, additive recovery on success."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.config import RateLimits

AXES = ("concurrency", "rpm", "tpm")
DECREASE = 0.7  # a 429 keeps 70 % of the effective limit of the axis hit
# One minute's worth of successful calls (the effective RPM, or the concurrency when RPM is unlimited)
# gives back this share of the configured limit, on every lowered axis.
INCREASE_PER_WINDOW = 0.1


def normalise_kind(limit_kind: str | None) -> tuple[str, ...]:
    """The axes a 429 of ``limit_kind`` lowers: that one, or all three when unknown."""
    kind = (limit_kind or "").strip().lower()
    aliases = {
        "requests": "rpm",
        "request": "rpm",
        "max_request": "rpm",
        "tokens": "tpm",
        "parallel": "concurrency",
        # An overloaded engine is not our quota: fewer calls at once relieve it; RPM/TPM stay.
        "overloaded": "concurrency",
        "engine_overloaded": "concurrency",
    }
    kind = aliases.get(kind, kind)
    return (kind,) if kind in AXES else AXES


@dataclass(slots=True)
class Scales:
    """Per-axis share (0, 1] of the configured limit currently in force."""

    concurrency: float = 1.0
    rpm: float = 1.0
    tpm: float = 1.0
    # Highest share recovery may climb back to, per axis: set when the server states its real limit.
    caps: dict[str, float] = field(default_factory=dict)

    def get(self, axis: str) -> float:
        return float(getattr(self, axis))

    def set(self, axis: str, value: float) -> None:
        setattr(self, axis, value)

    def lowered(self) -> bool:
        """True while any axis is below its configured limit."""
        return self.concurrency < 1.0 or self.rpm < 1.0 or self.tpm < 1.0


def _floor_scale(configured: int) -> float:
    # Never below one unit (one call, one request per minute, one token), so progress stays possible.
    return min(1.0, 1.0 / configured) if configured else 1.0


def decrease(scales: Scales, limits: RateLimits, axes: tuple[str, ...], *, stated: int | None = None) -> None:
    """Multiply each of ``axes`` by DECREASE (unlimited axes stay unlimited).

    ``stated``: the limit the server's 429 named for a single axis ("max concurrency: 4", "limit:40000").
    Below the effective limit it is the account's real limit (the tier was configured too high): go straight
    to it and never recover above it. At or above, someone else shares the account: decrease as usual.
    """
    for axis in axes:
        configured = getattr(limits, axis)
        if not configured:
            continue
        floor = _floor_scale(configured)
        if stated is not None and len(axes) == 1 and 0 < stated < configured * scales.get(axis):
            real = max(floor, stated / configured)
            scales.set(axis, real)
            scales.caps[axis] = real
        else:
            scales.set(axis, max(floor, scales.get(axis) * DECREASE))


def increase(scales: Scales, limits: RateLimits) -> None:
    """One successful call's share of the additive recovery, capped at the configured limits."""
    if not scales.lowered():
        return
    eff = effective(scales, limits)
    per_window = eff.rpm or eff.concurrency or 1
    step = INCREASE_PER_WINDOW / per_window
    for axis in AXES:
        value = scales.get(axis)
        cap = scales.caps.get(axis, 1.0)
        if value < cap:
            scales.set(axis, min(cap, value + step))


def effective(scales: Scales, limits: RateLimits) -> RateLimits:
    """The limits in force: configured × scale, rounded down, at least one unit (0 stays unlimited)."""

    def apply(configured: int, scale: float) -> int:
        return max(1, math.floor(configured * scale + 1e-9)) if configured else 0

    return RateLimits(
        concurrency=apply(limits.concurrency, scales.concurrency),
        rpm=apply(limits.rpm, scales.rpm),
        tpm=apply(limits.tpm, scales.tpm),
        tpd=limits.tpd,
    )


def change(before: RateLimits, after: RateLimits) -> str:
    """E.g. "concurrency 8->5, rpm 120->84, tpm 20000->14000" (for the log)."""
    b, a = before, after
    return f"concurrency {b.concurrency}->{a.concurrency}, rpm {b.rpm}->{a.rpm}, tpm {b.tpm}->{a.tpm}"
