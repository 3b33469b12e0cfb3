"""Progress of summarisation runs on stderr: a live rich table on a terminal, plain periodic lines otherwise.

:class:`ProgressBoard` holds the numbers for every document of a run; ``board.sink(name)`` returns the
``pipeline.progress_events.ProgressSink`` the engine reports to. Rendering is separate: :class:`LineReporter`
prints "alice.txt · level 0: 12/40 calls, 53,210 tokens in, 4,100 out, ¥0.12, ETA 35 s" every few
seconds or every 10 % of a level; :class:`LiveReporter` redraws a table in place.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

Clock = Callable[[], float]
# (remaining admission tokens, remaining calls) -> seconds the rate budget needs for them at least.
WaitEstimate = Callable[[int, int], float]

_CURRENCY_SIGNS = {"CNY": "¥", "USD": "$", "EUR": "€"}


def money(amount: float, currency: str | None) -> str:
    """¥0.12 / $0.0031: two decimals, more for amounts under one cent; "-" without a currency (offline, no price)."""
    if not currency:
        return "-"
    sign = _CURRENCY_SIGNS.get(currency.upper(), currency.upper() + " ")
    digits = 2 if amount == 0 or abs(amount) >= 0.01 else 4
    return f"{sign}{amount:,.{digits}f}"


def duration(seconds: float | None) -> str:
    """0.4 s / 35 s / 4 min 10 s / 2 h 05 min; '?' when unknown (or never: the budget's estimate is inf when
    the calls left cannot all be admitted today)."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


@dataclass
class LevelProgress:
    """Counters of one tree level of one document."""

    level: int
    calls_total: int  # summaries (tree nodes) of the level
    calls_done: int = 0  # summaries finished
    calls: int = 0  # requests answered by the backend (pipeline.outputs.UsageTotals: one definition)
    cached_calls: int = 0  # requests answered from the cache
    splits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    started_at: float = 0.0
    finished_at: float | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.calls_total <= 0 else min(1.0, self.calls_done / self.calls_total)


@dataclass
class DocumentProgress:
    """Everything known about one document's run; the engine's ProgressSink for it."""

    name: str
    board: ProgressBoard
    currency: str = "CNY"
    planned_calls: list[int] = field(default_factory=list)  # estimate per level, from the plan
    min_wall_s: float | None = None  # the plan's lower bound on wall time under the rate limits
    levels: dict[int, LevelProgress] = field(default_factory=dict)
    status: str = "planning"  # planning | running | done | failed
    started_at: float = 0.0
    finished_at: float | None = None

    # ProgressSink -----------------------------------------------------------------------------------
    def plan_ready(self, plan: Any) -> None:
        self.planned_calls = plan_calls(plan)
        wall = getattr(plan, "min_wall_time_s", None)
        self.min_wall_s = float(wall) if isinstance(wall, int | float) else None
        self.board.changed(self, force=True)

    def level_started(self, level: int, calls: int) -> None:
        self.status = "running"
        self.levels[level] = LevelProgress(level, calls, started_at=self.board.clock())
        self.board.changed(self, force=True)

    def call_finished(
        self,
        level: int,
        *,
        cached: bool,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        calls: int | None = None,
        cached_calls: int | None = None,
        splits: int = 0,
    ) -> None:
        lv = self.levels.get(level) or self.levels.setdefault(
            level, LevelProgress(level, 0, started_at=self.board.clock())
        )
        lv.calls_done += 1
        # A sink told only ``cached`` counts one request: from the cache, or answered by the backend.
        lv.calls += (0 if cached else 1) if calls is None else calls
        lv.cached_calls += int(cached) if cached_calls is None else cached_calls
        lv.splits += splits
        lv.prompt_tokens += prompt_tokens
        lv.completion_tokens += completion_tokens
        lv.cost += cost
        self.board.changed(self)

    def level_finished(self, level: int) -> None:
        lv = self.levels.get(level)
        if lv is not None:
            lv.finished_at = self.board.clock()
        self.board.changed(self, force=True)

    # Derived numbers --------------------------------------------------------------------------------
    @property
    def current(self) -> LevelProgress | None:
        return self.levels[max(self.levels)] if self.levels else None

    @property
    def calls_done(self) -> int:
        return sum(lv.calls_done for lv in self.levels.values())

    @property
    def prompt_tokens(self) -> int:
        return sum(lv.prompt_tokens for lv in self.levels.values())

    @property
    def completion_tokens(self) -> int:
        return sum(lv.completion_tokens for lv in self.levels.values())

    @property
    def cost(self) -> float:
        return sum(lv.cost for lv in self.levels.values())

    def remaining_calls(self) -> int:
        """Calls still to make: the rest of the current level plus the planned later levels."""
        lv = self.current
        if lv is None:
            return sum(self.planned_calls)
        later = sum(self.planned_calls[lv.level + 1 :]) if len(self.planned_calls) > lv.level + 1 else 0
        return max(0, lv.calls_total - lv.calls_done) + later

    def eta(self) -> float | None:
        """Seconds left: the observed pace, never below what the rate budget allows; None when unknown."""
        if self.status in ("done", "failed"):
            return 0.0
        remaining = self.remaining_calls()
        now = self.board.clock()
        lv = self.current
        observed = None
        if lv is not None and lv.calls_done:
            observed = (now - lv.started_at) / lv.calls_done * remaining
        floor = None
        if self.board.wait_estimate is not None and remaining and self.calls_done:
            per_call = self.prompt_tokens // self.calls_done
            floor = self.board.wait_estimate(per_call * remaining, remaining)
        if observed is None and floor is None:
            return self.min_wall_s if self.board.plan_eta else None
        return max(x for x in (observed, floor) if x is not None)

    def _cost(self) -> str:
        return f", {money(self.cost, self.currency)}" if self.currency else ""

    def line(self) -> str:
        """One plain progress line for this document."""
        lv = self.current
        if self.status in ("done", "failed"):
            calls = sum(x.calls for x in self.levels.values())
            cached = sum(x.cached_calls for x in self.levels.values())
            splits = sum(x.splits for x in self.levels.values())
            took = (self.finished_at or self.board.clock()) - self.started_at
            return (
                f"{self.name}: {self.status}, {calls:,} calls, {cached:,} cached"
                + (f", {splits:,} split{'s' if splits != 1 else ''}" if splits else "")
                + ", "
                f"{self.prompt_tokens:,} tokens in, {self.completion_tokens:,} out"
                f"{self._cost()}, {duration(took)}"
            )
        if lv is None:
            planned = sum(self.planned_calls)
            waiting = self.board.waiting()
            return (
                f"{self.name}: {self.status}"
                + (f", {planned:,} calls planned" if planned else "")
                + (f", {waiting}" if waiting else "")
            )
        text = (
            f"{self.name} · level {lv.level}: {lv.calls_done}/{lv.calls_total} summaries, "
            f"{self.prompt_tokens:,} tokens in, {self.completion_tokens:,} out{self._cost()}"
        )
        if lv.cached_calls:
            text += f", {lv.cached_calls} cached"
        waiting = self.board.waiting()
        if waiting:
            text += f", {waiting}"
        return text + f", ETA {duration(self.eta())}"


