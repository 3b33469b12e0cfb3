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
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.budget import aimd
from pipeline.budget.inprocess import DEFAULT_PAUSE_S, check_admissible, server_quota_error
from pipeline.budget.ledger import TokenLedger, utc_day
from pipeline.budget.presets import tier_warning
from pipeline.budget.stats import Admit, BudgetCounters, BudgetSlot, BudgetStats
from pipeline.budget.window import _EPS, WINDOW_S, SlidingWindow
from pipeline.config import Catalog, RateLimits
from pipeline.errors import QuotaExhaustedError, StoreError

log = logging.getLogger("tome.budget")

LEASE_S = 900.0  # a crashed process's concurrency slots free themselves after this long
POLL_S = 0.05  # first re-check while blocked by concurrency held elsewhere; doubles up to MAX_POLL_S
MAX_POLL_S = 0.5

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Attempt:
    lease_id: str | None  # set when admitted
    at: float  # the database-clock time of the attempt
    retry_in: float | None  # seconds until the window/pause allows it; None = blocked by concurrency
    day: str | None = None


@dataclass(slots=True)
class _State:
    paused_until: float
    scales: aimd.Scales
    guards: dict[str, float]
    quota_day: str | None


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
        self._sqlite = engine.dialect.name == "sqlite"
        self._db_clock = clock is None and not self._sqlite
        self._clock = clock or time.time
        self._sleep = sleep
        self._offload = offload
        self._catalog = catalog
        self.ledger = ledger or TokenLedger(engine, utcnow=lambda: datetime.fromtimestamp(self._clock(), UTC))
        # Per event loop: its waiters queue FIFO behind one lock (only the head polls), and a release event.
        self._local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Local] = (
            weakref.WeakKeyDictionary()
        )
        self._scales = aimd.Scales()  # last seen shared scales
        self._seen_gids: set[str] = set()
        self._init_counters()

    def __repr__(self) -> str:
        return f"SqlBudget({self.limits!r}, account={self.account!r}, dialect={self.engine.dialect.name})"

    # -- public -------------------------------------------------------------------------------------------

    def admit(self, tokens: int) -> Admit:
        """Wait until a call costing ``tokens`` fits every limit shared through the database, then hold a slot.

        Raises (on entry):
            ConfigError: the call exceeds TPM or TPD and can never be admitted.
            QuotaExhaustedError: today's TPD cannot fit it.
            StoreError: the database failed.
        """
        return Admit(self, max(0, int(tokens)))

    def on_rate_limited(
        self, *, limit_kind: str | None = None, retry_after: float | None = None, limit_value: int | None = None
    ) -> None:
        """A 429: pause every process sharing the account and lower the axis hit (stored in the database)."""
        self._rate_limited += 1
        kind = (limit_kind or "").strip().lower()
        pause = retry_after if retry_after is not None and retry_after >= 0 else self.default_pause_s
        try:
            decreased = self._transaction(lambda conn: self._note_429(conn, kind, pause, limit_value))
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
                now = self._now(conn)
                state = self._account_state(conn, lock=False)
                window = self._load_window(conn, now)
        except SQLAlchemyError as exc:
            raise StoreError(f"The shared rate budget could not be read: {exc.__class__.__name__}.") from exc
        eff = aimd.effective(state.scales, self.limits)
        at = max(now, state.paused_until)
        for _ in range(min(calls, 2000)):
            at = window.fit_time(at, tokens, rpm=eff.rpm, tpm=max(eff.tpm, tokens) if eff.tpm else 0)
            window.add(at, tokens)
        rest = calls - min(calls, 2000)
        rates = [eff.rpm / self.window_s] if eff.rpm else []
        if eff.tpm and tokens:
            rates.append(eff.tpm / tokens / self.window_s)
        if rest > 0 and rates:
            at += rest / min(rates)
        return at - now

    @property
    def effective_limits(self) -> RateLimits:
        """The limits in force as last read from the database."""
        return aimd.effective(self._scales, self.limits)

    def stats(self) -> BudgetStats:
        """This process's counters (the window itself is shared)."""
        return self._snapshot(self.limits, self.effective_limits)

    def observe_tier(self, gid: str | None) -> None:
        """Warn once (logger ``tome.budget``) when the configured limits exceed the tier in ``Msh-Gid``."""
        if not gid or gid in self._seen_gids:
            return
        self._seen_gids.add(gid)
        warning = tier_warning(self.limits, gid, catalog=self._catalog)
        if warning:
            log.warning("%s", warning)

    def prune(self) -> int:
        """Delete this account's rows that no longer count for any limit; the number deleted."""
        return self._transaction(lambda conn: self._prune(conn, self._now(conn)))

    # -- database -----------------------------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn) if self._offload else fn()

    def _transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a transaction holding the account's lock row."""
        with self.engine.connect() as conn:
            if self._sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock now; other processes wait here
            self._ensure_account(conn)
            result = fn(conn)
            conn.commit()
            return result

    def _ensure_account(self, conn: Connection) -> None:
        conn.execute(
            text("INSERT INTO budget_accounts (account) VALUES (:a) ON CONFLICT (account) DO NOTHING"),
            {"a": self.account},
        )

    def _now(self, conn: Connection) -> float:
        if self._db_clock:
            return float(conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())
        return self._clock()

    def _account_state(self, conn: Connection, *, lock: bool) -> _State:
        lock_clause = " FOR UPDATE" if lock and not self._sqlite else ""
        row = conn.execute(
            text(
                "SELECT paused_until, scale_concurrency, scale_rpm, scale_tpm, guard_concurrency, guard_rpm, "
                "guard_tpm, quota_day, cap_concurrency, cap_rpm, cap_tpm FROM budget_accounts WHERE account = :a"
                + lock_clause
            ),
            {"a": self.account},
        ).one_or_none()
        if row is None:
            return _State(0.0, aimd.Scales(), dict.fromkeys(aimd.AXES, 0.0), None)
        caps = {axis: float(cap) for axis, cap in zip(aimd.AXES, row[8:11], strict=True) if float(cap) < 1.0}
        scales = aimd.Scales(float(row[1]), float(row[2]), float(row[3]), caps=caps)
        self._scales = scales
        guards = dict(zip(aimd.AXES, (float(row[4]), float(row[5]), float(row[6])), strict=True))
        return _State(float(row[0]), scales, guards, row[7])

    def _prune(self, conn: Connection, now: float) -> int:
        return conn.execute(
            text(
                "DELETE FROM budget_admissions WHERE account = :a AND admitted_at <= :edge "
                "AND (lease_until IS NULL OR lease_until <= :now)"
            ),
            {"a": self.account, "edge": now - self.window_s + _EPS, "now": now},
        ).rowcount

    def _load_window(self, conn: Connection, now: float) -> SlidingWindow:
        rows = conn.execute(
            text(
                "SELECT admitted_at, tokens FROM budget_admissions WHERE account = :a AND admitted_at > :edge "
                "ORDER BY admitted_at"
            ),
            {"a": self.account, "edge": now - self.window_s + _EPS},
        ).all()
        return SlidingWindow(self.window_s, ((float(r[0]), int(r[1])) for r in rows))

    def _try_admit(self, tokens: int) -> _Attempt:
        """One admission attempt in one locked transaction (prunes are committed even when it must wait)."""
        return self._transaction(lambda conn: self._attempt(conn, tokens))

    def _attempt(self, conn: Connection, tokens: int) -> _Attempt:
        state = self._account_state(conn, lock=True)
        now = self._now(conn)
        wall = datetime.fromtimestamp(now, UTC)
        if state.quota_day == utc_day(wall):
            raise server_quota_error(self.account, wall)
        self._prune(conn, now)
        count, total, in_flight = conn.execute(
            text(
                "SELECT COALESCE(SUM(CASE WHEN admitted_at > :edge THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN admitted_at > :edge THEN tokens ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN lease_until > :now THEN 1 ELSE 0 END), 0) "
                "FROM budget_admissions WHERE account = :a"
            ),
            {"a": self.account, "edge": now - self.window_s + _EPS, "now": now},
        ).one()
        eff = aimd.effective(state.scales, self.limits)
        tpm = max(eff.tpm, tokens) if eff.tpm else 0
        if now < state.paused_until:
            return _Attempt(None, now, state.paused_until - now)
        if (eff.rpm and count >= eff.rpm) or (tpm and total + tokens > tpm):
            fit = self._load_window(conn, now).fit_time(now, tokens, rpm=eff.rpm, tpm=tpm)
            return _Attempt(None, now, max(fit - now, 0.0))
        if eff.concurrency and in_flight >= eff.concurrency:
            return _Attempt(None, now, None)
        self.ledger.reserve_in(conn, self.account, tokens, tpd=self.limits.tpd, now=wall)
        lease_id = uuid.uuid4().hex
        conn.execute(
            text(
                "INSERT INTO budget_admissions (id, account, admitted_at, tokens, lease_until) "
                "VALUES (:id, :a, :t, :n, :lease)"
            ),
            {"id": lease_id, "a": self.account, "t": now, "n": tokens, "lease": now + self.lease_s},
        )
        return _Attempt(lease_id, now, 0.0, utc_day(wall))

    def _finish(self, lease_id: str, *, ok: bool, day: str | None, used: int, charged: int | None = None) -> None:
        """Release the concurrency lease (keeping the gateway's own admission count when the answer gave it);
        on success recover lowered limits a step; book used tokens."""
        step = 0.0
        if ok and self._scales.lowered():
            eff = self.effective_limits
            step = aimd.INCREASE_PER_WINDOW / (eff.rpm or eff.concurrency or 1)
        with self.engine.begin() as conn:
            conn.execute(
                text("UPDATE budget_admissions SET lease_until = NULL, tokens = COALESCE(:c, tokens) WHERE id = :id"),
                {"id": lease_id, "c": charged},
            )
            if step:
                conn.execute(
                    text(
                        "UPDATE budget_accounts SET "
                        + ", ".join(
                            f"scale_{axis} = CASE WHEN scale_{axis} >= cap_{axis} THEN scale_{axis} "
                            f"WHEN scale_{axis} + :s >= cap_{axis} THEN cap_{axis} ELSE scale_{axis} + :s END"
                            for axis in aimd.AXES
                        )
                        + " WHERE account = :a"
                    ),
                    {"s": step, "a": self.account},
                )
            if used > 0 and day is not None:
                conn.execute(
                    text(
                        "INSERT INTO token_ledger (account, day, admitted_tokens, used_tokens) "
                        "VALUES (:a, :d, 0, :t) "
                        "ON CONFLICT (account, day) DO UPDATE SET used_tokens = token_ledger.used_tokens + :t"
                    ),
                    {"a": self.account, "d": day, "t": used},
                )

    def _note_429(self, conn: Connection, kind: str, pause: float, limit_value: int | None) -> bool:
        state = self._account_state(conn, lock=True)
        now = self._now(conn)
        if kind == "tpd":
            day = utc_day(datetime.fromtimestamp(now, UTC))
            conn.execute(
                text("UPDATE budget_accounts SET quota_day = :d WHERE account = :a"),
                {"d": day, "a": self.account},
            )
            return False
        paused_until = max(state.paused_until, now + pause)
        axes = tuple(a for a in aimd.normalise_kind(kind) if now >= state.guards[a])
        scales = state.scales
        aimd.decrease(scales, self.limits, axes, stated=limit_value)
        values: dict[str, Any] = {"a": self.account, "p": paused_until}
        sets = ["paused_until = :p"]
        for axis in axes:
            sets += [f"scale_{axis} = :s_{axis}", f"guard_{axis} = :p", f"cap_{axis} = :c_{axis}"]
            values[f"s_{axis}"] = scales.get(axis)
            values[f"c_{axis}"] = scales.caps.get(axis, 1.0)
        conn.execute(text(f"UPDATE budget_accounts SET {', '.join(sets)} WHERE account = :a"), values)
        self._scales = scales
        return bool(axes)

    # -- asyncio side -------------------------------------------------------------------------------------

    async def _acquire(self, tokens: int) -> BudgetSlot:
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

    async def _attempt_once(self, tokens: int) -> _Attempt:
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
                    await asyncio.to_thread(self._finish, attempt.lease_id, ok=False, day=None, used=0)
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
            await self._run(lambda: self._finish(lease_id, ok=ok, day=slot.day, used=used, charged=slot.charged))
        except SQLAlchemyError as exc:
            # The lease then runs out by itself after lease_s; the call's own result matters more.
            log.warning("Could not release a shared budget slot: %s", exc.__class__.__name__)
        finally:
            self._local_state().released.set()
