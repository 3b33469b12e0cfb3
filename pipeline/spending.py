"""A spending cap (``--max-cost``) shared through the database by every process and worker of one run or batch.

Before each paid call, its worst-case price (estimated prompt + max_tokens) is reserved with one conditional
UPDATE; the call's real price replaces the reservation when it returns. A call whose reservation would take
spent + reserved over the cap is never sent: the run stops like on an exhausted quota (exit 3, resumable).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.config import ModelSpec
from pipeline.errors import QuotaExhaustedError, StoreError
from pipeline.llm.types import ChatBackend, ChatRequest, Completion, Message
from pipeline.utc import utc_stamp


class SpendingCapError(QuotaExhaustedError):
    """The next call could take spending over ``--max-cost``; nothing more is sent (exit 3, resumable)."""

    def __init__(self, message: str, *, spent: float, cap: float, currency: str) -> None:
        super().__init__(message, quota="spend")
        self.spent = spent
        self.cap = cap
        self.currency = currency


def format_amount(amount: float, currency: str) -> str:
    """An amount as people read it: 4 decimals below 1, else 2."""
    return f"{amount:.4f} {currency}" if amount < 1 else f"{amount:,.2f} {currency}"


class SpendingCap:
    """``cap`` (in ``currency``) for the scope ``scope`` (a run id, or a batch's id shared by its workers)."""

    def __init__(self, engine: Engine, *, scope: str, cap: float, currency: str) -> None:
        if cap <= 0:
            raise ValueError("a spending cap must be positive")
        self.engine = engine
        self.scope = scope
        self.cap = float(cap)
        self.currency = currency
        try:
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO spending (scope, cap, spent, reserved, currency, updated_at) "
                        "VALUES (:s, :c, 0, 0, :cur, :t) ON CONFLICT (scope) DO UPDATE SET cap = :c"
                    ),
                    {"s": scope, "c": self.cap, "cur": currency, "t": utc_stamp()},
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"The spending cap could not be recorded: {exc.__class__.__name__}.") from exc

    def __repr__(self) -> str:
        return f"SpendingCap({self.scope!r}, cap={self.cap}, currency={self.currency!r})"

    def reserve(self, amount: float) -> None:
        """Set ``amount`` aside for a call, or raise SpendingCapError when it does not fit under the cap."""
        try:
            with self.engine.begin() as conn:
                booked = conn.execute(
                    text(
                        "UPDATE spending SET reserved = reserved + :a, updated_at = :t "
                        "WHERE scope = :s AND spent + reserved + :a <= cap"
                    ),
                    {"a": amount, "s": self.scope, "t": utc_stamp()},
                ).rowcount
                spent = conn.execute(text("SELECT spent FROM spending WHERE scope = :s"), {"s": self.scope}).scalar_one()
        except SQLAlchemyError as exc:
            raise StoreError(f"The spending cap could not be checked: {exc.__class__.__name__}.") from exc
        if booked != 1:
            raise self.stopped(float(spent), next_call=amount)

    def stopped(self, spent: float | None = None, *, next_call: float | None = None) -> SpendingCapError:
        """The error saying the cap stopped the run: how much was spent (default: now) and how to resume."""
        spent = self.spent() if spent is None else spent
        why = (
            f"the next call could cost up to {format_amount(next_call, self.currency)}, so it was not sent"
            if next_call is not None
            else "no further call was sent"
        )
        return SpendingCapError(
            f"Spending cap reached: {format_amount(spent, self.currency)} spent of --max-cost "
            f"{format_amount(self.cap, self.currency)}; {why}. Progress is saved: re-run the same command with "
            "a higher --max-cost (or without it) to resume; answers already paid for come from the cache.",
            spent=spent,
            cap=self.cap,
            currency=self.currency,
        )

    def settle(self, reserved: float, actual: float) -> None:
        """Replace a reservation by what the call really cost (0 when it failed)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE spending SET reserved = CASE WHEN reserved > :r THEN reserved - :r ELSE 0 END, "
                        "spent = spent + :a, updated_at = :t WHERE scope = :s"
                    ),
                    {"r": reserved, "a": actual, "s": self.scope, "t": utc_stamp()},
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"The spending cap could not be updated: {exc.__class__.__name__}.") from exc

    def spent(self) -> float:
        """What the scope's calls have cost so far."""
        with self.engine.connect() as conn:
            value = conn.execute(text("SELECT spent FROM spending WHERE scope = :s"), {"s": self.scope}).scalar()
        return float(value or 0.0)


class CappedBackend:
    """A billable backend whose every call is reserved against a :class:`SpendingCap` first."""

    def __init__(self, inner: ChatBackend, cap: SpendingCap, model: ModelSpec) -> None:
        self.inner = inner
        self.cap = cap
        self.model = model
        self.name = inner.name
        self.cache_namespace = inner.cache_namespace
        self.billable = inner.billable
        self.calibration = inner.calibration
        self.headroom = inner.headroom
        self.reads_prompts = inner.reads_prompts
        self.cutoff_recovery = inner.cutoff_recovery
        self.base_url = inner.base_url
        self.extracts_files = inner.extracts_files
        self.planning_window = inner.planning_window

    @property
    def on_retry(self) -> Callable[[float, str], None] | None:
        return self.inner.on_retry

    @on_retry.setter
    def on_retry(self, hook: Callable[[float, str], None] | None) -> None:
        self.inner.on_retry = hook

    async def extract_file(self, path: str | Path) -> str:
        return await self.inner.extract_file(path)

    async def count_prompt_tokens(self, messages: Sequence[Message]) -> int | None:
        count = getattr(self.inner, "count_prompt_tokens", None)  # an optional capability (CountsPrompts)
        if count is None or self.cap.cap < self.model.cost(1, 1):
            return None  # a cap no call fits under: only cached answers are used, and nothing is asked
        return cast(int | None, await count(messages))

    def __repr__(self) -> str:
        return f"CappedBackend({self.inner!r}, {self.cap!r})"

    async def complete(self, request: ChatRequest) -> Completion:
        worst = self.model.cost(request.estimated_prompt_tokens, request.max_tokens)
        await asyncio.to_thread(self.cap.reserve, worst)
        try:
            completion = await self.inner.complete(request)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self.cap.settle, worst, 0.0))
            raise
        actual = self.model.cost(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        await asyncio.to_thread(self.cap.settle, worst, actual)
        return completion

    async def aclose(self) -> None:
        await self.inner.aclose()