def plan_calls(plan: Any) -> list[int]:
    """Estimated calls per level from a plan object (``calls_per_level`` or ``levels[i].calls``)."""
    per_level = getattr(plan, "calls_per_level", None)
    if per_level is not None:
        return [int(c) for c in per_level]
    levels = getattr(plan, "levels", None) or ()
    out = []
    for lv in levels:
        calls = getattr(lv, "calls", lv)
        if isinstance(calls, int):
            out.append(calls)
    return out


class Reporter(Protocol):
    """Turns the board's numbers into output."""

    def update(self, board: ProgressBoard, doc: DocumentProgress, *, force: bool) -> None: ...

    def close(self, board: ProgressBoard) -> None: ...


class ProgressBoard:
    """Progress of all documents of one run, shown by one reporter. Thread-safe enough for one event loop."""

    def __init__(
        self,
        reporter: Reporter | None = None,
        *,
        clock: Clock = time.monotonic,
        wait_estimate: WaitEstimate | None = None,
        currency: str = "CNY",
    ) -> None:
        self.reporter = reporter
        self.clock = clock
        self.wait_estimate = wait_estimate
        self.currency = currency
        self.plan_eta = True  # before the first answer, show the plan's least wall time as the ETA
        self.documents: dict[str, DocumentProgress] = {}
        self._lock = threading.Lock()
        self._retry: tuple[float, str] | None = None  # (clock when the wait ends, why)

    def attach(self, *, currency: str, wait_estimate: WaitEstimate | None, plan_eta: bool) -> None:
        """Told by the runtime once it is assembled (pipeline.progress_events.RunBoard)."""
        self.currency = currency
        self.wait_estimate = wait_estimate
        self.plan_eta = plan_eta

    def sink(self, name: str) -> DocumentProgress:
        """The ProgressSink for the document called ``name`` (created on first use)."""
        with self._lock:
            doc = self.documents.get(name)
            if doc is None:
                doc = DocumentProgress(name, self, currency=self.currency, started_at=self.clock())
                self.documents[name] = doc
            return doc

    def retrying(self, seconds: float, reason: str) -> None:
        """The client waits ``seconds`` before retrying a call (the LLM client's ``on_retry`` hook)."""
        self._retry = (self.clock() + seconds, reason)
        for doc in list(self.documents.values()):
            if doc.status in ("planning", "running"):
                self.changed(doc, force=True)

    def waiting(self) -> str:
        """"retrying in 8 s: 429 engine overloaded" while a retry wait lasts, else ""."""
        if self._retry is None:
            return ""
        until, reason = self._retry
        left = until - self.clock()
        if left <= 0:
            self._retry = None
            return ""
        return f"retrying in {max(1, round(left))} s: {reason}"

    def changed(self, doc: DocumentProgress, *, force: bool = False) -> None:
        if self.reporter is not None:
            self.reporter.update(self, doc, force=force)

    def finish(self, name: str, *, ok: bool) -> None:
        """Mark a document done or failed."""
        doc = self.sink(name)
        doc.status = "done" if ok else "failed"
        doc.finished_at = self.clock()
        self.changed(doc, force=True)

    def close(self) -> None:
        if self.reporter is not None:
            self.reporter.close(self)


