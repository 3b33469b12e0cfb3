"""Today's token quota (TPD) of one process's budget: booked in the ledger (shared, survives restarts) or in memory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from pipeline.budget.ledger import TokenLedger, quota_error
from pipeline.config import RateLimits
from pipeline.errors import QuotaExhaustedError, StoreError
from pipeline.utc import utc_day

log = logging.getLogger("tome.budget")


def server_quota_error(account: str, now: datetime) -> QuotaExhaustedError:
    """The error once the server itself said the day's token quota is reached."""
    err = quota_error(account, admitted=0, tpd=0, tokens=0, now=now)
    message = (
        f"The server reports the daily token quota (TPD) of account {account} is reached. It resets at "
        f"{err.resets_at:%Y-%m-%d %H:%M} UTC. Progress is saved: re-run the same command after the reset to resume."
    )
    return QuotaExhaustedError(message, quota="tpd", resets_at=err.resets_at)


class DayQuota:
    """Books each admission on its UTC day and refuses what today's TPD cannot fit."""

    def __init__(
        self, limits: RateLimits, *, account: str, ledger: TokenLedger | None, utcnow: Callable[[], datetime]
    ) -> None:
        self.limits = limits
        self.account = account
        self.ledger = ledger
        self.utcnow = utcnow
        self._memory: dict[str, int] = {}  # day -> admitted tokens, when there is no ledger
        self._server_day: str | None = None  # the server said TPD is reached on this UTC day

    @property
    def reserves_in_database(self) -> bool:
        """Whether an admission needs a database reservation first (a ledger and a TPD limit)."""
        return self.ledger is not None and bool(self.limits.tpd)

    def server_exhausted(self) -> None:
        """The server answered 429 for TPD: refuse the rest of its UTC day (in the ledger too, for others)."""
        self._server_day = utc_day(self.utcnow())
        if self.ledger is not None and self.limits.tpd:
            try:
                self.ledger.mark_exhausted(self.account, tpd=self.limits.tpd)
            except StoreError as exc:
                log.warning("Could not mark the TPD quota as reached in the ledger: %s", exc)

    def left_in_memory(self) -> int | None:
        """Tokens today's in-memory TPD still allows (None: no TPD, or the ledger counts)."""
        if not self.limits.tpd or self.ledger is not None:
            return None
        return self.limits.tpd - self._memory.get(utc_day(self.utcnow()), 0)

    def check(self, tokens: int) -> None:
        """Raise QuotaExhaustedError when today cannot fit ``tokens`` more (the server said so, or memory counts)."""
        now = self.utcnow()
        day = utc_day(now)
        if self._server_day == day:
            raise server_quota_error(self.account, now)
        if self.ledger is None and self.limits.tpd:
            admitted = self._memory.get(day, 0)
            if admitted + tokens > self.limits.tpd:
                raise quota_error(self.account, admitted=admitted, tpd=self.limits.tpd, tokens=tokens, now=now)

    def book_locally(self, tokens: int) -> str | None:
        """The day a call is booked on when no database reservation is needed (memory TPD, or none)."""
        if self.ledger is not None:
            return utc_day(self.utcnow())  # booked (admitted + used) in one write when the call ends
        if not self.limits.tpd:
            return None
        day = utc_day(self.utcnow())
        self._memory[day] = self._memory.get(day, 0) + tokens
        return day

    async def book(self, tokens: int) -> str | None:
        """Book the call on today's TPD (ledger or memory); the day it was booked on."""
        if self.ledger is None or not self.limits.tpd:
            return self.book_locally(tokens)
        return await asyncio.to_thread(self.ledger.reserve, self.account, tokens, tpd=self.limits.tpd)

    async def record(self, day: str | None, *, tokens: int, used: int) -> None:
        """After a call: book its use in the ledger (and its admission, when no TPD reserved it up front)."""
        if self.ledger is None or day is None:
            return
        admitted = 0 if self.limits.tpd else tokens
        if not (admitted or used):
            return
        try:
            await asyncio.to_thread(self.ledger.add, self.account, day, admitted=admitted, used=used)
        except StoreError as exc:
            # Losing the count must not fail a call that already ran.
            log.warning("Could not record tokens in the ledger: %s", exc)
