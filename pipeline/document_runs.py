"""Running documents: one document's steps (load and plan, then each level), a batch under one budget.

Failures stay per document: :func:`summarise_path` returns them in its :class:`DocumentRun`. The Prefect
flows run the same functions with their steps as task runs (``Steps``); the library and ``--no-prefect``
run them directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NotRequired, Protocol, TypedDict, cast

from pipeline.documents import document_from_text, load_document
from pipeline.documents.model import Document
from pipeline.engine import Node, RunState, SummaryEngine
from pipeline.errors import NoTextLayerError, QuotaExhaustedError, TomeError
from pipeline.inputs import display_name, file_sha256, output_names
from pipeline.options import PASSWORD_ENV
from pipeline.output_files import options_fingerprint, write_outputs
from pipeline.outputs import SummaryJson, SummaryResult
from pipeline.runtime import Runtime
from pipeline.spending import SpendingCapError

log = logging.getLogger("tome.runs")

# Documents summarised at once in a batch; their calls share one rate budget either way. More would only
# hold more documents in memory while they wait for the same budget.
MAX_DOCUMENTS_AT_ONCE = 4


class OutcomeFields(TypedDict):
    """An Outcome as plain data (what flows return and the CLI reads back)."""

    name: str
    path: str
    status: str
    exit_code: int
    error: str | None
    run_id: str | None
    calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    currency: str
    seconds: float
    outputs: list[str]


class DocumentReport(TypedDict):
    """What a flow reports per document: its outcome, and its summary's markdown when asked for."""

    outcome: OutcomeFields
    markdown: NotRequired[str]
    result: NotRequired[SummaryJson]  # SummaryResult.to_json_dict()


class SummaryWithOutcome(SummaryJson):
    """A summarised document as `tome summarise --json` prints it: its summary's JSON and how the run went."""

    outcome: OutcomeFields


class OutcomeOnly(TypedDict):
    """A document that was not summarised (failed, quota, skipped) as --json prints it: how the run went."""

    outcome: OutcomeFields


DocumentJson = SummaryWithOutcome | OutcomeOnly


@dataclass
class Outcome:
    """How one document went: status, exit code, usage, where the outputs are (no summary text)."""

    name: str
    path: str
    status: str  # done | failed | quota | skipped
    exit_code: int = 0
    error: str | None = None
    run_id: str | None = None
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    currency: str = "CNY"  # "" for the offline backend: no price
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    # Wall-clock (epoch) start and end: a batch's total time is the span from the first start to the last end.
    started_at: float = 0.0
    finished_at: float = 0.0

    def to_dict(self) -> OutcomeFields:
        return cast(OutcomeFields, asdict(self))

    def report(self, result: SummaryResult | None = None) -> DocumentReport:
        """This outcome as a report, with the summary's markdown when ``result`` is given."""
        report = DocumentReport(outcome=self.to_dict())
        if result is not None:
            report["markdown"] = result.to_markdown()
            report["result"] = result.to_json_dict()
        return report


@dataclass
class DocumentRun:
    """One document's result together with its outcome (the result is None when it failed)."""

    outcome: Outcome
    result: SummaryResult | None = None
    error: Exception | None = None


class Steps(Protocol):
    """How the two coarse steps run: directly, or as Prefect tasks named after the document and level."""

    async def prepare(self, label: str, fn: Callable[[], RunState]) -> RunState: ...

    async def level(self, label: str, fn: Callable[[], Awaitable[list[Node]]]) -> list[Node]: ...


class DirectSteps:
    """Run each step as a plain call (no orchestration)."""

    async def prepare(self, label: str, fn: Callable[[], RunState]) -> RunState:
        return await asyncio.to_thread(fn)  # loading a big PDF takes seconds; other documents keep calling

    async def level(self, label: str, fn: Callable[[], Awaitable[list[Node]]]) -> list[Node]:
        return await fn()


def load_input(
    runtime: Runtime, path: Path, *, password: str | None, loop: asyncio.AbstractEventLoop
) -> Document:
    """Load ``path``; a PDF without a text layer goes to the provider's file-extract service if asked to.

    Called from a worker thread: the upload runs on the event loop, which is free while this thread waits.
    """
    try:
        return load_document(path, password=password, encoding=runtime.options.encoding)
    except NoTextLayerError:
        if not runtime.options.server_extract:
            raise
        if not runtime.backend.extracts_files:
            raise NoTextLayerError(
                f"{path} has no text layer, and --server-extract needs the Moonshot backend "
                f"(this run uses {runtime.backend.name}); OCR it first, e.g. `ocrmypdf {path.name} out.pdf`."
            ) from None
        text = asyncio.run_coroutine_threadsafe(runtime.backend.extract_file(path), loop).result()
        if not text.strip():
            raise NoTextLayerError(f"Moonshot's file-extract service found no text in {path} either.") from None
        return document_from_text(path, text, source_format="pdf")


def _status_for(exc: TomeError) -> str:
    return "quota" if isinstance(exc, QuotaExhaustedError) else "failed"


def _outcome_from_result(outcome: Outcome, result: SummaryResult) -> None:
    usage = result.usage
    outcome.run_id = result.run_id
    outcome.calls = usage.calls
    outcome.cached_calls = usage.cached_calls
    outcome.prompt_tokens = usage.prompt_tokens
    outcome.completion_tokens = usage.completion_tokens
    outcome.cost = usage.cost
    outcome.currency = usage.currency  # "" for the offline backend


