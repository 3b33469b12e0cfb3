"""The gateway's sliding window: an admission at time t costs its tokens and one request until t + window."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from pipeline.config import RateLimits

WINDOW_S = 60.0
# Float slack so that "expires at t + 60" holds when a clock lands a hair before t + 60 after a computed sleep.
_EPS = 1e-6


class SlidingWindow:
    """Admissions of the last ``window_s`` seconds, oldest first, with their running token total.

    Matches the gateway: an admission at ``t`` counts against RPM and TPM while ``now < t + window_s``.
    Admission times must be added in non-decreasing order.
    """

    __slots__ = ("window_s", "_entries", "total_tokens")

    def __init__(self, window_s: float = WINDOW_S, entries: Iterable[tuple[float, int]] = ()) -> None:
        self.window_s = window_s
        self._entries: deque[tuple[float, int]] = deque()
        self.total_tokens = 0
        for at, tokens in entries:
            self.add(at, tokens)

    def __len__(self) -> int:
        return len(self._entries)

    def copy(self) -> SlidingWindow:
        """An independent copy (for what-if estimates)."""
        return SlidingWindow(self.window_s, self._entries)

    def add(self, at: float, tokens: int) -> None:
        """Record an admission at ``at`` costing ``tokens``."""
        self._entries.append((at, tokens))
        self.total_tokens += tokens

    def correct(self, at: float, tokens: int, charged: int) -> None:
        """Replace the cost of the admission made at ``at`` (estimated ``tokens``) by what the gateway charged."""
        entries = self._entries
        for i in range(len(entries) - 1, -1, -1):
            if entries[i] == (at, tokens):
                entries[i] = (at, charged)
                self.total_tokens += charged - tokens
                return

    def expire(self, now: float) -> None:
        """Forget admissions whose window has ended by ``now``."""
        entries = self._entries
        edge = now - self.window_s + _EPS
        while entries and entries[0][0] <= edge:
            self.total_tokens -= entries.popleft()[1]

    def fit_time(self, now: float, tokens: int, *, rpm: int, tpm: int) -> float:
        """Earliest time >= ``now`` at which one more admission of ``tokens`` fits ``rpm`` and ``tpm``.

        ``0`` means unlimited. Returns ``inf`` when ``tokens`` exceeds ``tpm`` even in an empty window.
        """
        self.expire(now)
        entries = self._entries
        at = now
        if rpm and len(entries) >= rpm:
            # Enough of the oldest must expire that len - expired < rpm.
            at = max(at, entries[len(entries) - rpm][0] + self.window_s)
        if tpm and self.total_tokens + tokens > tpm:
            if tokens > tpm:
                return math.inf
            excess = self.total_tokens + tokens - tpm
            freed = 0
            for when, cost in entries:
                freed += cost
                if freed >= excess:
                    at = max(at, when + self.window_s)
                    break
        return at


ESTIMATE_EXACT_CALLS = 2000  # a wait estimate simulates this many calls exactly, then extrapolates


def estimate_admission_time(
    window: SlidingWindow,
    start: float,
    *,
    pending: Iterable[int],
    tokens: int,
    calls: int,
    rpm: int,
    tpm: int,
) -> float:
    """When ``calls`` more admissions of ``tokens`` each, after the ``pending`` queued ones, would all fit.

    Mutates ``window`` (pass a copy). The first ESTIMATE_EXACT_CALLS calls are simulated exactly; the rest
    are extrapolated at the limits' rate. A call above the (lowered) TPM is admitted alone, as the budgets do.
    """
    at = start
    exact = min(calls, ESTIMATE_EXACT_CALLS)
    for cost in [*pending, *([tokens] * exact)]:
        at = window.fit_time(at, cost, rpm=rpm, tpm=max(tpm, cost) if tpm else 0)
        window.add(at, cost)
    rest = calls - exact
    rates = [rpm / window.window_s] if rpm else []
    if tpm and tokens:
        rates.append(tpm / tokens / window.window_s)
    if rest > 0 and rates:
        at += rest / min(rates)
    return at


def wait_estimate(
    window: SlidingWindow,
    start: float,
    pending: list[int],
    tokens: int,
    calls: int,
    limits: RateLimits,
    effective: RateLimits,
    day_left: int | None,
) -> float:
    """When ``calls`` more calls of ``tokens`` each (after ``pending``) would all be admitted, from ``start``.

    ``inf`` when they never can today (over TPM/TPD, or over what is ``day_left``); ``start`` for no calls.
    """
    tokens = max(0, int(tokens))
    if calls <= 0:
        return start
    if (limits.tpm and tokens > limits.tpm) or (limits.tpd and tokens > limits.tpd):
        return math.inf
    if day_left is not None and tokens * calls > day_left:
        return math.inf
    return estimate_admission_time(
        window.copy(),
        start,
        pending=pending,
        tokens=tokens,
        calls=calls,
        rpm=effective.rpm,
        tpm=effective.tpm,
    )
