"""A rate budget shared by processes and machines through the SQL database (SQLite file or PostgreSQL).

Admissions are rows of ``budget_admissions``; each admission checks the window, concurrency, pause and TPD and
inserts its row in one transaction that holds the account's ``budget_accounts`` row as a lock
(SQLite: ``BEGIN IMMEDIATE`` serialises writers; PostgreSQL: ``SELECT ... FOR UPDATE``). A waiter polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pipeline.budget import aimd
from pipeline.budget.inprocess import DEFAULT_PAUSE_S, check_admissible
from pipeline.budget.ledger import TokenLedger
from pipeline.budget.sql_account import Attempt, SqlAccount
from pipeline.budget.stats import BudgetCounters, BudgetSlot, BudgetStats
from pipeline.budget.window import WINDOW_S, estimate_admission_time
from pipeline.config import Catalog, RateLimits
from pipeline.errors import QuotaExhaustedError, StoreError

log = logging.getLogger("tome.budget")

LEASE_S = 900.0  # a crashed process's concurrency slots free themselves after this long
POLL_S = 0.05  # first re-check while blocked by concurrency held elsewhere; doubles up to MAX_POLL_S
MAX_POLL_S = 0.5

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Local:
    gate: asyncio.Lock
    released: asyncio.Event


class SqlBudget(BudgetCounters):
    """The RateBudget protocol over SQL rows, so several processes (or machines) share one account's limits.

    Args:
        engine: from ``pipeline.db.make_engine(url)`` (migrated); a PostgreSQL URL shares across machines.
        limits: this process's configured limits (every process should use the same ones).
        account: non-secret account id (``account_id(provider, api_key)``).
        ledger: the TPD ledger (default: one on ``engine``); TPD is booked in the admission's transaction.
        clock: wall-clock epoch seconds; default ``time.time``, or the database server's clock on PostgreSQL
            so machines with skewed clocks agree.
        margin_s: extra seconds an admission stays in the window (see InProcessBudget).
        offload: run database work in a worker thread (default) rather than on the event loop.
    """

    def __init__(
        self,
        engine: Engine,
        limits: RateLimits,
        *,
        account: str,
        ledger: TokenLedger | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        window_s: float = WINDOW_S,
        margin_s: float = 0.0,
        default_pause_s: float = DEFAULT_PAUSE_S,
        lease_s: float = LEASE_S,
        poll_s: float = POLL_S,
        max_poll_s: float = MAX_POLL_S,
        offload: bool = True,
        tier: str | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.engine = engine
        self.limits = limits
        self.account = account
        self.tier = tier
        self.window_s = window_s + margin_s
        self.default_pause_s = default_pause_s
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s
        self._clock = clock or time.time
        self._sleep = sleep
        self._offload = offload
        self._catalog = catalog
        self.ledger = ledger or TokenLedger(engine, utcnow=lambda: datetime.fromtimestamp(self._clock(), UTC))
        # Per event loop: its waiters queue FIFO behind one lock (only the head polls), and a release event.
        self._local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Local] = (
            weakref.WeakKeyDictionary()
        )
        self._rows = SqlAccount(
            engine, limits, account=account, ledger=self.ledger, clock=clock, window_s=self.window_s, lease_s=lease_s
        )
        self._seen_gids: set[str] = set()
        self._init_counters()

    def __repr__(self) -> str:
        return f"SqlBudget({self.limits!r}, account={self.account!r}, dialect={self.engine.dialect.name})"

    # -- public -------------------------------------------------------------------------------------------

    def on_rate_limited(
        self, *, limit_kind: str | None = None, retry_after: float | None = None, limit_value: int | None = None
    ) -> None:
        """A 429: pause every process sharing the account and lower the axis hit (stored in the database)."""
        self._rate_limited += 1
        kind = (limit_kind or "").strip().lower()
        pause = retry_after if retry_after is not None and retry_after >= 0 else self.default_pause_s
        try:
            decreased = self._rows.transaction(lambda conn: self._rows.note_429(conn, kind, pause, limit_value))
        except SQLAlchemyError as exc:
            log.warning("Could not store the 429 in the shared budget: %s", exc.__class__.__name__)
            return
        if decreased:
            self._decreases += 1
        log.info("429 (%s): pausing all processes for %.1f s", limit_kind or "unknown limit", pause)

    def estimated_wait(self, tokens: int, calls: int) -> float:
        """Seconds until ``calls`` calls of ``tokens`` would be admitted, from the shared window (a DB read)."""
        tokens = max(0, int(tokens))
        if calls <= 0:
            return 0.0
        if (self.limits.tpm and tokens > self.limits.tpm) or (self.limits.tpd and tokens > self.limits.tpd):
            return math.inf
        try:
            with self.engine.connect() as conn:
                now = self._rows.now(conn)
                state = self._rows.state(conn, lock=False)
                window = self._rows.window(conn, now)
        except SQLAlchemyError as exc:
            raise StoreError(f"The shared rate budget could not be read: {exc.__class__.__name__}.") from exc
        eff = aimd.effective(state.scales, self.limits)
        at = estimate_admission_time(
            window, max(now, state.paused_until), pending=(), tokens=tokens, calls=calls, rpm=eff.rpm, tpm=eff.tpm
        )
        return at - now

    @property
    def effective_limits(self) -> RateLimits:
        """The limits in force as last read from the database."""
        return aimd.effective(self._rows.scales, self.limits)

    def stats(self) -> BudgetStats:
        """This process's counters (the window itself is shared)."""
        return self._snapshot(self.limits, self.effective_limits)

    def prune(self) -> int:
        """Delete this account's rows that no longer count for any limit; the number deleted."""
        return self._rows.transaction(lambda conn: self._rows.prune(conn, self._rows.now(conn)))

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn) if self._offload else fn()

    def _try_admit(self, tokens: int) -> Attempt:
        """One admission attempt in one locked transaction (prunes are committed even when it must wait)."""
        return self._rows.transaction(lambda conn: self._rows.attempt(conn, tokens))

    # -- asyncio side -------------------------------------------------------------------------------------

    async def _acquire(self, tokens: int, order: tuple[float, int] | None = None) -> BudgetSlot:
        check_admissible(self.limits, tokens)
        local = self._local_state()
        started: float | None = None
        polls = 0
        async with local.gate:  # asyncio.Lock is FIFO: this loop's callers keep their order
            while True:
                try:
                    attempt = await self._attempt_once(tokens)
                except QuotaExhaustedError:
                    self._quota += 1
                    raise
                except SQLAlchemyError as exc:
                    raise StoreError(
                        f"The shared rate budget could not be updated: {exc.__class__.__name__}."
                    ) from exc
                if started is None:
                    started = attempt.at
                if attempt.lease_id is not None:
                    break
                delay = attempt.retry_in
                if delay is None:
                    # Concurrency held elsewhere: back off (a local release wakes us at once).
                    delay = min(self.max_poll_s, self.poll_s * 2**polls) * (0.5 + random.random())  # noqa: S311
                    polls += 1
                    await self._wait_release(local.released, delay)
                else:
                    # A small jitter keeps processes that wait for the same instant from colliding.
                    await self._sleep(delay + self.poll_s * random.random())  # noqa: S311
        waited = max(0.0, attempt.at - started)
        self._count_admission(tokens, waited)
        slot = BudgetSlot(tokens, attempt.at, day=attempt.day, waited_s=waited)
        slot.lease_id = attempt.lease_id
        return slot

    async def _attempt_once(self, tokens: int) -> Attempt:
        if not self._offload:
            return self._try_admit(tokens)
        future = asyncio.ensure_future(asyncio.to_thread(self._try_admit, tokens))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # The worker thread cannot be stopped: if it admitted us after all, hand the slot straight back.
            with contextlib.suppress(Exception):
                attempt = await future
                if attempt.lease_id is not None:
                    await asyncio.to_thread(self._rows.finish, attempt.lease_id, ok=False, day=None, used=0)
            raise

    def _local_state(self) -> _Local:
        loop = asyncio.get_running_loop()
        local = self._local.get(loop)
        if local is None:
            local = self._local[loop] = _Local(asyncio.Lock(), asyncio.Event())
        return local

    async def _wait_release(self, released: asyncio.Event, delay: float) -> None:
        released.clear()
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(released.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def _release(self, slot: BudgetSlot, *, ok: bool) -> None:
        self._in_flight -= 1
        used = slot.usage.total_tokens if slot.usage is not None else 0
        self._used_tokens += used
        lease_id = slot.lease_id
        assert lease_id is not None
        try:
            await self._run(lambda: self._rows.finish(lease_id, ok=ok, day=slot.day, used=used, charged=slot.charged))
        except SQLAlchemyError as exc:
            # The lease then runs out by itself after lease_s; the call's own result matters more.
            log.warning("Could not release a shared budget slot: %s", exc.__class__.__name__)
        finally:
            self._local_state().released.set()
