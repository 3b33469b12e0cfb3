"""Tokens per day (TPD): a ledger per provider account and UTC day in the project's SQL database.

Every process using the same database shares it (atomic conditional increments), and it survives restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import QuotaExhaustedError, StoreError
from pipeline.utc import next_utc_midnight, utc_day, utc_now


@dataclass(frozen=True, slots=True)
class LedgerDay:
    """One account's tokens on one UTC day: admitted (what the gateway counts) and actually used."""

    account: str
    day: str
    admitted_tokens: int = 0
    used_tokens: int = 0


def quota_error(account: str, *, admitted: int, tpd: int, tokens: int, now: datetime) -> QuotaExhaustedError:
    """The QuotaExhaustedError for a call of ``tokens`` that does not fit the rest of today's quota."""
    resets_at = next_utc_midnight(now)
    left = resets_at - now
    hours, rem = divmod(int(left.total_seconds()), 3600)
    message = (
        f"Daily token quota (TPD) reached for account {account}: {admitted:,} of {tpd:,} tokens used today "
        f"(UTC {utc_day(now)}); the next call needs {tokens:,} more. The quota resets at "
        f"{resets_at:%Y-%m-%d %H:%M} UTC (in {hours} h {rem // 60} min). Progress is saved: re-run the same "
        f"command after the reset to resume, or raise the limit with --tpd / TOME_TPD if your tier allows it."
    )
    return QuotaExhaustedError(message, quota="tpd", resets_at=resets_at)


class TokenLedger:
    """Per-account, per-UTC-day token counts in table ``token_ledger``; safe across processes."""

    def __init__(self, engine: Engine, *, utcnow: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self.utcnow = utcnow

    def __repr__(self) -> str:
        return f"TokenLedger({self.engine.dialect.name})"

    def reserve(self, account: str, tokens: int, *, tpd: int) -> str:
        """Count ``tokens`` against today's quota (0 = unlimited) and return the day they were booked on.

        Raises:
            QuotaExhaustedError: the day's admitted tokens + ``tokens`` would exceed ``tpd``.
            StoreError: the database failed.
        """
        now = self.utcnow()
        try:
            with self.engine.begin() as conn:
                self.reserve_in(conn, account, tokens, tpd=tpd, now=now)
        except SQLAlchemyError as exc:
            raise StoreError(f"The token ledger could not be updated: {exc.__class__.__name__}.") from exc
        return utc_day(now)

    def reserve_in(self, conn: Connection, account: str, tokens: int, *, tpd: int, now: datetime) -> None:
        """``reserve`` inside the caller's transaction (the SQL budget books TPD with the admission)."""
        day = utc_day(now)
        conn.execute(
            text(
                "INSERT INTO token_ledger (account, day, admitted_tokens, used_tokens) VALUES (:a, :d, 0, 0) "
                "ON CONFLICT (account, day) DO NOTHING"
            ),
            {"a": account, "d": day},
        )
        # One conditional UPDATE is atomic on SQLite and PostgreSQL: two processes cannot both squeeze in.
        booked = conn.execute(
            text(
                "UPDATE token_ledger SET admitted_tokens = admitted_tokens + :t "
                "WHERE account = :a AND day = :d AND (:tpd = 0 OR admitted_tokens + :t <= :tpd)"
            ),
            {"a": account, "d": day, "t": tokens, "tpd": tpd},
        ).rowcount
        if booked != 1:
            admitted = conn.execute(
                text("SELECT admitted_tokens FROM token_ledger WHERE account = :a AND day = :d"),
                {"a": account, "d": day},
            ).scalar_one()
            raise quota_error(account, admitted=int(admitted), tpd=tpd, tokens=tokens, now=now)

    def add_used(self, account: str, day: str, tokens: int) -> None:
        """Add the tokens a call really used (prompt + completion) to ``day``'s row."""
        self.add(account, day, used=tokens)

    def add(self, account: str, day: str, *, admitted: int = 0, used: int = 0) -> None:
        """Add admitted and/or used tokens to ``day``'s row (admitted without a TPD check: no limit to keep)."""
        if admitted <= 0 and used <= 0:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO token_ledger (account, day, admitted_tokens, used_tokens) "
                        "VALUES (:a, :d, :n, :u) ON CONFLICT (account, day) DO UPDATE SET "
                        "admitted_tokens = token_ledger.admitted_tokens + :n, "
                        "used_tokens = token_ledger.used_tokens + :u"
                    ),
                    {"a": account, "d": day, "n": max(0, admitted), "u": max(0, used)},
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"The token ledger could not be updated: {exc.__class__.__name__}.") from exc

    def mark_exhausted(self, account: str, *, tpd: int) -> None:
        """Book today as full (the server said TPD is reached), so every process stops admitting."""
        day = utc_day(self.utcnow())
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO token_ledger (account, day, admitted_tokens, used_tokens) "
                        "VALUES (:a, :d, :t, 0) ON CONFLICT (account, day) DO UPDATE SET admitted_tokens = "
                        "CASE WHEN token_ledger.admitted_tokens < :t THEN :t ELSE token_ledger.admitted_tokens END"
                    ),
                    {"a": account, "d": day, "t": tpd},
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"The token ledger could not be updated: {exc.__class__.__name__}.") from exc

    def get(self, account: str, day: str | None = None) -> LedgerDay:
        """The counts of ``account`` on ``day`` (default: today, UTC)."""
        day = day or utc_day(self.utcnow())
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT admitted_tokens, used_tokens FROM token_ledger WHERE account = :a AND day = :d"
                    ),
                    {"a": account, "d": day},
                ).one_or_none()
        except SQLAlchemyError as exc:
            raise StoreError(f"The token ledger could not be read: {exc.__class__.__name__}.") from exc
        if row is None:
            return LedgerDay(account, day)
        return LedgerDay(account, day, int(row[0]), int(row[1]))
