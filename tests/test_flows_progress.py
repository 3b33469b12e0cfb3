"""The progress board: numbers per document and level, ETA, and the plain-line and live reporters."""

from __future__ import annotations

import asyncio
import io
import math
from dataclasses import dataclass

import pytest

from flows.progress import (
    DocumentProgress,
    LineReporter,
    LiveReporter,
    ProgressBoard,
    duration,
    make_board,
    money,
    plan_calls,
)
from pipeline.progress_events import ProgressSink


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Plan:
    calls_per_level: tuple[int, ...]
    min_wall_time_s: float = 12.0


def _board(stream: io.StringIO, clock: FakeClock, **kw) -> ProgressBoard:
    return ProgressBoard(LineReporter(stream, interval_s=2.0), clock=clock, **kw)


def test_document_progress_is_a_progress_sink() -> None:
    sink: ProgressSink = ProgressBoard().sink("a.txt")
    assert isinstance(sink, DocumentProgress)


def test_money_and_duration_formats() -> None:
    assert money(0.1234, "CNY") == "¥0.12"
    assert money(0.0031, "USD") == "$0.0031"
    assert money(0, "USD") == "$0.00"
    assert money(1234.5, "CNY") == "¥1,234.50"
    assert duration(None) == "?"
    assert duration(0.42) == "0.4 s"
    assert duration(35.4) == "35 s"
    assert duration(250) == "4 min 10 s"
    assert duration(7500) == "2 h 05 min"
    assert duration(math.inf) == "?"  # the budget's estimate when the calls left cannot be admitted today


def test_plan_calls_reads_either_shape() -> None:
    assert plan_calls(Plan((40, 5, 1))) == [40, 5, 1]

    @dataclass
    class Level:
        calls: int

    @dataclass
    class Levels:
        levels: tuple[Level, ...]

    assert plan_calls(Levels((Level(7), Level(1)))) == [7, 1]
    assert plan_calls(object()) == []


def test_line_reporter_prints_at_level_start_each_ten_percent_and_end() -> None:
    out, clock = io.StringIO(), FakeClock()
    board = _board(out, clock)
    doc = board.sink("alice.txt")
    doc.level_started(0, 40)
    for _ in range(40):
        clock.now += 0.01  # fast calls: only the 10 % steps print, not the 2 s timer
        doc.call_finished(0, cached=False, prompt_tokens=1000, completion_tokens=100, cost=0.003)
    doc.level_finished(0)  # same numbers as the 100 % line: not printed again
    clock.now += 1
    board.finish("alice.txt", ok=True)
    lines = out.getvalue().splitlines()
    # start + 10 steps of 10 % + the document's end
    assert len(lines) == 12
    assert lines[0].startswith("alice.txt · level 0: 0/40 summaries, 0 tokens in")
    assert lines[1].startswith("alice.txt · level 0: 4/40 summaries, 4,000 tokens in, 400 out, ¥0.01")
    assert "40/40 summaries, 40,000 tokens in, 4,000 out, ¥0.12" in lines[-2]
    assert lines[-1] == "alice.txt: done, 40 calls, 0 cached, 40,000 tokens in, 4,000 out, ¥0.12, 1.4 s"


def test_line_reporter_prints_every_interval_on_slow_levels() -> None:
    out, clock = io.StringIO(), FakeClock()
    board = _board(out, clock)
    doc = board.sink("big.txt")
    doc.level_started(0, 1000)
    out.truncate(0)
    out.seek(0)
    for _ in range(20):  # 20 calls, 0.5 s apart: 2 % of the level, so only the 2 s timer prints
        clock.now += 0.5
        doc.call_finished(0, cached=True, prompt_tokens=10, completion_tokens=1, cost=0.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[-1].startswith("big.txt · level 0: 20/1000 summaries")
    assert "20 cached" in lines[-1]


def test_eta_uses_observed_pace_and_the_budget_floor() -> None:
    clock = FakeClock()
    waits: list[tuple[int, int]] = []

    def wait_estimate(tokens: int, calls: int) -> float:
        waits.append((tokens, calls))
        return 100.0

    board = ProgressBoard(None, clock=clock, wait_estimate=wait_estimate)
    doc = board.sink("a.txt")
    doc.plan_ready(Plan((10, 2)))
    assert doc.remaining_calls() == 12
    doc.level_started(0, 10)
    clock.now += 5
    for _ in range(5):
        doc.call_finished(0, cached=False, prompt_tokens=2000, completion_tokens=300, cost=0.01)
    # 5 calls in 5 s: 7 calls left (5 at this level + 2 planned later) take 7 s, but the budget says 100 s
    assert doc.eta() == pytest.approx(100.0)
    assert waits[-1] == (2000 * 7, 7)
    board.wait_estimate = lambda tokens, calls: 1.0
    assert doc.eta() == pytest.approx(7.0)
    board.wait_estimate = lambda tokens, calls: math.inf  # over today's quota: the line says so, never raises
    assert doc.eta() == math.inf
    assert doc.line().endswith("ETA ?")


def test_eta_falls_back_to_the_plan_before_any_call() -> None:
    board = ProgressBoard(None, clock=FakeClock())
    doc = board.sink("a.txt")
    assert doc.eta() is None
    doc.plan_ready(Plan((3,), min_wall_time_s=42.0))
    assert doc.eta() == 42.0
    board.finish("a.txt", ok=True)
    assert doc.eta() == 0.0


def test_board_totals_across_levels() -> None:
    board = ProgressBoard(None, clock=FakeClock())
    doc = board.sink("a.txt")
    doc.level_started(0, 2)
    doc.call_finished(0, cached=False, prompt_tokens=100, completion_tokens=10, cost=0.5)
    doc.call_finished(0, cached=True, prompt_tokens=100, completion_tokens=10, cost=0.0)
    doc.level_finished(0)
    doc.level_started(1, 1)
    doc.call_finished(1, cached=False, prompt_tokens=30, completion_tokens=5, cost=0.25)
    assert (doc.calls_done, doc.prompt_tokens, doc.completion_tokens) == (3, 230, 25)
    assert doc.cost == pytest.approx(0.75)
    assert doc.current is not None and doc.current.level == 1
    assert board.sink("a.txt") is doc


def test_make_board_picks_lines_when_not_a_terminal() -> None:
    board = make_board(io.StringIO())
    assert isinstance(board.reporter, LineReporter)
    assert make_board(io.StringIO(), enabled=False).reporter is None


def test_live_reporter_draws_a_table() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    board = make_board(out)
    assert isinstance(board.reporter, LiveReporter)
    doc = board.sink("红楼梦.txt")
    doc.level_started(0, 4)
    doc.call_finished(0, cached=False, prompt_tokens=1234, completion_tokens=56, cost=0.02)
    board.finish("红楼梦.txt", ok=True)
    board.close()
    text = out.getvalue()
    assert "红楼梦.txt" in text
    assert "1/4" in text and "1,234" in text and "done" in text


@pytest.mark.parametrize(("backend", "floored"), [("extractive", False), ("moonshot", True)])
def test_only_a_backend_behind_the_rate_budget_gets_its_wait_as_an_eta_floor(
    backend: str, floored: bool, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.options import SummariseOptions
    from pipeline.runtime import build_runtime
    from pipeline.store import Store

    board = ProgressBoard(None, clock=FakeClock())
    store = Store(f"sqlite:///{tmp_path / 'tome.db'}")
    runtime = build_runtime(
        SummariseOptions(backend=backend), board=board, store=store, api_key="sk-test", env={}
    )
    try:
        assert (board.wait_estimate is not None) is floored
    finally:
        asyncio.run(runtime.aclose())
