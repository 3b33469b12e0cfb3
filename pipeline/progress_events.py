"""Progress events the engine emits; the CLI/flows implement a sink (a rich progress bar, Prefect logs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class ProgressSink(Protocol):
    """Receives the engine's progress; every method must return quickly and never raise.

    ``call_finished`` is called once per node (summary) of the tree; ``calls``/``cached_calls`` are the requests
    behind it answered by the backend / from the cache (pipeline.outputs.UsageTotals defines them).
    """

    def plan_ready(self, plan: Any) -> None: ...

    def level_started(self, level: int, calls: int) -> None: ...

    def call_finished(
        self,
        level: int,
        *,
        cached: bool,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        calls: int = 1,
        cached_calls: int = 0,
        splits: int = 0,
    ) -> None: ...

    def level_finished(self, level: int) -> None: ...


class NullProgress:
    """A sink that ignores every event."""

    def plan_ready(self, plan: Any) -> None:
        return None

    def level_started(self, level: int, calls: int) -> None:
        return None

    def call_finished(
        self,
        level: int,
        *,
        cached: bool,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        calls: int = 1,
        cached_calls: int = 0,
        splits: int = 0,
    ) -> None:
        return None

    def level_finished(self, level: int) -> None:
        return None


class RecordingProgress(NullProgress):
    """A sink that keeps every event as a tuple (for tests and benchmarks)."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def plan_ready(self, plan: Any) -> None:
        self.events.append(("plan_ready", plan))

    def level_started(self, level: int, calls: int) -> None:
        self.events.append(("level_started", level, calls))

    def call_finished(
        self,
        level: int,
        *,
        cached: bool,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        calls: int = 1,
        cached_calls: int = 0,
        splits: int = 0,
    ) -> None:
        self.events.append(("call_finished", level, cached, prompt_tokens, completion_tokens, cost))

    def level_finished(self, level: int) -> None:
        self.events.append(("level_finished", level))


class RunBoard(Protocol):
    """Where a run reports: one ProgressSink per document, retry waits, each document's end, the run's end."""

    def attach(self, *, currency: str, wait_estimate: Callable[[int, int], float] | None, plan_eta: bool) -> None:
        """Told once the run is assembled: its currency, the budget's wait estimate, whether plan ETAs apply."""

    def sink(self, name: str) -> ProgressSink: ...

    def retrying(self, seconds: float, reason: str) -> None: ...

    def finish(self, name: str, *, ok: bool) -> None: ...

    def close(self) -> None: ...


class NullBoard:
    """A board that shows nothing (library calls without a progress display)."""

    def attach(self, *, currency: str, wait_estimate: Callable[[int, int], float] | None, plan_eta: bool) -> None:
        return None

    def sink(self, name: str) -> ProgressSink:
        return NullProgress()

    def retrying(self, seconds: float, reason: str) -> None:
        return None

    def finish(self, name: str, *, ok: bool) -> None:
        return None

    def close(self) -> None:
        return None
