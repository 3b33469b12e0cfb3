"""The in-process budget's waiting line: first come, first served, with backfilling that delays no one.

A call that gives an ``order`` (the engine: when its level started, its place in the level) waits ahead of
ordered calls behind it with a higher one, so a level's calls are admitted in their order however they arrive.

The head of the line computes when it fits and sleeps until then (or until a release wakes it). While it
waits, a call behind it that fits now is admitted at once if that does not delay the head by more than
``BACKFILL_SLACK_S`` from the time it was first told (so repeated backfills cannot starve it): a 20,000-TPM
window holding 14,000 tokens admits a 6,000-token call while an 8,000-token head waits for the next window.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable

from pipeline.budget.stats import BudgetSlot

BACKFILL_SLACK_S = 1.0  # at most this much later than the head's fit time when it started waiting


class Waiter:
    """A call waiting for admission."""

    __slots__ = ("tokens", "event", "started", "deadline", "slot", "order")

    def __init__(self, tokens: int, started: float, order: tuple[float, int] | None = None) -> None:
        self.tokens = tokens
        self.order = order  # its place among waiters that give one (lowest first); None: arrival order
        self.event = asyncio.Event()
        self.started = started
        self.deadline = math.inf  # as the head: the fit time it was first told
        self.slot: BudgetSlot | None = None  # granted while behind the head (backfilled)


class WaitLine:
    """Waiters in arrival order; only the head decides (for itself, and for backfills behind it)."""

    def __init__(self) -> None:
        self._line: deque[Waiter] = deque()

    def __len__(self) -> int:
        return len(self._line)

    def __bool__(self) -> bool:
        return bool(self._line)

    def tokens(self) -> list[int]:
        return [w.tokens for w in self._line]

    @property
    def head(self) -> Waiter:
        return self._line[0]

    def join(self, waiter: Waiter) -> None:
        """At the end of the line, or ahead of the waiters at its end whose order is higher than its own (a
        level's calls may reach the line out of their order); a new head is woken to decide for itself."""
        place = len(self._line)
        if waiter.order is not None:
            while place > 0 and (ahead := self._line[place - 1].order) is not None and ahead > waiter.order:
                place -= 1
        self._line.insert(place, waiter)
        if place == 0:
            waiter.event.set()

    def is_head(self, waiter: Waiter) -> bool:
        return self._line[0] is waiter

    def pop_head(self) -> None:
        self._line.popleft()
        self.wake_head()

    def leave(self, waiter: Waiter) -> None:
        """Remove a cancelled or failed waiter (the next head takes over)."""
        if waiter in self._line:
            was_head = self._line[0] is waiter
            self._line.remove(waiter)
            if was_head:
                self.wake_head()

    def wake_head(self) -> None:
        if self._line:
            self._line[0].event.set()

    def backfill(
        self,
        head: Waiter,
        fits_now: Callable[[int], bool],
        head_ready: Callable[[int], float],
        grant: Callable[[Waiter], BudgetSlot],
    ) -> None:
        """Admit waiters behind ``head`` that fit now and leave it within the slack of its deadline.

        ``head_ready(extra)``: when the head would fit with ``extra`` more tokens admitted now; ``grant`` admits.
        """
        if math.isinf(head.deadline):
            return  # the head is not waiting for a time (concurrency, or booking TPD): nothing to measure against
        for waiter in list(self._line)[1:]:
            if not fits_now(waiter.tokens) or head_ready(waiter.tokens) > head.deadline + BACKFILL_SLACK_S:
                continue
            waiter.slot = grant(waiter)  # the window now holds it: the next one is checked against both
            self._line.remove(waiter)
            waiter.event.set()

    async def wait_head(
        self, waiter: Waiter, delay: float, sleep: Callable[[float], Awaitable[object]]
    ) -> None:
        """Sleep ``delay`` seconds, or less if a release, a newcomer or a limit increase wakes the head."""
        sleeper = asyncio.ensure_future(sleep(delay))
        waker = asyncio.ensure_future(waiter.event.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