async def summarise_path(
    runtime: Runtime,
    path: Path,
    *,
    name: str | None = None,
    out_dir: Path | None = None,
    steps: Steps | None = None,
    password: str | None = None,
    document: Document | None = None,
) -> DocumentRun:
    """Load, plan and summarise one document level by level; errors are returned in the DocumentRun, not raised.

    ``document``: already loaded (e.g. from a text), so ``path`` only names it.

    Cancellation and KeyboardInterrupt still propagate (the engine marks the run "interrupted").
    """
    steps = steps or DirectSteps()
    shown = display_name(path, name)
    currency = runtime.model.currency if runtime.engine.billable else ""
    outcome = Outcome(name=shown, path=str(path), status="failed", currency=currency)
    started = time.monotonic()
    outcome.started_at = time.time()
    sink = runtime.board.sink(shown)
    engine = runtime.engine
    password = password if password is not None else os.environ.get(PASSWORD_ENV)
    sha256 = ""
    state: RunState | None = None
    try:
        sha256 = file_sha256(path) if path.is_file() else ""

        loop = asyncio.get_running_loop()

        def prepare() -> RunState:  # runs in a worker thread
            loaded = document or load_input(runtime, path, password=password, loop=loop)
            return engine.prepare(loaded, progress=sink)

        async with document_claim(runtime, path, sha256):
            state = await steps.prepare(f"{shown} · load and plan", prepare)
            level = 0
            while not state.done:
                await steps.level(level_label(shown, state, level), _level_runner(engine, state, level))
                level += 1
            result = engine.finish(state)
        _outcome_from_result(outcome, result)
        if out_dir is not None:
            files = write_outputs(
                result, out_dir, name or path.stem, source=path, source_sha256=sha256, options=runtime.options
            )
            outcome.outputs = [str(p) for p in files]
        outcome.status = "done"
        runtime.board.finish(shown, ok=True)
        return DocumentRun(outcome, result)
    except Exception as exc:  # noqa: BLE001 - one document's failure, whatever it is, must not stop a batch
        if isinstance(exc, SpendingCapError) and runtime.spending is not None:
            exc = runtime.spending.stopped()  # in-flight calls have finished: say what was really spent
        if isinstance(exc, TomeError):
            outcome.status, outcome.exit_code, outcome.error = _status_for(exc), exc.exit_code, str(exc)
        else:  # a bug, not a user error: keep the traceback in the log
            log.error("%s failed unexpectedly", path, exc_info=exc)
            outcome.status, outcome.exit_code = "failed", 1
            outcome.error = f"unexpected {type(exc).__name__}: {exc}"
        if state is None:
            # It failed before the engine recorded a run: record it here so `tome runs` shows it.
            outcome.run_id = _record_failed_run(runtime, path, sha256, outcome)
        else:
            outcome.run_id = state.run_id
        runtime.board.finish(shown, ok=False)
        return DocumentRun(outcome, None, exc)
    finally:
        outcome.seconds = round(time.monotonic() - started, 3)
        outcome.finished_at = time.time()


def _level_runner(engine: SummaryEngine, state: RunState, level: int) -> Callable[[], Awaitable[list[Node]]]:
    """A step that runs ``level`` (bound now: the step may run later, as a Prefect task)."""

    async def run() -> list[Node]:
        return await engine.run_level(state, level)

    return run


def document_claim(runtime: Runtime, path: Path, sha256: str) -> contextlib.AbstractAsyncContextManager[None]:
    """Hold the document's claim (content hash + options fingerprint) while it is summarised; another process
    summarising the same document with the same options is waited for (its calls are then cached)."""
    if runtime.claims is None or not sha256:
        return contextlib.nullcontext()
    return runtime.claims.document(f"{sha256}:{options_fingerprint(runtime.options)}", document=str(path))


def level_label(shown: str, state: RunState, level: int) -> str:
    """The task-run name of a level: "alice.txt · level 0 (42 calls)"; "~" marks a planned estimate.

    Level 0 has one call per chunk; later levels pack the actual summaries, so the plan only estimates them.
    """
    per_level = state.plan.calls_per_level
    if level == 0:
        return f"{shown} · level 0 ({len(state.chunks)} calls)"
    if level < len(per_level):
        return f"{shown} · level {level} (~{per_level[level]} calls)"
    return f"{shown} · level {level}"


def _record_failed_run(runtime: Runtime, path: Path, sha256: str, outcome: Outcome) -> str | None:
    try:
        run_id = runtime.store.start_run(
            document=str(path), document_hash=sha256, settings=runtime.settings.as_dict()
        )
        runtime.store.finish_run(run_id, status="quota" if outcome.status == "quota" else "failed", error=outcome.error)
        return run_id
    except TomeError:
        return None  # the store itself is broken; the outcome still carries the error


async def summarise_paths(
    runtime: Runtime,
    paths: Sequence[Path],
    *,
    out_dir: Path | None,
    steps: Steps | None = None,
    names: Mapping[Path, str] | None = None,
    max_documents: int = MAX_DOCUMENTS_AT_ONCE,
) -> list[DocumentRun]:
    """Summarise several documents concurrently under the runtime's one budget; failures stay per document."""
    names = names or output_names(paths)
    gate = asyncio.Semaphore(max(1, max_documents))

    async def one(p: Path) -> DocumentRun:
        async with gate:
            return await summarise_path(runtime, p, name=names[p], out_dir=out_dir, steps=steps)

    return list(await asyncio.gather(*(one(p) for p in paths)))


def exit_code_for(outcomes: Iterable[Outcome]) -> int:
    """0 when all are done (or skipped); 3 when a quota ran out (resumable); else 1."""
    statuses = {o.status for o in outcomes}
    if "quota" in statuses:
        return 3
    if "failed" in statuses:
        return 1
    return 0



