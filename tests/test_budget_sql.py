"""The SQL-shared budget: one account's limits across budgets and processes on one database.

Runs on a SQLite file and on a real PostgreSQL server (tests/conftest.py starts one, or uses
TOME_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from pipeline.budget import SqlBudget, VirtualClock
from pipeline.config import RateLimits, load_catalog
from pipeline.db import make_engine
from pipeline.errors import ConfigError, QuotaExhaustedError
from pipeline.llm.types import Usage

POLL_S = 0.01
MAX_POLL_S = 0.2


@pytest.fixture
def url(db_url: str) -> str:
    return db_url


@pytest.fixture
def account() -> str:
    # Unique per test: a PostgreSQL database outlives the test, a SQLite file does not.
    return f"moonshot:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=1_770_000_000.0)  # an epoch time: SqlBudget's clock is the wall clock


def sql_budget(url: str, account: str, clock: VirtualClock, limits: RateLimits, **kw) -> SqlBudget:
    # offload=False keeps database work on the loop, so the virtual clock sees every task idle honestly.
    return SqlBudget(
        make_engine(url),
        limits,
        account=account,
        clock=clock,
        sleep=clock.sleep,
        offload=False,
        poll_s=POLL_S,
        max_poll_s=MAX_POLL_S,
        **kw,
    )


def test_migration_creates_the_budget_tables(url: str) -> None:
    columns = {c["name"] for c in inspect(make_engine(url)).get_columns("budget_admissions")}
    assert columns == {"id", "account", "admitted_at", "tokens", "lease_until"}
    accounts = {c["name"] for c in inspect(make_engine(url)).get_columns("budget_accounts")}
    assert {"account", "paused_until", "scale_rpm", "quota_day"} <= accounts


async def test_tier0_rpm_spacing_shared_by_two_budgets(url: str, account: str, clock: VirtualClock) -> None:
    limits = load_catalog().tier("tier0")
    a, b = sql_budget(url, account, clock, limits), sql_budget(url, account, clock, limits)
    start = clock.now
    times: list[float] = []

    async def call(budget: SqlBudget) -> None:
        async with budget.admit(1_000) as slot:
            times.append(clock.now - start)
            slot.record(Usage(prompt_tokens=400, completion_tokens=100))

    await asyncio.gather(*(call(x) for x in (a, b, a, b, a, b, a)))
    assert times[:3] == [0.0, 0.0, 0.0]
    assert all(60.0 <= t <= 60.0 + 2 * POLL_S for t in times[3:6])
    assert 120.0 <= times[6] <= 120.0 + 4 * POLL_S
    assert a.stats().admitted + b.stats().admitted == 7
    assert a.ledger.get(account).used_tokens == 7 * 500


async def test_concurrency_is_shared_and_a_cancelled_call_releases_its_lease(
    url: str, account: str, clock: VirtualClock
) -> None:
    limits = RateLimits(concurrency=1, rpm=100)
    a, b = sql_budget(url, account, clock, limits), sql_budget(url, account, clock, limits)

    async def long_call() -> None:
        async with a.admit(10):
            await clock.sleep(1_000)

    first = asyncio.create_task(long_call())
    await clock.sleep(1)
    second_admitted: list[float] = []

    async def second() -> None:
        async with b.admit(10):
            second_admitted.append(clock.now)

    waiting = asyncio.create_task(second())
    await clock.sleep(5)
    assert second_admitted == []  # the other budget holds the only slot
    cancelled_at = clock.now
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await waiting
    assert 0 <= second_admitted[0] - cancelled_at <= 1.5 * MAX_POLL_S
    with a.engine.connect() as conn:
        leased = conn.execute(
            text("SELECT count(*) FROM budget_admissions WHERE account = :a AND lease_until IS NOT NULL"),
            {"a": account},
        )
        assert leased.scalar_one() == 0


async def test_a_crashed_process_lease_expires(url: str, account: str, clock: VirtualClock) -> None:
    budget = sql_budget(url, account, clock, RateLimits(concurrency=1), lease_s=30)
    with budget.engine.begin() as conn:  # a slot taken by a process that then died
        conn.execute(
            text("INSERT INTO budget_admissions VALUES (:id, :a, :t, 10, :lease)"),
            {"id": uuid.uuid4().hex, "a": account, "t": clock.now, "lease": clock.now + 30},
        )
    start = clock.now
    async with budget.admit(10):
        assert 30.0 <= clock.now - start <= 30.0 + 1.5 * MAX_POLL_S


async def test_429_in_one_process_pauses_and_lowers_all(url: str, account: str, clock: VirtualClock) -> None:
    limits = RateLimits(concurrency=10, rpm=100, tpm=100_000)
    a, b = sql_budget(url, account, clock, limits), sql_budget(url, account, clock, limits)
    a.on_rate_limited(limit_kind="rpm", retry_after=3)
    a.on_rate_limited(limit_kind="rpm", retry_after=3)  # same burst: lowered once
    start = clock.now
    async with b.admit(10):
        assert 3.0 <= clock.now - start <= 3.0 + 2 * POLL_S
    assert b.effective_limits.rpm == 70 and a.stats().decreases == 1 and a.stats().rate_limited == 2
    for _ in range(300):  # about three windows' worth of successes
        async with b.admit(10):
            pass
    assert b.effective_limits.rpm > 90
    async with a.admit(10):
        pass
    assert a.effective_limits == limits  # recovered additively through b's successes


async def test_quota_and_too_large_calls(url: str, account: str, clock: VirtualClock) -> None:
    budget = sql_budget(url, account, clock, RateLimits(concurrency=2, tpm=5_000, tpd=8_000))
    with pytest.raises(ConfigError, match="never be admitted"):
        async with budget.admit(6_000):
            pass
    async with budget.admit(5_000):
        pass
    with pytest.raises(QuotaExhaustedError, match="5,000 of 8,000") as caught:
        async with budget.admit(4_000):
            pass
    assert caught.value.resets_at is not None
    with budget.engine.connect() as conn:  # the refused admission left no row behind
        rows = conn.execute(text("SELECT count(*) FROM budget_admissions WHERE account = :a"), {"a": account})
        assert rows.scalar_one() == 1
    budget.on_rate_limited(limit_kind="tpd", retry_after=None)
    with pytest.raises(QuotaExhaustedError, match="server reports"):
        async with budget.admit(1):
            pass


async def test_estimated_wait_reads_the_shared_window(url: str, account: str, clock: VirtualClock) -> None:
    budget = sql_budget(url, account, clock, RateLimits(concurrency=5, rpm=2, tpm=10_000))
    assert budget.estimated_wait(100, 2) == 0.0
    for _ in range(2):
        async with budget.admit(100):
            pass
    assert budget.estimated_wait(100, 1) == pytest.approx(60.0)
    assert budget.estimated_wait(100, 3) == pytest.approx(120.0)


# -- two real processes ---------------------------------------------------------------------------------------

WINDOW_S = 1.0
LIMITS = RateLimits(concurrency=2, rpm=4, tpm=0)
CALLS = 6
HOLD_S = 0.05


def _worker(url: str, account: str, out: str) -> None:
    async def main() -> list[tuple[float, float, float]]:
        budget = SqlBudget(make_engine(url), LIMITS, account=account, window_s=WINDOW_S, poll_s=0.01)
        spans: list[tuple[float, float, float]] = []

        async def call() -> None:
            async with budget.admit(100) as slot:
                # admitted_at is the clock read before the admission's in-flight count, so under load it can be
                # earlier than the release that count saw: running at once is measured from holding the slot.
                held = time.time()
                await asyncio.sleep(HOLD_S)
                spans.append((slot.admitted_at, held, time.time()))

        await asyncio.gather(*(call() for _ in range(CALLS)))
        return spans

    Path(out).write_text(json.dumps(asyncio.run(main())))


def test_two_processes_never_exceed_rpm_or_concurrency_together(
    url: str, account: str, tmp_path: Path
) -> None:
    make_engine(url)
    ctx = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"worker{i}.json" for i in range(2)]
    workers = [ctx.Process(target=_worker, args=(url, account, str(o))) for o in outs]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    per_worker = [json.loads(o.read_text()) for o in outs]
    spans = sorted(span for spans in per_worker for span in spans)
    assert len(spans) == 2 * CALLS
    starts = [s for s, _, _ in spans]
    for t in starts:  # every sliding window of WINDOW_S holds at most rpm admissions
        assert sum(1 for u in starts if t <= u < t + WINDOW_S - 1e-6) <= LIMITS.rpm
    for _, t, _ in spans:  # never more than `concurrency` calls running at once
        assert sum(1 for _, h, e in spans if h <= t < e) <= LIMITS.concurrency
    assert starts[-1] - starts[0] >= 2 * WINDOW_S  # 12 calls at 4 per window need three windows


def test_one_sql_budget_serves_successive_event_loops(url: str, account: str) -> None:
    budget = SqlBudget(make_engine(url), RateLimits(concurrency=1, rpm=100), account=account)

    async def once() -> None:
        async with budget.admit(10):
            pass

    for _ in range(2):
        asyncio.run(once())
    assert budget.stats().admitted == 2 and budget.stats().in_flight == 0


async def test_shared_window_keeps_the_gateways_count_once_reported(
    url: str, account: str, clock: VirtualClock
) -> None:
    a, b = (sql_budget(url, account, clock, RateLimits(concurrency=8, tpm=10_000)) for _ in range(2))
    start = clock.now
    async with a.admit(6_000) as slot:  # our estimate; the server counted 4,000 + 500 max_tokens
        slot.record(Usage(prompt_tokens=4_000, completion_tokens=100), charged_tokens=4_500)
    async with b.admit(5_500):  # fits beside 4,500 now, not beside the 6,000 estimate
        assert clock.now - start <= 2 * MAX_POLL_S


async def test_a_stated_limit_caps_recovery_for_every_process(url: str, account: str, clock: VirtualClock) -> None:
    limits = RateLimits(concurrency=50, rpm=0, tpm=0)
    a, b = (sql_budget(url, account, clock, limits) for _ in range(2))
    a.on_rate_limited(limit_kind="concurrency", retry_after=0, limit_value=4)
    for _ in range(500):  # plenty of successes: recovery would climb back to 50 without the cap
        async with b.admit(10) as slot:
            slot.record(Usage(prompt_tokens=5, completion_tokens=1))
    assert b.effective_limits.concurrency == 4
    assert a.effective_limits.concurrency == 4


async def test_shared_window_gives_a_refused_calls_admission_back(url: str, account: str, clock: VirtualClock) -> None:
    a, b = (sql_budget(url, account, clock, RateLimits(concurrency=8, tpm=10_000)) for _ in range(2))
    start = clock.now
    async with a.admit(9_000) as slot:  # the gateway refused it (400) before admitting it: it counted nothing
        slot.record(Usage(), charged_tokens=0)
    async with b.admit(9_000):  # so the next one fits at once, not a minute later
        assert clock.now - start <= 2 * MAX_POLL_S
