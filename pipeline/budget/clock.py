"""A virtual clock for asyncio: ``sleep`` returns as soon as every task is idle, with time advanced.

Lets tests and simulations run hours of rate-limited traffic in milliseconds:
``clock = VirtualClock(); budget = InProcessBudget(limits, clock=clock, sleep=clock.sleep)``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class VirtualClock:
    """Monotonic time that only moves when every task is waiting on a virtual ``sleep``.

    Calling the clock returns the current virtual time. Use it only with purely asyncio work: a thread or
    socket the loop waits on looks idle, so virtual time may jump past it.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def __call__(self) -> float:
        return self.now

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now})"

    async def sleep(self, delay: float) -> None:
        """Wait ``delay`` virtual seconds."""
        if delay <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self.now + delay, next(self._seq), future))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive())
        await future

    async def _idle(self) -> None:
        # The loop is idle when, after yielding, nothing but us is ready to run.
        loop = asyncio.get_running_loop()
        for _ in range(10_000):
            await asyncio.sleep(0)
            ready = getattr(loop, "_ready", None)
            if ready is None:
                for _ in range(50):
                    await asyncio.sleep(0)
                return
            if not ready:
                return

    async def _drive(self) -> None:
        while self._sleepers:
            await self._idle()
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)  # cancelled sleeper
            if not self._sleepers:
                return
            deadline = self._sleepers[0][0]
            self.now = max(self.now, deadline)
            while self._sleepers and self._sleepers[0][0] <= self.now:
                future = heapq.heappop(self._sleepers)[2]
                if not future.done():
                    future.set_result(None)
