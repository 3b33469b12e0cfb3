"""`tome summarise` and `tome batch` recorded in tome's background Prefect server without importing Prefect.

The same flow runs as flows/summarise.py's ``summarise-document`` and ``summarise-batch`` (names, parameters, one
task run per document's "load and plan" and per tree level, the summary and usage artifacts), recorded over the
server's REST API (flows/prefect_rest.py): a small document's run then costs ~0.2 s of CPU more than
``--no-prefect`` instead of ~1.4 s. ``TOME_PREFECT_CLIENT=prefect`` runs Prefect's own flow engine instead.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from flows.outcomes import failures_line
from flows.prefect_rest import FlowRunRecorder
from flows.progress import make_board
from flows.published import batch_run_name, document_run_name, flow_run_line, run_artifacts
from pipeline.document_runs import DocumentReport, DocumentRun, Outcome, summarise_path, summarise_paths
from pipeline.engine import Node, RunState
from pipeline.errors import ConfigError
from pipeline.inputs import expand_inputs
from pipeline.options import SummariseOptions
from pipeline.runtime import Runtime, build_runtime

T = TypeVar("T")
CLIENT_ENV = "TOME_PREFECT_CLIENT"
REST, PREFECT = "rest", "prefect"


def records_over_rest(env: Mapping[str, str]) -> bool:
    """True unless ``TOME_PREFECT_CLIENT=prefect`` asks for Prefect's own client and flow engine."""
    choice = env.get(CLIENT_ENV, REST).strip().lower() or REST
    if choice not in (REST, PREFECT):
        raise ConfigError(f"{CLIENT_ENV}={choice!r}: use '{REST}' (the default) or '{PREFECT}'.")
    return choice == REST


class RecordedSteps:
    """The engine's two coarse steps as task runs named after the document and level (as flows/summarise.py's)."""

    def __init__(self, recorder: FlowRunRecorder) -> None:
        self.recorder = recorder

    async def prepare(self, label: str, fn: Callable[[], RunState]) -> RunState:
        # In a thread, as the direct run does: loading a big PDF takes seconds, other documents keep calling.
        return await self.recorder.task("load-and-plan", label, lambda: asyncio.to_thread(fn))

    async def level(self, label: str, fn: Callable[[], Awaitable[list[Node]]]) -> list[Node]:
        return await self.recorder.task("summarise-level", label, fn)


async def recorded_document(
    api_url: str, path: str, output_dir: str | None, options: SummariseOptions, *, progress: bool = True
) -> DocumentReport:
    """One document as a ``summarise-document`` flow run; its TomeError is raised (the flow run fails)."""
    parameters = {"path": path, "output_dir": output_dir, "options": options.model_dump(mode="json"),
                  "progress": progress, "spend_scope": None, "claims": None}  # fmt: skip

    async def body(recorder: FlowRunRecorder) -> DocumentReport:
        runtime = _runtime(options, progress, recorder)
        try:
            run = await summarise_path(
                runtime, Path(path), out_dir=Path(output_dir) if output_dir else None, steps=RecordedSteps(recorder)
            )
            runtime.board.close()  # the live display ends before the artifacts upload
            await _publish(recorder, [run], runtime)
        finally:
            runtime.board.close()
            await runtime.aclose()
        if run.error is not None:
            raise run.error
        return run.outcome.report(run.result)

    return await _recorded(api_url, "summarise-document", document_run_name(parameters), parameters, body)


async def recorded_batch(
    api_url: str,
    inputs: list[str],
    output_dir: str | None,
    options: SummariseOptions,
    *,
    pattern: str = "*",
    progress: bool = True,
    with_markdown: bool = False,
) -> list[DocumentReport]:
    """Files, folders or globs as one ``summarise-batch`` flow run under one rate budget (failures reported)."""
    parameters = {"inputs": inputs, "output_dir": output_dir, "options": options.model_dump(mode="json"),
                  "pattern": pattern, "progress": progress, "with_markdown": with_markdown}  # fmt: skip
    out = Path(output_dir) if output_dir else None

    async def body(recorder: FlowRunRecorder) -> list[DocumentReport]:
        paths = expand_inputs(inputs, pattern, exclude=out)
        runtime = _runtime(options, progress, recorder)
        try:
            runs = await summarise_paths(runtime, paths, out_dir=out, steps=RecordedSteps(recorder))
            runtime.board.close()
            await _publish(recorder, runs, runtime)
        finally:
            runtime.board.close()
            await runtime.aclose()
        return [r.outcome.report(r.result if with_markdown else None) for r in runs]

    return await _recorded(api_url, "summarise-batch", batch_run_name(parameters), parameters, body)


async def _recorded(
    api_url: str, flow: str, name: str, parameters: dict[str, Any], body: Callable[[FlowRunRecorder], Awaitable[T]]
) -> T:
    """``body`` inside a recorded flow run whose final state is its outcome (an interrupted run is Cancelled)."""
    recorder = FlowRunRecorder(api_url)
    try:
        await recorder.start(flow, name, parameters)
        try:
            result = await body(recorder)
        except BaseException as exc:
            await recorder.finish(exc)
            raise
        await recorder.finish(None, failed=_failures(result))
        return result
    finally:
        await recorder.aclose()


def _failures(result: object) -> str | None:
    """A batch's failed documents in one line (its run ends Failed, as Prefect's engine ends it)."""
    if not isinstance(result, list):
        return None  # one document: its error was raised, or it is done
    return failures_line([Outcome(**report["outcome"]) for report in result])


def _runtime(options: SummariseOptions, progress: bool, recorder: FlowRunRecorder) -> Runtime:
    """The runtime; the backend notice and the flow run's address on stderr, the notice in the run's log."""
    runtime = build_runtime(options, board=make_board(sys.stderr, enabled=progress))
    print(runtime.notice, file=sys.stderr, flush=True)
    line = flow_run_line(recorder.flow_run_id, recorder.name, recorder.ui_url)
    if line:
        print(line, file=sys.stderr, flush=True)
    recorder.log(runtime.notice)
    return runtime


async def _publish(recorder: FlowRunRecorder, runs: list[DocumentRun], runtime: Runtime) -> None:
    for artifact in run_artifacts(runs, runtime):
        await recorder.artifact(artifact.key, artifact.markdown, artifact.description)

