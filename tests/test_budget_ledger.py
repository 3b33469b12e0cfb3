"""Tokens per day: the SQL ledger shared by budgets and processes, surviving restarts; QuotaExhaustedError."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.budget import InProcessBudget, TokenLedger, VirtualClock, next_utc_midnight
from pipeline.config import RateLimits
from pipeline.db import make_engine
from pipeline.errors import QuotaExhaustedError
from pipeline.llm.types import Usage

LIMITS = RateLimits(concurrency=4, rpm=0, tpm=0, tpd=10_000)
ACCOUNT = "moonshot:0123456789ab"


class FakeUtc:
    """A settable wall clock for the ledger's UTC day."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def budget_on(url: str, utc: FakeUtc, limits: RateLimits = LIMITS) -> InProcessBudget:
    """A budget as a fresh process would build it: its own engine and ledger on the shared database file."""
    clock = VirtualClock()
    ledger = TokenLedger(make_engine(url), utcnow=utc)
    return InProcessBudget(limits, clock=clock, sleep=clock.sleep, ledger=ledger, account=ACCOUNT)


async def call(budget: InProcessBudget, tokens: int, used: int = 0) -> None:
    async with budget.admit(tokens) as slot:
        if used:
            slot.record(Usage(prompt_tokens=used, completion_tokens=0))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tome.db'}"


async def test_two_budgets_share_the_day_and_the_quota_error_says_when_it_resets(url: str) -> None:
    utc = FakeUtc(datetime(2026, 3, 1, 21, 30, tzinfo=UTC))
    first, second = budget_on(url, utc), budget_on(url, utc)
    await call(first, 6_000, used=2_500)
    await call(second, 4_000, used=1_000)
    with pytest.raises(QuotaExhaustedError) as caught:
        await call(first, 1)
    err = caught.value
    assert err.quota == "tpd" and err.exit_code == 3
    assert err.resets_at == datetime(2026, 3, 2, tzinfo=UTC)
    message = str(err)
    assert "10,000 of 10,000 tokens used today" in message
    assert "2026-03-02 00:00 UTC (in 2 h 30 min)" in message and "re-run" in message
    assert ACCOUNT in message
    day = first.ledger.get(ACCOUNT)  # type: ignore[union-attr]
    assert (day.admitted_tokens, day.used_tokens) == (10_000, 3_500)
    assert first.stats().quota_exhausted == 1 and first.stats().queued == 0


async def test_ledger_survives_a_restart_and_resets_at_utc_midnight(url: str) -> None:
    utc = FakeUtc(datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC))
    await call(budget_on(url, utc), 9_500)
    restarted = budget_on(url, utc)  # a new engine and budget: the day's count comes from the database
    with pytest.raises(QuotaExhaustedError):
        await call(restarted, 600)
    await call(restarted, 500)  # what is left still fits
    utc.now += timedelta(seconds=1)  # 00:00:00 UTC: a new day
    await call(restarted, 10_000)
    assert restarted.ledger.get(ACCOUNT, "2026-03-02").admitted_tokens == 10_000  # type: ignore[union-attr]


async def test_in_flight_calls_are_unaffected_when_the_quota_runs_out(url: str) -> None:
    utc = FakeUtc(datetime(2026, 3, 1, 12, tzinfo=UTC))
    budget = budget_on(url, utc)
    async with budget.admit(9_000) as slot:
        with pytest.raises(QuotaExhaustedError):
            await call(budget, 2_000)
        slot.record(Usage(prompt_tokens=3_000, completion_tokens=400))
    assert budget.ledger.get(ACCOUNT).used_tokens == 3_400  # type: ignore[union-attr]
    assert budget.stats().in_flight == 0


async def test_server_reported_tpd_stops_admissions_until_midnight(url: str) -> None:
    utc = FakeUtc(datetime(2026, 3, 1, 8, tzinfo=UTC))
    budget = budget_on(url, utc, RateLimits(concurrency=2, tpd=1_000_000))
    await call(budget, 100)
    budget.on_rate_limited(limit_kind="tpd", retry_after=None)
    with pytest.raises(QuotaExhaustedError) as caught:
        await call(budget, 100)
    assert caught.value.resets_at == next_utc_midnight(utc.now)
    with pytest.raises(QuotaExhaustedError):  # other processes see it through the ledger
        await call(budget_on(url, utc, RateLimits(concurrency=2, tpd=1_000_000)), 100)


async def test_tpd_without_a_ledger_is_counted_in_memory() -> None:
    utc = FakeUtc(datetime(2026, 3, 1, 8, tzinfo=UTC))
    budget = InProcessBudget(RateLimits(concurrency=2, tpd=1_000), utcnow=utc)
    await call(budget, 700)
    with pytest.raises(QuotaExhaustedError, match="700 of 1,000"):
        await call(budget, 301)
    assert budget.estimated_wait(300, 2) == float("inf")
    await call(budget, 300)


def _reserve_worker(url: str, results: multiprocessing.Queue) -> None:
    ledger = TokenLedger(make_engine(url))
    booked = 0
    for _ in range(100):
        try:
            ledger.reserve(ACCOUNT, 1_000, tpd=150_000)
            booked += 1
        except QuotaExhaustedError:
            pass
    results.put(booked)


def test_concurrent_processes_never_overbook_the_day(url: str) -> None:
    make_engine(url)  # migrate once up front
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers = [ctx.Process(target=_reserve_worker, args=(url, results)) for _ in range(2)]
    for w in workers:
        w.start()
    booked = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert sum(booked) == 150 and all(b > 0 for b in booked)
    assert TokenLedger(make_engine(url)).get(ACCOUNT).admitted_tokens == 150_000


async def test_without_a_tpd_limit_the_ledger_still_books_each_call_once_it_ends(url: str) -> None:
    utc = FakeUtc(datetime(2026, 3, 1, 8, tzinfo=UTC))
    budget = budget_on(url, utc, RateLimits(concurrency=2, tpd=0))
    await call(budget, 1_500, used=700)
    with pytest.raises(RuntimeError):  # a failed call still counts what the gateway admitted
        async with budget.admit(800):
            raise RuntimeError("connection dropped")
    day = budget.ledger.get(ACCOUNT)  # type: ignore[union-attr]
    assert (day.admitted_tokens, day.used_tokens) == (2_300, 700)
