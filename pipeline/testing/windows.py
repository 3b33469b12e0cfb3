"""The fake account's limit windows: calls and tokens in the sliding minute, tokens today, calls in flight.

Not locked itself: the gateway calls it under its own lock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pipeline.config import RateLimits
from pipeline.testing import moonshot_errors as E

WINDOW_S = 60.0  # RPM and TPM are counted in a sliding minute


@dataclass(frozen=True)
class Rejection:
    """Which limit refused a call, and the 429 the gateway answers."""

    kind: str
    status: int
    body: dict[str, Any]


def utc_day(t: float) -> date:
    return datetime.fromtimestamp(t, UTC).date()


class RateWindows:
    """Counts admitted calls against concurrency, RPM, TPM and TPD as Moonshot's gateway does."""

    def __init__(self, now: float) -> None:
        self.calls: deque[float] = deque()
        self.tokens: deque[tuple[float, int]] = deque()
        self.tpm_used = 0
        self.tpd_day = utc_day(now)
        self.tpd_used = 0
        self.in_flight = 0

    def clear(self, now: float) -> None:
        """Empty the minute and the day (calls in flight keep their slot)."""
        self.calls.clear()
        self.tokens.clear()
        self.tpm_used = self.tpd_used = 0
        self.tpd_day = utc_day(now)

    def reset_day(self, now: float) -> None:
        """Forget today's TPD usage, as at UTC midnight."""
        self.tpd_used = 0
        self.tpd_day = utc_day(now)

    def roll(self, now: float) -> None:
        """Drop what left the sliding minute; a new UTC day starts TPD afresh."""
        while self.calls and self.calls[0] <= now - WINDOW_S:
            self.calls.popleft()
        while self.tokens and self.tokens[0][0] <= now - WINDOW_S:
            self.tpm_used -= self.tokens.popleft()[1]
        if utc_day(now) != self.tpd_day:
            self.tpd_day, self.tpd_used = utc_day(now), 0

    def admit(self, cost: int, now: float, limits: RateLimits, uid: str, ak: str) -> Rejection | None:
        """Count a call costing ``cost`` tokens (prompt + max_tokens), or say which limit refused it."""
        self.roll(now)
        lim = limits
        if lim.concurrency and self.in_flight >= lim.concurrency:
            return Rejection("concurrency", *E.max_concurrency(uid, ak, lim.concurrency, 1))
        if lim.rpm and len(self.calls) >= lim.rpm:
            wait = max(1, math.ceil(self.calls[0] + WINDOW_S - now))
            return Rejection("rpm", *E.max_rpm(uid, ak, lim.rpm, wait))
        if lim.tpm and self.tpm_used + cost > lim.tpm:
            return Rejection("tpm", *E.tpm_limit(uid, ak, self.tpm_used + cost, lim.tpm))
        if lim.tpd and self.tpd_used + cost > lim.tpd:
            return Rejection("tpd", *E.tpd_limit(uid, ak, self.tpd_used + cost, lim.tpd))
        self.calls.append(now)
        self.tokens.append((now, cost))
        self.tpm_used += cost
        self.tpd_used += cost
        self.in_flight += 1
        return None

    def usage(self, now: float) -> dict[str, int]:
        """In-flight calls, calls and tokens in the last minute, tokens today."""
        self.roll(now)
        return {"in_flight": self.in_flight, "rpm": len(self.calls), "tpm": self.tpm_used, "tpd": self.tpd_used}
