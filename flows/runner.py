"""Summarising documents without Prefect: the runtime a run shares, one document's steps, outputs and tables.

The Prefect flows (flows/summarise.py) call these same functions, wrapping the two coarse steps
(load + plan, and each tree level) in tasks through :class:`Steps`; ``tome summarise --no-prefect``
and the overhead benchmark call them directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from flows.options import PASSWORD_ENV, SummariseOptions
from flows.progress import ProgressBoard, money
from flows.tables import markdown_table, text_table
from pipeline.backends import make_backend
from pipeline.budget.base import RateBudget
from pipeline.budget.factory import make_budget
from pipeline.budget.presets import account_id
from pipeline.claims import Claims
from pipeline.config import ModelSpec, RateLimits, load_catalog
from pipeline.document import Document
from pipeline.documents import document_from_text, load_document
from pipeline.engine import RunState, SummaryEngine
from pipeline.errors import DocumentNotFoundError, NoTextLayerError, QuotaExhaustedError, TomeError
from pipeline.llm.types import ChatBackend
from pipeline.outputs import SummaryResult
from pipeline.settings import RunSettings
from pipeline.spending import CappedBackend, SpendingCap, SpendingCapError
from pipeline.store import Store

log = logging.getLogger("tome.flows")

SUMMARY_SUFFIXES = (".summary.md", ".summary.json")
# Documents summarised at once in a batch; their calls share one rate budget either way. More would only
# hold more documents in memory while they wait for the same budget.
MAX_DOCUMENTS_AT_ONCE = 4
DEFAULT_IN_FLIGHT = 8  # calls in flight per document when the tier sets no concurrency limit


@dataclass
class Runtime:
    """What every document of one run shares: settings, one store, ONE rate budget, one backend, the board."""

    options: SummariseOptions
    settings: RunSettings
    model: ModelSpec
    limits: RateLimits
    store: Store
    budget: RateBudget
    backend: ChatBackend
    notice: str
    board: ProgressBoard
    spending: SpendingCap | None = None  # --max-cost: shared by every document (and worker) of the scope
    claims: Claims | None = None  # document and in-flight call claims shared with other processes

    async def aclose(self) -> None:
        await self.backend.aclose()
        if self.claims is not None:
            await asyncio.to_thread(self.claims.close)
        self.store.close()


def open_runtime(
    options: SummariseOptions,
    *,
    board: ProgressBoard | None = None,
    env: Mapping[str, str] = os.environ,
    utcnow: Callable[[], datetime] | None = None,
    spend_scope: str | None = None,
) -> Runtime:
    """Resolve settings and build store, budget and backend; the API key is read from ``env`` here, only.

    ``spend_scope`` names what ``--max-cost`` caps (a batch's id, shared by its workers); default: this runtime.
    """
    catalog = load_catalog()
    settings = options.settings(catalog)
    model = catalog.model(settings.model)
    limits = options.limits(settings, catalog)
    provider = catalog.provider(settings.provider)
    api_key = env.get(provider.api_key_env) or None
    store = Store()
    # Several processes or machines on one account share one budget through the database (opt-in: the
    # in-process budget is cheaper when one process owns the account).
    shared = env.get("TOME_SHARED_BUDGET", "").strip().lower() in {"1", "true", "yes"}
    budget = make_budget(
        limits,
        account=account_id(settings.provider, api_key),
        engine=store.engine,
        tier=settings.tier,
        shared=shared,
        utcnow=utcnow,
    )
    backend, notice = make_backend(
        options.backend,
        settings,
        base_url=options.base_url,
        api_key=api_key,
        budget=budget,
        concurrency=limits.concurrency or DEFAULT_IN_FLIGHT,
        catalog=catalog,
        env=env,
    )
    # Paid calls are claimed in the database: processes sharing it never pay twice for a document or a prompt.
    claims = Claims(store.engine) if getattr(backend, "billable", True) else None
    spending = None
    cap = options.spending_cap(catalog)
    if cap > 0 and getattr(backend, "billable", True):
        spending = SpendingCap(store.engine, scope=spend_scope or uuid.uuid4().hex, cap=cap, currency=model.currency)
        backend = CappedBackend(backend, spending, model)
    if board is None:
        board = ProgressBoard()
    board.currency = model.currency
    board.wait_estimate = budget.estimated_wait
    if hasattr(backend, "on_retry"):  # the client's retry waits show on the progress line
        backend.on_retry = board.retrying
    # The plan's wall-time floor assumes a model's latency; the offline backend answers in milliseconds.
    board.plan_eta = bool(getattr(backend, "billable", True))
    return Runtime(options, settings, model, limits, store, budget, backend, notice, board, spending, claims)


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
    currency: str = "CNY"
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DocumentRun:
    """One document's result together with its outcome (the result is None when it failed)."""

    outcome: Outcome
    result: SummaryResult | None = None
    error: Exception | None = None


class Steps(Protocol):
    """How the two coarse steps run: directly, or as Prefect tasks named after the document and level."""

    async def prepare(self, label: str, fn: Callable[[], RunState]) -> RunState: ...

    async def level(self, label: str, fn: Callable[[], Awaitable[Any]]) -> Any: ...


class DirectSteps:
    """Run each step as a plain call (no orchestration)."""

    async def prepare(self, label: str, fn: Callable[[], RunState]) -> RunState:
        return await asyncio.to_thread(fn)  # loading a big PDF takes seconds; other documents keep calling

    async def level(self, label: str, fn: Callable[[], Awaitable[Any]]) -> Any:
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
        extract = getattr(runtime.backend, "extract_file", None)
        if extract is None:
            raise NoTextLayerError(
                f"{path} has no text layer, and --server-extract needs the Moonshot backend "
                f"(this run uses {runtime.backend.name}); OCR it first, e.g. `ocrmypdf {path.name} out.pdf`."
            ) from None
        text = asyncio.run_coroutine_threadsafe(extract(path), loop).result()
        if not text.strip():
            raise NoTextLayerError(f"Moonshot's file-extract service found no text in {path} either.") from None
        return document_from_text(path, text, source_format="pdf")


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file's bytes: what `tome serve` compares to find new or changed documents."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def options_fingerprint(options: SummariseOptions) -> str:
    """A short hash of the options that change a summary (not rate limits, which only change speed)."""
    relevant = options.model_dump(include={"backend", "model", "length", "language", "context", "base_url"})
    blob = json.dumps(relevant, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def is_summary_file(path: Path) -> bool:
    return path.name.endswith(SUMMARY_SUFFIXES)


def expand_inputs(inputs: Sequence[str], pattern: str = "*", *, exclude: Path | None = None) -> list[Path]:
    """Files named by ``inputs``: files as given, folders matched with ``pattern``, glob expressions expanded.

    Our own outputs (``*.summary.md/json``) and anything under ``exclude`` are skipped. A named file that
    does not exist raises DocumentNotFoundError; a folder or glob that matches nothing gives no files.
    """
    found: list[Path] = []
    excluded = exclude.resolve() if exclude is not None else None
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            matches = sorted(p for p in path.glob(pattern) if p.is_file())
        elif any(ch in item for ch in "*?["):
            anchor = Path(path.anchor) if path.is_absolute() else Path()
            rel = str(path.relative_to(anchor)) if path.is_absolute() else item
            matches = sorted(p for p in anchor.glob(rel) if p.is_file())
        elif path.is_file():
            matches = [path]
        else:
            raise DocumentNotFoundError(f"{item}: no such file or folder.")
        for p in matches:
            if is_summary_file(p) or p.name.startswith("."):
                continue
            if excluded is not None and excluded in p.resolve().parents:
                continue
            if p not in found:
                found.append(p)
    return found


def output_names(paths: Iterable[Path]) -> dict[Path, str]:
    """The output base name of each input: its stem; its file name when stems clash (a.txt, a.pdf); else
    the file name plus a short hash of its folder (two a.txt in different folders)."""
    paths = list(paths)
    stems: dict[str, int] = {}
    full: dict[str, int] = {}
    for p in paths:
        stems[p.stem] = stems.get(p.stem, 0) + 1
        full[p.name] = full.get(p.name, 0) + 1
    names = {}
    for p in paths:
        if stems[p.stem] == 1:
            names[p] = p.stem
        elif full[p.name] == 1:
            names[p] = p.name
        else:
            names[p] = f"{p.name}-{hashlib.sha256(str(p.resolve().parent).encode()).hexdigest()[:6]}"
    return names


def display_name(path: Path, name: str | None) -> str:
    """What progress lines and tables call a document: its file name, unless that is ambiguous."""
    return path.name if name in (None, path.stem) else name


def output_paths(out_dir: Path, name: str) -> tuple[Path, Path]:
    """``<out>/<name>.summary.md`` and ``<out>/<name>.summary.json``."""
    return out_dir / f"{name}.summary.md", out_dir / f"{name}.summary.json"


def write_outputs(
    result: SummaryResult, out_dir: Path, name: str, *, source: Path, source_sha256: str, options: SummariseOptions
) -> list[Path]:
    """Write the markdown and JSON summaries (atomically: a reader never sees half a file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = output_paths(out_dir, name)
    payload = {
        "source": {
            "path": str(source),
            "sha256": source_sha256,
            "options": options.model_dump(exclude_none=True),
            "options_fingerprint": options_fingerprint(options),
        },
        **result.to_json_dict(),
    }
    _write_atomic(md_path, result.to_markdown().rstrip() + "\n")
    _write_atomic(json_path, json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    return [md_path, json_path]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def is_current(out_dir: Path, name: str, *, source_sha256: str, options: SummariseOptions) -> bool:
    """True when ``<name>.summary.json`` was made from these exact bytes with the same options."""
    md_path, json_path = output_paths(out_dir, name)
    if not (md_path.is_file() and json_path.is_file()):
        return False
    try:
        source = json.loads(json_path.read_text(encoding="utf-8")).get("source", {})
    except (OSError, ValueError):
        return False
    return source.get("sha256") == source_sha256 and source.get("options_fingerprint") == options_fingerprint(
        options
    )


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
    outcome.currency = usage.currency


async def summarise_path(
    runtime: Runtime,
    path: Path,
    *,
    name: str | None = None,
    out_dir: Path | None = None,
    steps: Steps | None = None,
    password: str | None = None,
) -> DocumentRun:
    """Load, plan and summarise one document level by level; errors are returned in the DocumentRun, not raised.

    Cancellation and KeyboardInterrupt still propagate (the engine marks the run "interrupted").
    """
    steps = steps or DirectSteps()
    shown = display_name(path, name)
    outcome = Outcome(name=shown, path=str(path), status="failed", currency=runtime.model.currency)
    started = time.monotonic()
    sink = runtime.board.sink(shown)
    engine = SummaryEngine(
        backend=runtime.backend,
        store=runtime.store,
        settings=runtime.settings,
        model=runtime.model,
        progress=sink,
        max_in_flight=runtime.limits.concurrency or DEFAULT_IN_FLIGHT,
        limits=runtime.limits,
        claims=runtime.claims,
    )
    password = password if password is not None else os.environ.get(PASSWORD_ENV)
    sha256 = ""
    state: RunState | None = None
    try:
        sha256 = file_sha256(path) if path.is_file() else ""

        loop = asyncio.get_running_loop()

        def prepare() -> RunState:  # runs in a worker thread
            return engine.prepare(load_input(runtime, path, password=password, loop=loop))

        async with document_claim(runtime, path, sha256):
            state = await steps.prepare(f"{shown} · load and plan", prepare)
            level = 0
            while not state.done:
                lv = level
                await steps.level(level_label(shown, state, level), lambda lv=lv: engine.run_level(state, lv))
                level += 1
            result = engine.finish(state)
        _outcome_from_result(outcome, result)
        if out_dir is not None:
            files = write_outputs(
                result, out_dir, name or path.stem, source=path, source_sha256=sha256, options=runtime.options
            )
            outcome.outputs = [str(p) for p in files]
        outcome.status = "done"
        runtime.board.finish(sink.name, ok=True)
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
            outcome.run_id = getattr(state, "run_id", None)
        runtime.board.finish(sink.name, ok=False)
        return DocumentRun(outcome, None, exc)
    finally:
        outcome.seconds = round(time.monotonic() - started, 3)


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


_OUTCOME_HEAD = ("document", "status", "calls", "cached", "tokens in", "tokens out", "cost", "time")
_NUMERIC = {2, 3, 4, 5, 6, 7}


def _outcome_rows(outcomes: Sequence[Outcome]) -> list[list[str]]:
    rows = [
        [
            o.name,
            o.status,
            str(o.calls),
            str(o.cached_calls),
            f"{o.prompt_tokens:,}",
            f"{o.completion_tokens:,}",
            money(o.cost, o.currency),
            f"{o.seconds:.1f} s",
        ]
        for o in outcomes
    ]
    if len(outcomes) > 1:
        done = sum(o.status in ("done", "skipped") for o in outcomes)
        rows.append(
            [
                "total",
                f"{done}/{len(outcomes)} ok",
                str(sum(o.calls for o in outcomes)),
                str(sum(o.cached_calls for o in outcomes)),
                f"{sum(o.prompt_tokens for o in outcomes):,}",
                f"{sum(o.completion_tokens for o in outcomes):,}",
                money(sum(o.cost for o in outcomes), outcomes[0].currency),
                f"{max(o.seconds for o in outcomes):.1f} s",
            ]
        )
    return rows


def outcomes_table(outcomes: Sequence[Outcome]) -> str:
    """Markdown: document, status, calls, cached, tokens, cost, time (a total row for several), then errors."""
    text = markdown_table(_OUTCOME_HEAD, _outcome_rows(outcomes), right=_NUMERIC)
    errors = [f"- **{o.name}**: {o.error}" for o in outcomes if o.error]
    return text + ("\n" + "\n".join(errors) + "\n" if errors else "")


def outcomes_text(outcomes: Sequence[Outcome]) -> str:
    """The same table as aligned text for terminals, errors listed below it."""
    text = text_table(_OUTCOME_HEAD, _outcome_rows(outcomes), right=_NUMERIC)
    errors = [f"{o.name}: {o.error}" for o in outcomes if o.error]
    return text + ("".join(e + "\n" for e in errors))


async def summarise_direct(
    options: SummariseOptions,
    paths: Sequence[Path],
    *,
    out_dir: Path | None,
    board: ProgressBoard | None = None,
    announce: bool = False,
) -> tuple[list[DocumentRun], str]:
    """Summarise without Prefect (``--no-prefect``, benchmarks); returns the runs and the backend notice."""
    runtime = open_runtime(options, board=board)
    if announce:
        print(runtime.notice, file=sys.stderr, flush=True)
    try:
        runs = await summarise_paths(runtime, paths, out_dir=out_dir)
    finally:
        runtime.board.close()
        await runtime.aclose()
    return runs, runtime.notice
