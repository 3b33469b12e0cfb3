"""bench/bench_budget.py's analysis: the least schedule the gateway's limits allow, and the log summaries."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pipeline.config import RateLimits
from pipeline.testing import Latency, MoonshotTestServer, RequestRecord

REPO = Path(__file__).resolve().parents[1]


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_budget", REPO / "bench" / "bench_budget.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_budget", module)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
Call = bench.LoggedCall


def admissions(calls: list, limits: RateLimits) -> list[float]:
    return [round(a, 6) for a, _ in bench.minimum_schedule(calls, limits)]


def test_tpm_window_holds_a_call_until_the_oldest_admissions_expire() -> None:
    calls = [Call(0, 10, 1.0), Call(0, 10, 1.0), Call(0, 10, 1.0), Call(0, 5, 1.0)]
    # 20 tokens a minute: two calls now, the third when both expire, the fourth when the third's 10 leave room.
    assert admissions(calls, RateLimits(concurrency=0, tpm=20)) == [0, 0, 60, 60]


def test_rpm_and_concurrency_one_space_calls_like_tier0() -> None:
    calls = [Call(0, 100, 2.0) for _ in range(6)]
    assert admissions(calls, RateLimits(concurrency=1, rpm=3)) == [0, 2, 4, 60, 62, 64]


def test_concurrency_waits_for_the_earliest_finish() -> None:
    calls = [Call(0, 1, 5.0), Call(0, 1, 3.0), Call(0, 1, 1.0)]
    assert admissions(calls, RateLimits(concurrency=2)) == [0, 0, 3]


def test_a_level_starts_after_the_previous_levels_last_call_finished() -> None:
    calls = [Call(0, 1, 5.0, level=0), Call(0, 1, 1.0, level=0), Call(0, 1, 1.0, level=1)]
    sched = bench.minimum_schedule(calls, RateLimits(concurrency=0))
    assert [a for a, _ in sched] == [0, 0, 5]
    assert max(f for _, f in sched) == 6


def test_logged_calls_take_levels_in_order_and_only_answers() -> None:
    records = [
        RequestRecord(t=1.0, endpoint="chat", status=200, admission_tokens=10, completion_tokens=100),
        RequestRecord(t=1.5, endpoint="chat", status=429, limit_kind="tpm", admission_tokens=10),
        RequestRecord(t=2.0, endpoint="chat", status=200, admission_tokens=20, completion_tokens=50),
        RequestRecord(t=9.0, endpoint="chat", status=200, admission_tokens=30, completion_tokens=0),
    ]
    calls = bench.logged_calls(records, [2, 1], Latency(0.5, 0.01))
    assert [(c.cost, c.level) for c in calls] == [(10, 0), (20, 0), (30, 1)]
    assert [c.latency_s for c in calls] == pytest.approx([1.5, 1.0, 0.5])


def test_per_minute_and_repeated_prompts() -> None:
    records = [
        RequestRecord(t=100.0, endpoint="chat", status=200, admission_tokens=10, messages_hash="a"),
        RequestRecord(t=130.0, endpoint="chat", status=429, limit_kind="rpm", messages_hash="b"),
        RequestRecord(t=170.0, endpoint="chat", status=200, admission_tokens=7, messages_hash="b"),
        RequestRecord(t=175.0, endpoint="chat", status=200, admission_tokens=3, messages_hash="a"),
    ]
    assert bench.per_minute(records, 100.0) == [
        {"minute": 1, "calls": 1, "tokens": 10, "rejected": 1},
        {"minute": 2, "calls": 2, "tokens": 10, "rejected": 0},
    ]
    assert bench.max_window(records) == (2, 10)  # 100 s and 170 s are more than a minute apart
    assert bench.answers_per_hash(records) == {"a": 2, "b": 1}


async def test_the_cli_runtime_reaches_the_server_and_levels_match_its_log(tmp_path: Path) -> None:
    doc = REPO / "data" / "the_lighthouse_keeper.md"
    with bench.tome_home(tmp_path / "home"), MoonshotTestServer(latency=Latency.zero()) as srv:
        options, env = bench.options_for(srv, tier="tier1", concurrency=4)
        run = await bench.run_document(bench.build_runtime(options, env=env), doc)
        records = bench.chat_records(srv)
    assert run.doc.outcome.status == "done", run.doc.outcome.error
    figures = bench.schedule_figures(records, run, RateLimits(concurrency=4), Latency.zero())
    assert sum(figures["calls_per_level"]) == figures["calls_200"] == len(records)
    assert figures["rate_limited"] == {}
    assert run.budget["admitted"] == len(records)


def test_report_orders_each_scenario_before_its_archived_recordings() -> None:
    results = {"tpd": {}, "misconfigured@before-x": {}, "tpm": {}, "misconfigured": {}, "rpm": {}}
    assert bench._ordered(results) == ["tpm", "rpm", "misconfigured", "misconfigured@before-x"]