class LineReporter:
    """Plain lines for logs and pipes: at level start/end, every ``interval_s`` and every 10 % of a level."""

    def __init__(self, stream: TextIO | None = None, *, interval_s: float = 2.0, step: float = 0.10) -> None:
        self.stream = stream
        self.interval_s = interval_s
        self.step = step
        self._last_at: dict[str, float] = {}
        self._last_bucket: dict[tuple[str, int], int] = {}
        self._last_line: dict[str, str] = {}

    def update(self, board: ProgressBoard, doc: DocumentProgress, *, force: bool) -> None:
        now = board.clock()
        lv = doc.current
        bucket = int(lv.fraction / self.step + 1e-9) if lv is not None and self.step > 0 else 0
        key = (doc.name, lv.level if lv is not None else -1)
        due = now - self._last_at.get(doc.name, float("-inf")) >= self.interval_s
        if not (force or due or bucket > self._last_bucket.get(key, 0)):
            return
        if doc.status == "planning" and lv is None and not force:
            return
        self._last_at[doc.name] = now
        self._last_bucket[key] = bucket
        line = doc.line()
        if self._last_line.get(doc.name) == line.split(", ETA")[0]:
            return  # e.g. a level's last call, then the level's end: same numbers, one line
        self._last_line[doc.name] = line.split(", ETA")[0]
        stream = self.stream or sys.stderr
        print(line, file=stream, flush=True)

    def close(self, board: ProgressBoard) -> None:
        return None


class LiveReporter:
    """A rich table redrawn in place on a terminal: one row per document, its current level."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=stream or sys.stderr)
        self._live: Live | None = None
        self._live_cls = Live

    def _table(self, board: ProgressBoard) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_edge=False)
        for col, justify in (
            ("document", "left"),
            ("level", "right"),
            ("", "left"),
            ("summaries", "right"),
            ("tokens in", "right"),
            ("out", "right"),
            ("cost", "right"),
            ("ETA", "right"),
        ):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for doc in list(board.documents.values()):
            lv = doc.current
            if lv is None:
                table.add_row(doc.name, "", doc.status, "", "", "", "", "")
                continue
            bar = ProgressBar(total=max(1, lv.calls_total), completed=lv.calls_done, width=24)
            eta = "done" if doc.status == "done" else "failed" if doc.status == "failed" else duration(doc.eta())
            eta = board.waiting() or eta if doc.status == "running" else eta
            table.add_row(
                doc.name,
                str(lv.level),
                bar,
                f"{lv.calls_done}/{lv.calls_total}",
                f"{doc.prompt_tokens:,}",
                f"{doc.completion_tokens:,}",
                money(doc.cost, doc.currency),
                eta,
            )
        return table

    def update(self, board: ProgressBoard, doc: DocumentProgress, *, force: bool) -> None:
        if self._live is None:
            self._live = self._live_cls(
                self._table(board), console=self._console, refresh_per_second=4, transient=False
            )
            self._live.start()
        self._live.update(self._table(board), refresh=force)

    def close(self, board: ProgressBoard) -> None:
        if self._live is not None:
            self._live.update(self._table(board), refresh=True)
            self._live.stop()
            self._live = None


def make_board(
    stream: TextIO | None = None,
    *,
    enabled: bool = True,
    wait_estimate: WaitEstimate | None = None,
    currency: str = "CNY",
    interval_s: float = 2.0,
) -> ProgressBoard:
    """A board that draws live on a terminal and prints lines otherwise (nothing when disabled)."""
    stream = stream or sys.stderr
    reporter: Reporter | None = None
    if enabled:
        is_tty = getattr(stream, "isatty", lambda: False)()
        reporter = LiveReporter(stream) if is_tty else LineReporter(stream, interval_s=interval_s)
    return ProgressBoard(reporter, wait_estimate=wait_estimate, currency=currency)
