"""One account's rows of the shared rate budget: its state (pause, AIMD scales), admission window and leases.

Every method runs SQL on the caller's thread; :class:`pipeline.budget.sql.SqlBudget` adds the waiting.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, text

from pipeline.budget import aimd
from pipeline.budget.day_quota import server_quota_error
from pipeline.budget.ledger import TokenLedger
from pipeline.budget.window import _EPS, SlidingWindow
from pipeline.config import RateLimits
from pipeline.utc import utc_day

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One admission attempt: admitted (``lease_id``), or how long until it might be."""

    lease_id: str | None  # set when admitted
    at: float  # the database-clock time of the attempt
    retry_in: float | None  # seconds until the window/pause allows it; None = blocked by concurrency
    day: str | None = None


@dataclass(slots=True)
class AccountState:
    """The account's shared row: pause, AIMD scales and their guards, the day the server said TPD was hit."""

    paused_until: float
    scales: aimd.Scales
    guards: dict[str, float]
    quota_day: str | None


class SqlAccount:
    """The SQL side of one account's budget (the caller holds no lock; ``transaction`` takes the row lock)."""

    def __init__(
        self,
        engine: Engine,
        limits: RateLimits,
        *,
        account: str,
        ledger: TokenLedger,
        clock: Callable[[], float] | None,
        window_s: float,
        lease_s: float,
    ) -> None:
        self.engine = engine
        self.limits = limits
        self.account = account
        self.ledger = ledger
        self.window_s = window_s
        self.lease_s = lease_s
        self.sqlite = engine.dialect.name == "sqlite"
        # Without a given clock, PostgreSQL's own clock is used, so machines with skewed clocks agree.
        self._db_clock = clock is None and not self.sqlite
        self.clock = clock or time.time
        self.scales = aimd.Scales()  # last seen shared scales

    def transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a transaction holding the account's lock row."""
        with self.engine.connect() as conn:
            if self.sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock now; other processes wait here
            self._ensure(conn)
            result = fn(conn)
            conn.commit()
            return result

    def _ensure(self, conn: Connection) -> None:
        conn.execute(
            text("INSERT INTO budget_accounts (account) VALUES (:a) ON CONFLICT (account) DO NOTHING"),
            {"a": self.account},
        )

    def now(self, conn: Connection) -> float:
        if self._db_clock:
            return float(conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())
        return self.clock()

    def state(self, conn: Connection, *, lock: bool) -> AccountState:
        lock_clause = " FOR UPDATE" if lock and not self.sqlite else ""
        row = conn.execute(
            text(
                "SELECT paused_until, scale_concurrency, scale_rpm, scale_tpm, guard_concurrency, guard_rpm, "
                "guard_tpm, quota_day, cap_concurrency, cap_rpm, cap_tpm FROM budget_accounts WHERE account = :a"
                + lock_clause
            ),
            {"a": self.account},
        ).one_or_none()
        if row is None:
            return AccountState(0.0, aimd.Scales(), dict.fromkeys(aimd.AXES, 0.0), None)
        caps = {axis: float(cap) for axis, cap in zip(aimd.AXES, row[8:11], strict=True) if float(cap) < 1.0}
        scales = aimd.Scales(float(row[1]), float(row[2]), float(row[3]), caps=caps)
        self.scales = scales
        guards = dict(zip(aimd.AXES, (float(row[4]), float(row[5]), float(row[6])), strict=True))
        return AccountState(float(row[0]), scales, guards, row[7])

    def prune(self, conn: Connection, now: float) -> int:
        return conn.execute(
            text(
                "DELETE FROM budget_admissions WHERE account = :a AND admitted_at <= :edge "
                "AND (lease_until IS NULL OR lease_until <= :now)"
            ),
            {"a": self.account, "edge": now - self.window_s + _EPS, "now": now},
        ).rowcount

    def window(self, conn: Connection, now: float) -> SlidingWindow:
        rows = conn.execute(
            text(
                "SELECT admitted_at, tokens FROM budget_admissions WHERE account = :a AND admitted_at > :edge "
                "ORDER BY admitted_at"
            ),
            {"a": self.account, "edge": now - self.window_s + _EPS},
        ).all()
        return SlidingWindow(self.window_s, ((float(r[0]), int(r[1])) for r in rows))

    def attempt(self, conn: Connection, tokens: int) -> Attempt:
        state = self.state(conn, lock=True)
        now = self.now(conn)
        wall = datetime.fromtimestamp(now, UTC)
        if state.quota_day == utc_day(wall):
            raise server_quota_error(self.account, wall)
        self.prune(conn, now)
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
            return Attempt(None, now, state.paused_until - now)
        if (eff.rpm and count >= eff.rpm) or (tpm and total + tokens > tpm):
            fit = self.window(conn, now).fit_time(now, tokens, rpm=eff.rpm, tpm=tpm)
            return Attempt(None, now, max(fit - now, 0.0))
        if eff.concurrency and in_flight >= eff.concurrency:
            return Attempt(None, now, None)
        self.ledger.reserve_in(conn, self.account, tokens, tpd=self.limits.tpd, now=wall)
        lease_id = uuid.uuid4().hex
        conn.execute(
            text(
                "INSERT INTO budget_admissions (id, account, admitted_at, tokens, lease_until) "
                "VALUES (:id, :a, :t, :n, :lease)"
            ),
            {"id": lease_id, "a": self.account, "t": now, "n": tokens, "lease": now + self.lease_s},
        )
        return Attempt(lease_id, now, 0.0, utc_day(wall))

    def finish(self, lease_id: str, *, ok: bool, day: str | None, used: int, charged: int | None = None) -> None:
        """Release the concurrency lease (keeping the gateway's own admission count when the answer gave it);
        on success recover lowered limits a step; book used tokens."""
        step = 0.0
        if ok and self.scales.lowered():
            eff = aimd.effective(self.scales, self.limits)
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

    def note_429(self, conn: Connection, kind: str, pause: float, limit_value: int | None) -> bool:
        state = self.state(conn, lock=True)
        now = self.now(conn)
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
        self.scales = scales
        return bool(axes)
