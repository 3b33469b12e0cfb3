"""The in-process rate budget, on a virtual clock: gateway window, FIFO, concurrency, AIMD, cancellation."""

from __future__ import annotations

import asyncio
import logging
import math
import threading

import pytest

from pipeline.budget import InProcessBudget, VirtualClock, max_call_tokens
from pipeline.budget.window import SlidingWindow
from pipeline.config import RateLimits, load_catalog
from pipeline.errors import ConfigError
from pipeline.llm.types import Usage


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def budget_for(clock: VirtualClock, limits: RateLimits, **kw) -> InProcessBudget:
    return InProcessBudget(limits, clock=clock, sleep=clock.sleep, **kw)


async def run_calls(
    budget: InProcessBudget,
    clock: VirtualClock,
    costs: list[int],
    *,
    hold_s: float = 0.0,
    stagger_s: float = 0.0,
) -> list[tuple[int, float]]:
    """Start one task per cost (in order, ``stagger_s`` apart); return (index, admission time) in admission order."""
    admitted: list[tuple[int, float]] = []

    async def call(i: int, cost: int) -> None:
        if stagger_s:
            await clock.sleep(i * stagger_s)
        async with budget.admit(cost) as slot:
            admitted.append((i, clock.now))
            if hold_s:
                await clock.sleep(hold_s)
            slot.record(Usage(prompt_tokens=cost // 2, completion_tokens=1))

    await asyncio.gather(*(call(i, c) for i, c in enumerate(costs)))
    return admitted


def test_window_expires_exactly_one_window_after_admission() -> None:
    window = SlidingWindow(60.0)
    window.add(0.0, 400)
    window.add(10.0, 500)
    assert window.fit_time(0.0, 100, rpm=2, tpm=0) == 60.0  # rpm full until the t=0 admission expires
    assert window.fit_time(59.999, 100, rpm=0, tpm=1000) == 59.999  # 900 + 100 fits
    assert window.fit_time(5.0, 200, rpm=0, tpm=1000) == 60.0  # needs the 400 gone
    assert window.fit_time(5.0, 600, rpm=0, tpm=1000) == 70.0  # needs both gone
    assert window.fit_time(5.0, 1001, rpm=0, tpm=1000) == math.inf
    window.expire(60.0)
    assert (len(window), window.total_tokens) == (1, 500)


async def test_tier0_rpm_spacing_matches_gateway(clock: VirtualClock) -> None:
    budget = budget_for(clock, load_catalog().tier("tier0"))
    admitted = await run_calls(budget, clock, [1000] * 7)
    assert [t for _, t in admitted] == [0.0, 0.0, 0.0, 60.0, 60.0, 60.0, 120.0]
    stats = budget.stats()
    assert (stats.admitted, stats.waited, stats.in_flight, stats.queued) == (7, 4, 0, 0)
    assert stats.wait_s == pytest.approx(60 * 3 + 120)


async def test_window_keeps_admission_cost_not_usage(clock: VirtualClock) -> None:
    # The gateway counts prompt + max_tokens at admission, however little is generated.
    budget = budget_for(clock, RateLimits(concurrency=10, tpm=1000))
    admitted = await run_calls(budget, clock, [600, 500])
    assert [t for _, t in admitted] == [0.0, 60.0]
    assert budget.stats().used_tokens == 300 + 1 + 250 + 1


async def test_head_computes_the_fit_time_instead_of_polling(clock: VirtualClock) -> None:
    sleeps: list[float] = []

    async def counting_sleep(delay: float) -> None:
        sleeps.append(delay)
        await clock.sleep(delay)

    budget = InProcessBudget(RateLimits(concurrency=1, rpm=3), clock=clock, sleep=counting_sleep)
    admitted = await run_calls(budget, clock, [10] * 9)
    assert [t for _, t in admitted][-1] == 120.0
    assert sleeps == [60.0, 60.0]  # one exact sleep per window, no polling


async def test_fifo_big_call_is_not_starved_by_small_ones(clock: VirtualClock) -> None:
    budget = budget_for(clock, RateLimits(concurrency=100, tpm=1000))
    # 5 small calls fill half the window at t=0; then a big one queues; then more small ones keep arriving.
    costs = [100] * 5 + [900] + [100] * 10
    admitted = await run_calls(budget, clock, costs, stagger_s=0.001)
    order = [i for i, _ in admitted]
    at = dict(admitted)
    assert at[5] == pytest.approx(60.0, abs=0.01)  # as soon as the first small ones expire
    # Small calls behind it were admitted while it waited only where that did not delay it (backfill): the
    # window never held more than the limit, and whoever came after it and did not fit waited behind it.
    for t in at.values():
        assert sum(costs[i] for i, u in at.items() if t <= u < t + 60) <= 1000
    late = [i for i in range(6, 16) if at[i] > at[5]]
    assert late and all(order.index(5) < order.index(i) for i in late)


async def test_concurrency_cap(clock: VirtualClock) -> None:
    budget = budget_for(clock, RateLimits(concurrency=2))
    running = peak = 0

    async def call() -> None:
        nonlocal running, peak
        async with budget.admit(1):
            running += 1
            peak = max(peak, running)
            await clock.sleep(10)
            running -= 1

    await asyncio.gather(*(call() for _ in range(7)))
    assert peak == 2
    assert clock.now == 40.0


async def test_tpm_bound_throughput(clock: VirtualClock) -> None:
    budget = budget_for(clock, RateLimits(concurrency=50, rpm=0, tpm=10_000))
    admitted = await run_calls(budget, clock, [2_500] * 20, hold_s=3)
    times = [t for _, t in admitted]
    assert times[-1] == 240.0  # 4 calls of 2,500 per minute
    for t in times:
        assert sum(2_500 for u in times if t <= u < t + 60) <= 10_000


async def test_call_larger_than_tpm_is_a_clear_error(clock: VirtualClock) -> None:
    limits = RateLimits(concurrency=1, tpm=32_000, tpd=100_000)
    budget = budget_for(clock, limits)
    with pytest.raises(ConfigError, match="can never be admitted.*32,000 tokens per minute"):
        async with budget.admit(40_000):
            pass
    assert budget.estimated_wait(40_000, 1) == math.inf
    assert max_call_tokens(limits) == 32_000
    assert budget.stats().queued == 0


async def test_cancelled_waiter_leaves_the_queue(clock: VirtualClock) -> None:
    budget = budget_for(clock, RateLimits(concurrency=5, rpm=1))
    async with budget.admit(1):
        pass
    head = asyncio.create_task(run_calls(budget, clock, [1]))
    await asyncio.sleep(0)
    behind = asyncio.create_task(run_calls(budget, clock, [1]))
    await clock.sleep(10)
    assert budget.stats().queued == 2
    head.cancel()  # the head is sleeping until t=60; the next one must take its place and its time
    with pytest.raises(asyncio.CancelledError):
        await head
    assert await behind == [(0, 60.0)]
    assert budget.stats().queued == 0


async def test_cancelled_call_releases_concurrency(clock: VirtualClock) -> None:
    budget = budget_for(clock, RateLimits(concurrency=1))

    async def long_call() -> None:
        async with budget.admit(1):
            await clock.sleep(1000)

    first = asyncio.create_task(long_call())
    await clock.sleep(1)
    waiting = asyncio.create_task(run_calls(budget, clock, [1]))
    await clock.sleep(1)
    assert budget.stats().in_flight == 1 and budget.stats().queued == 1
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await waiting == [(0, 2.0)]
    assert budget.stats().in_flight == 0


async def test_429_pauses_everyone_and_lowers_the_axis_hit(clock: VirtualClock) -> None:
    budget = budget_for(clock, RateLimits(concurrency=10, rpm=100, tpm=100_000), default_pause_s=4)
    for _ in range(5):  # one burst of 429s from calls admitted together lowers the limit once
        budget.on_rate_limited(limit_kind="rpm", retry_after=2)
    assert budget.effective_limits == RateLimits(concurrency=10, rpm=70, tpm=100_000)
    stats = budget.stats()
    assert (stats.rate_limited, stats.decreases) == (5, 1)
    admitted = await run_calls(budget, clock, [1, 1])
    assert [t for _, t in admitted] == [2.0, 2.0]
    budget.on_rate_limited(limit_kind=None, retry_after=None)  # unknown axis: all lowered, default pause
    assert budget.effective_limits == RateLimits(concurrency=7, rpm=49, tpm=70_000)
    assert (await run_calls(budget, clock, [1]))[0][1] == 6.0


async def test_aimd_recovers_gradually_to_the_configured_limits(clock: VirtualClock) -> None:
    limits = RateLimits(concurrency=10, rpm=100, tpm=100_000)
    budget = budget_for(clock, limits, default_pause_s=0)
    budget.on_rate_limited(limit_kind="tpm", retry_after=0)
    assert budget.effective_limits.tpm == 70_000
    seen = []
    for _ in range(400):
        async with budget.admit(100):
            pass
        seen.append(budget.effective_limits.tpm)
    assert seen[0] > 70_000 and seen[0] - 70_000 < 1_000  # additive: small steps, not a jump
    assert seen == sorted(seen)
    assert seen[-1] == 100_000  # never above the configured limit
    assert budget.effective_limits == limits


async def test_lowered_tpm_still_admits_a_call_within_the_configured_tpm(clock: VirtualClock) -> None:
    budget = budget_for(clock, RateLimits(concurrency=4, tpm=1000), default_pause_s=0)
    budget.on_rate_limited(limit_kind="tpm", retry_after=0)
    assert budget.effective_limits.tpm == 700
    admitted = await run_calls(budget, clock, [100, 900])
    assert [t for _, t in admitted] == [0.0, 60.0]  # alone in an empty window


async def test_estimated_wait(clock: VirtualClock) -> None:
    budget = budget_for(clock, RateLimits(concurrency=1, rpm=3, tpm=10_000))
    assert budget.estimated_wait(1000, 3) == 0.0
    assert budget.estimated_wait(1000, 4) == 60.0
    await run_calls(budget, clock, [1000] * 3)
    assert budget.estimated_wait(1000, 1) == 60.0
    assert budget.estimated_wait(4000, 2) == 60.0  # both fit once the three calls expire
    assert budget.estimated_wait(4000, 3) == 120.0  # a third 4,000 would exceed the TPM of 10,000
    assert budget.estimated_wait(1000, 3000) == pytest.approx(60.0 * 1000, rel=0.01)  # extrapolated


def test_observe_tier_warns_once_when_configured_above_the_account(caplog: pytest.LogCaptureFixture) -> None:
    catalog = load_catalog()
    budget = InProcessBudget(catalog.tier("tier3"), tier="tier3")
    with caplog.at_level(logging.WARNING, logger="tome.budget"):
        budget.observe_tier("enterprise-tier-1")
        budget.observe_tier("enterprise-tier-1")
        InProcessBudget(catalog.tier("tier1")).observe_tier("enterprise-tier-1")
    warnings = [r for r in caplog.records if r.name == "tome.budget"]
    assert len(warnings) == 1
    assert "tier1" in warnings[0].getMessage() and "rpm 5000 > 200" in warnings[0].getMessage()


def test_budget_serves_one_event_loop_at_a_time() -> None:
    budget = InProcessBudget(RateLimits(concurrency=2))

    async def once() -> None:
        async with budget.admit(1):
            pass

    asyncio.run(once())
    asyncio.run(once())  # a later loop may take over once the first is gone
    holding, done = threading.Event(), threading.Event()

    async def hold() -> None:
        async with budget.admit(1):
            holding.set()
            await asyncio.to_thread(done.wait, 10)

    other = threading.Thread(target=asyncio.run, args=(hold(),))
    other.start()
    try:
        assert holding.wait(10)
        with pytest.raises(RuntimeError, match="two event loops"):
            asyncio.run(once())
    finally:
        done.set()
        other.join(10)
    assert budget.stats().in_flight == 0


def test_overloaded_engine_lowers_only_concurrency() -> None:
    budget = InProcessBudget(RateLimits(concurrency=10, rpm=100, tpm=1_000), default_pause_s=0)
    budget.on_rate_limited(limit_kind="overloaded", retry_after=None)
    assert budget.effective_limits == RateLimits(concurrency=7, rpm=100, tpm=1_000)


def test_a_429_that_states_the_real_limit_goes_straight_to_it_and_stays_there() -> None:
    from pipeline.budget import aimd

    limits = RateLimits(concurrency=50, rpm=200, tpm=2_000_000)
    scales = aimd.Scales()
    aimd.decrease(scales, limits, ("tpm",), stated=40_000)
    assert aimd.effective(scales, limits).tpm == 40_000  # not 1,400,000 after one x0.7 step
    aimd.decrease(scales, limits, ("concurrency",), stated=4)
    assert aimd.effective(scales, limits).concurrency == 4
    for _ in range(10_000):  # recovery never climbs above what the server said
        aimd.increase(scales, limits)
    eff = aimd.effective(scales, limits)
    assert (eff.concurrency, eff.tpm) == (4, 40_000)
    # A stated limit at or above ours means someone else shares the account: the usual decrease.
    shared = aimd.Scales()
    aimd.decrease(shared, limits, ("rpm",), stated=200)
    assert aimd.effective(shared, limits).rpm == 140


async def test_window_keeps_the_gateways_count_once_the_answer_gives_it() -> None:
    clock = VirtualClock()
    budget = InProcessBudget(RateLimits(concurrency=8, tpm=10_000), clock=clock, sleep=clock.sleep)
    async with budget.admit(6_000) as slot:  # our estimate: 6,000
        slot.record(Usage(4_000, 100), charged_tokens=4_500)  # the server counted 4,000 + 500 max_tokens
    # 4,500 + 5,500 fit the 10,000 window now; with the estimate kept it would wait a minute.
    async with budget.admit(5_500):
        assert clock() == 0.0


async def test_calls_giving_an_order_are_admitted_in_it_however_they_arrive() -> None:
    clock = VirtualClock()
    budget = InProcessBudget(RateLimits(concurrency=10, tpm=10_000), clock=clock, sleep=clock.sleep)
    admitted: list[int] = []

    async def call(index: int, cost: int, at: float) -> None:
        await clock.sleep(at)
        async with budget.admit(cost, order=(0.0, index)) as slot:
            admitted.append(index)
            slot.record(Usage(prompt_tokens=cost // 2, completion_tokens=1))

    # The window is full at 0; calls 3, 2, 1 arrive in that order and wait for it: admitted 1, 2, then 3.
    await asyncio.gather(call(0, 10_000, 0.0), call(3, 4_000, 1.0), call(2, 4_000, 2.0), call(1, 4_000, 3.0))
    assert admitted == [0, 1, 2, 3]
    # Without an order, arrival order stands.
    clock2 = VirtualClock()
    budget2 = InProcessBudget(RateLimits(concurrency=10, tpm=10_000), clock=clock2, sleep=clock2.sleep)
    seen: list[int] = []

    async def plain(index: int, cost: int, at: float) -> None:
        await clock2.sleep(at)
        async with budget2.admit(cost) as slot:
            seen.append(index)
            slot.record(Usage(prompt_tokens=cost // 2, completion_tokens=1))

    await asyncio.gather(plain(0, 10_000, 0.0), plain(3, 4_000, 1.0), plain(2, 4_000, 2.0), plain(1, 4_000, 3.0))
    assert seen == [0, 3, 2, 1]
