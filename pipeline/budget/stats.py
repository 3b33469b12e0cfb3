"""What a budget did: counters for logs, run reports and benchmarks, and the slot a call holds."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from pipeline.budget.presets import tier_warning
from pipeline.config import Catalog, RateLimits
from pipeline.llm.types import Usage

log = logging.getLogger("tome.budget")


@dataclass(frozen=True, kw_only=True)
class BudgetStats:
    """A snapshot of a budget's counters (waits are in the budget's clock's seconds)."""

    configured: RateLimits
    effective: RateLimits  # after AIMD decreases; recovers to ``configured``
    admitted: int = 0  # calls admitted
    waited: int = 0  # admitted calls that had to wait
    wait_s: float = 0.0  # total time admitted calls spent waiting
    max_wait_s: float = 0.0
    rate_limited: int = 0  # 429s reported through on_rate_limited
    decreases: int = 0  # AIMD decreases applied (several 429s of one burst count once)
    quota_exhausted: int = 0  # admissions refused for TPD
    admitted_tokens: int = 0  # admission cost (prompt estimate + max_tokens) of admitted calls
    used_tokens: int = 0  # real usage recorded by calls
    in_flight: int = 0
    queued: int = 0


class BudgetCounters:
    """What every budget shares: ``admit``, the tier check, and the counters ``stats()`` snapshots.

    Subclasses set ``limits``, ``_catalog`` and ``_seen_gids`` and implement ``_acquire``/``_release``.
    """

    limits: RateLimits
    _catalog: Catalog | None
    _seen_gids: set[str]

    def admit(self, tokens: int, *, order: tuple[float, int] | None = None) -> Admit:
        """Wait until a call costing ``tokens`` at admission fits every limit, then hold a slot.

        ``order``: where the call waits among calls that give one, lowest first (the in-process budget; a
        shared one keeps arrival order); None: arrival order.

        Raises (on entry):
            ConfigError: ``tokens`` exceeds TPM or TPD, so the call could never be admitted.
            QuotaExhaustedError: today's TPD cannot fit the call (resets at the next UTC midnight).
            StoreError: a shared budget's database failed.
        """
        return Admit(self, max(0, int(tokens)), order)

    async def _acquire(self, tokens: int, order: tuple[float, int] | None = None) -> BudgetSlot:
        raise NotImplementedError  # each budget waits its own way (memory, or the shared database)

    async def _release(self, slot: BudgetSlot, *, ok: bool) -> None:
        raise NotImplementedError

    def observe_tier(self, gid: str | None) -> None:
        """Warn once (logger ``tome.budget``) when the configured limits exceed the tier in ``Msh-Gid``."""
        if not gid or gid in self._seen_gids:
            return
        self._seen_gids.add(gid)
        warning = tier_warning(self.limits, gid, catalog=self._catalog)
        if warning:
            log.warning("%s", warning)

    def _init_counters(self) -> None:
        self._in_flight = 0
        self._admitted = self._waited = self._rate_limited = self._decreases = self._quota = 0
        self._wait_s = self._max_wait_s = 0.0
        self._admitted_tokens = self._used_tokens = 0

    def _count_admission(self, tokens: int, waited: float) -> None:
        self._in_flight += 1
        self._admitted += 1
        self._admitted_tokens += tokens
        if waited > 0:
            self._waited += 1
            self._wait_s += waited
            self._max_wait_s = max(self._max_wait_s, waited)

    def _snapshot(self, configured: RateLimits, effective: RateLimits, *, queued: int = 0) -> BudgetStats:
        return BudgetStats(
            configured=configured,
            effective=effective,
            admitted=self._admitted,
            waited=self._waited,
            wait_s=self._wait_s,
            max_wait_s=self._max_wait_s,
            rate_limited=self._rate_limited,
            decreases=self._decreases,
            quota_exhausted=self._quota,
            admitted_tokens=self._admitted_tokens,
            used_tokens=self._used_tokens,
            in_flight=self._in_flight,
            queued=queued,
        )


class BudgetSlot:
    """A granted admission: hold it while the call runs; ``record`` the real usage before leaving."""

    __slots__ = ("tokens", "admitted_at", "day", "waited_s", "usage", "lease_id", "charged")

    def __init__(self, tokens: int, admitted_at: float, *, day: str | None, waited_s: float) -> None:
        self.tokens = tokens
        self.admitted_at = admitted_at
        self.day = day  # UTC day the TPD ledger booked it on (None without a ledger)
        self.waited_s = waited_s
        self.usage: Usage | None = None
        self.lease_id: str | None = None
        self.charged: int | None = None  # the gateway's admission count, once the answer told us

    def __repr__(self) -> str:
        return f"BudgetSlot(tokens={self.tokens}, waited_s={self.waited_s:.3f})"

    def record(self, usage: Usage, *, charged_tokens: int | None = None) -> None:
        """Store what the call really used, and what the gateway charged at admission (prompt + max_tokens).

        The window then holds the gateway's own count instead of our estimate, as the gateway's window does.
        """
        self.usage = usage
        self.charged = charged_tokens


class _SlotSource(Protocol):
    async def _acquire(self, tokens: int, order: tuple[float, int] | None = None) -> BudgetSlot: ...

    async def _release(self, slot: BudgetSlot, *, ok: bool) -> None: ...


class Admit:
    """``async with budget.admit(tokens) as slot``: waits on entry, releases on exit (also when cancelled)."""

    __slots__ = ("_budget", "_tokens", "_order", "_slot")

    def __init__(self, budget: _SlotSource, tokens: int, order: tuple[float, int] | None = None) -> None:
        self._budget = budget
        self._tokens = tokens
        self._order = order
        self._slot: BudgetSlot | None = None

    async def __aenter__(self) -> BudgetSlot:
        self._slot = await self._budget._acquire(self._tokens, self._order)
        return self._slot

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            await self._budget._release(slot, ok=exc_type is None)
