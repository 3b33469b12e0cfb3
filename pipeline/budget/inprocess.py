"""One process's rate budget: concurrency, sliding-window RPM/TPM, TPD via the ledger, FIFO, AIMD on 429s."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from pipeline.budget import aimd
from pipeline.budget.day_quota import DayQuota
from pipeline.budget.ledger import TokenLedger
from pipeline.budget.queue import Waiter, WaitLine
from pipeline.budget.stats import BudgetCounters, BudgetSlot, BudgetStats
from pipeline.budget.window import WINDOW_S, SlidingWindow, wait_estimate
from pipeline.config import Catalog, RateLimits
from pipeline.errors import ConfigError, QuotaExhaustedError
from pipeline.utc import utc_now

log = logging.getLogger("tome.budget")

DEFAULT_PAUSE_S = 5.0  # pause after a 429 that carries no "try again after N seconds" hint


def check_admissible(limits: RateLimits, tokens: int) -> None:
    """Raise ConfigError when a call of ``tokens`` can never be admitted under ``limits``."""
    for name, cap, unit in (("tpm", limits.tpm, "tokens per minute"), ("tpd", limits.tpd, "tokens per day")):
        if cap and tokens > cap:
            raise ConfigError(
                f"A call needing {tokens:,} tokens (prompt + max_tokens) can never be admitted: the rate limit "
                f"is {cap:,} {unit} ({name.upper()}). Use a model with a smaller context or smaller chunks, "
                f"lower the output length, or raise the limit (--tier, --{name} / TOME_{name.upper()}) if your "
                f"account allows it."
            )


class InProcessBudget(BudgetCounters):
    """The rate budget of one process (all its asyncio tasks share it).

    Each call reserves its admission cost (prompt + max_tokens) in a sliding window that matches the gateway:
    an admission at ``t`` counts one request and its tokens until ``t + window_s``. Waiters are served FIFO;
    the head computes when it fits instead of polling. It serves one event loop at a time (not threads).
    With a ``ledger`` the day's tokens are booked in the SQL
    database (shared by processes, surviving restarts); without one TPD is counted in memory.
    ``margin_s`` keeps each admission in the window a little longer than the gateway does, to cover the
    request's way to the gateway (0 models the gateway exactly; ``make_budget`` uses DEFAULT_MARGIN_S).
    """

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        ledger: TokenLedger | None = None,
        account: str = "default",
        tier: str | None = None,
        window_s: float = WINDOW_S,
        margin_s: float = 0.0,
        default_pause_s: float = DEFAULT_PAUSE_S,
        utcnow: Callable[[], datetime] | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.limits = limits
        self.account = account
        self.tier = tier
        self.ledger = ledger
        self.default_pause_s = default_pause_s
        self._clock = clock
        self._sleep = sleep
        self._utcnow = utcnow or (ledger.utcnow if ledger is not None else utc_now)
        self._catalog = catalog
        self._window = SlidingWindow(window_s + margin_s)
        self._scales = aimd.Scales()
        self._eff = aimd.effective(self._scales, limits)
        self._line = WaitLine()
        self._paused_until = -math.inf
        self._decrease_guard = dict.fromkeys(aimd.AXES, -math.inf)
        self._day = DayQuota(limits, account=account, ledger=ledger, utcnow=self._utcnow)
        self._seen_gids: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._init_counters()

    def __repr__(self) -> str:
        return f"InProcessBudget({self.limits!r}, account={self.account!r})"

    # -- public -------------------------------------------------------------------------------------------

    def on_rate_limited(
        self,
        *,
        limit_kind: str | None = None,
        retry_after: float | None = None,
        limit_value: int | None = None,
    ) -> None:
        """The server answered 429: pause every sender, and lower the limit of the axis that was hit."""
        now = self._clock()
        self._rate_limited += 1
        if (limit_kind or "").strip().lower() == "tpd":
            self._day.server_exhausted()
            return
        pause = retry_after if retry_after is not None and retry_after >= 0 else self.default_pause_s
        self._paused_until = max(self._paused_until, now + pause)
        before = self._eff
        # 429s of one burst (calls admitted before the first one came back) lower each axis only once.
        axes = tuple(a for a in aimd.normalise_kind(limit_kind) if now >= self._decrease_guard[a])
        if axes:
            aimd.decrease(self._scales, self.limits, axes, stated=limit_value)
            self._eff = aimd.effective(self._scales, self.limits)
            self._decreases += 1
            for axis in axes:
                self._decrease_guard[axis] = self._paused_until
        kind = limit_kind or "unknown limit"
        log.info("429 (%s): pausing all calls for %.1f s; effective limits %s", kind, pause, aimd.change(before, self._eff))

    def estimated_wait(self, tokens: int, calls: int) -> float:
        """Seconds until ``calls`` more calls of ``tokens`` each would all be admitted (after those queued).

        Counts the window, the pause and TPD; ignores concurrency (call durations are unknown). ``inf`` when
        they can never all be admitted today.
        """
        if calls <= 0:
            return 0.0
        left = self._day.left_in_memory()
        now = self._clock()
        start = max(now, self._paused_until)
        pending = self._line.tokens()
        at = wait_estimate(self._window, start, pending, tokens, calls, self.limits, self._eff, left)
        return at - now

    @property
    def effective_limits(self) -> RateLimits:
        """The limits in force now (configured, lowered by recent 429s)."""
        return self._eff

    def stats(self) -> BudgetStats:
        """A snapshot of the counters."""
        return self._snapshot(self.limits, self._eff, queued=len(self._line))

    # -- admission ----------------------------------------------------------------------------------------

    def _tpm_for(self, tokens: int) -> int:
        # A call above the lowered TPM but within the configured one is admitted alone in an empty window.
        eff = self._eff.tpm
        return max(eff, tokens) if eff else 0

    def _ready_at(self, tokens: int, now: float) -> float:
        fit = self._window.fit_time(now, tokens, rpm=self._eff.rpm, tpm=self._tpm_for(tokens))
        return max(fit, self._paused_until)

    def _has_capacity(self) -> bool:
        cap = self._eff.concurrency
        return not cap or self._in_flight < cap

    def _check_day(self, tokens: int) -> None:
        try:
            self._day.check(tokens)
        except QuotaExhaustedError:
            self._quota += 1
            raise

    async def _book_day(self, tokens: int) -> str | None:
        try:
            return await self._day.book(tokens)
        except QuotaExhaustedError:
            self._quota += 1
            raise

    def _grant(self, tokens: int, now: float, started: float, day: str | None) -> BudgetSlot:
        self._window.add(now, tokens)
        waited = now - started
        self._count_admission(tokens, waited)
        return BudgetSlot(tokens, now, day=day, waited_s=waited)

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        if self._loop is not None and not self._loop.is_closed() and (self._line or self._in_flight):
            raise RuntimeError(
                "An InProcessBudget was used from two event loops at once; it serves one loop. Share one "
                "loop, or use SqlBudget to share limits across threads and processes."
            )
        self._loop = loop

    async def _acquire(self, tokens: int, order: tuple[float, int] | None = None) -> BudgetSlot:
        self._bind_loop()
        check_admissible(self.limits, tokens)
        self._check_day(tokens)
        started = self._clock()
        # Fast path: nobody queued, no TPD to reserve in the database, and the call fits now.
        if (
            not self._line
            and not self._day.reserves_in_database
            and self._has_capacity()
            and self._ready_at(tokens, started) <= started
        ):
            return self._grant(tokens, started, started, self._day.book_locally(tokens))
        waiter = Waiter(tokens, started, order)
        self._line.join(waiter)
        if not self._line.is_head(waiter):
            self._backfill(self._line.head, started)  # it may fit now without delaying the waiting head
        booked = False
        day: str | None = None
        try:
            while True:
                waiter.event.clear()
                if waiter.slot is not None:
                    return waiter.slot  # admitted behind the head (backfilled)
                if not self._line.is_head(waiter):
                    await waiter.event.wait()
                    continue
                now = self._clock()
                ready = self._ready_at(tokens, now)
                if ready > now:
                    waiter.deadline = min(waiter.deadline, ready)
                    self._backfill(waiter, now)
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug("Waiting %.2f s to admit a %d-token call (%s)", ready - now, tokens, self._why(now))
                    await self._line.wait_head(waiter, ready - now, self._sleep)
                    continue
                if not self._has_capacity():
                    await waiter.event.wait()
                    continue
                if not booked:
                    # The head keeps its place while the ledger books TPD; then the limits are checked again.
                    self._check_day(tokens)
                    day = await self._book_day(tokens)
                    booked = True
                    continue
                self._line.pop_head()
                return self._grant(tokens, now, started, day)
        except BaseException:
            self._line.leave(waiter)
            if waiter.slot is not None:  # granted, then cancelled before it was used: give it back
                self._window.correct(waiter.slot.admitted_at, waiter.slot.tokens, 0)
                self._in_flight -= 1
            raise

    def _why(self, now: float) -> str:
        return "pause after a 429" if self._paused_until > now else f"RPM {self._eff.rpm} / TPM {self._eff.tpm}"

    def _backfill(self, head: Waiter, now: float) -> None:
        """Admit calls behind the waiting head that fit now without delaying it (pipeline.budget.queue)."""
        if self._day.reserves_in_database:
            return  # a backfilled call would first have to reserve TPD in the database: plain FIFO then

        def fits_now(tokens: int) -> bool:
            if not self._has_capacity() or self._ready_at(tokens, now) > now:
                return False
            try:
                self._day.check(tokens)
            except QuotaExhaustedError:
                return False
            return True

        def head_ready(extra: int) -> float:
            window = self._window.copy()
            window.add(now, extra)
            return window.fit_time(now, head.tokens, rpm=self._eff.rpm, tpm=self._tpm_for(head.tokens))

        def grant(waiter: Waiter) -> BudgetSlot:
            return self._grant(waiter.tokens, now, waiter.started, self._day.book_locally(waiter.tokens))

        self._line.backfill(head, fits_now, head_ready, grant)

    async def _release(self, slot: BudgetSlot, *, ok: bool) -> None:
        self._in_flight -= 1
        if slot.charged is not None and slot.charged != slot.tokens:
            # Our prompt estimate errs high on purpose; once the server has counted, keep its count.
            self._window.correct(slot.admitted_at, slot.tokens, slot.charged)
        if ok:
            aimd.increase(self._scales, self.limits)
            self._eff = aimd.effective(self._scales, self.limits)
        self._line.wake_head()
        used = slot.usage.total_tokens if slot.usage is not None else 0
        self._used_tokens += used
        # With a TPD limit the admission was reserved up front; without one it is booked now, in the same write.
        await self._day.record(slot.day, tokens=slot.tokens, used=used)
