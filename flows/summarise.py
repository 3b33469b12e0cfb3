"""tome's Prefect flows: one document, a batch, and a watched folder (for `tome serve`).

Task runs are coarse on purpose: per document "load and plan", then one task per tree level named
"alice.txt · level 0 (42 calls)"; the level's LLM calls fan out inside it with asyncio under the rate
budget. Tasks never retry (retries live in the LLM client) and are not cached by Prefect (our SQLite
cache is the real one). Flows are async: a sync flow costs ~1 s more at exit. Against tome's own background
server, `tome summarise` and `tome batch` record the same runs without importing Prefect (flows/summarise_rest.py).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import cast

from prefect import flow, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Failed

from flows.outcomes import failures_line
from flows.progress import make_board
from flows.published import (
    batch_run_name,
    document_run_name,
    flow_run_line,
    folder_run_name,
    run_artifacts,
)
from flows.sigterm import run_handler
from pipeline.document_runs import DocumentReport, DocumentRun, Outcome, summarise_path, summarise_paths
from pipeline.engine import Node, RunState
from pipeline.inputs import expand_inputs, file_sha256, output_names
from pipeline.options import SummariseOptions
from pipeline.output_files import is_current, output_paths
from pipeline.runtime import Runtime, build_runtime

log = logging.getLogger("tome.flows")


@task(name="load-and-plan", retries=0, cache_policy=NO_CACHE, persist_result=False)
async def load_and_plan(prepare: Callable[[], RunState]) -> RunState:
    """Read the document, chunk and plan it, record the run (in a thread: a big PDF takes seconds)."""
    return await asyncio.to_thread(prepare)


@task(name="summarise-level", retries=0, cache_policy=NO_CACHE, persist_result=False)
async def summarise_level(run_level: Callable[[], Awaitable[list[Node]]]) -> list[Node]:
    """One tree level: its calls run concurrently inside this task, under the shared rate budget."""
    return await run_level()


class PrefectSteps:
    """Runs the engine's steps as Prefect task runs named after the document and level."""

    async def prepare(self, label: str, fn: Callable[[], RunState]) -> RunState:
        return await load_and_plan.with_options(task_run_name=label)(fn)

    async def level(self, label: str, fn: Callable[[], Awaitable[list[Node]]]) -> list[Node]:
        return await summarise_level.with_options(task_run_name=label)(fn)


def _runtime(
    options: SummariseOptions,
    progress: bool,
    *,
    announce: bool = True,
    spend_scope: str | None = None,
    claims: bool | None = None,
) -> Runtime:
    runtime = build_runtime(
        options, board=make_board(sys.stderr, enabled=progress), spend_scope=spend_scope, claims=claims
    )
    if announce:
        print(runtime.notice, file=sys.stderr, flush=True)
        announce_flow_run()
    log.info("%s", runtime.notice)
    return runtime


def announce_flow_run() -> None:
    """Print the flow run's id and UI address on stderr, so a user can open it (or find it with `prefect`)."""
    import os

    from prefect.runtime import flow_run

    ui_url = flow_run.ui_url if os.environ.get("PREFECT_API_URL") else None
    line = flow_run_line(flow_run.id, flow_run.name, ui_url)
    if line:
        print(line, file=sys.stderr, flush=True)


async def _publish(runs: Sequence[DocumentRun], runtime: Runtime) -> None:
    """Markdown artifacts: each summary, and one usage and cost table. They never fail the run."""
    try:
        for artifact in run_artifacts(runs, runtime):
            await acreate_markdown_artifact(
                key=artifact.key, markdown=artifact.markdown, description=artifact.description
            )
    except Exception as exc:  # noqa: BLE001 - artifacts are a view; a failed upload must not fail the summary
        log.warning("Could not publish Prefect artifacts: %s", exc)


def _document_run_name() -> str:
    from prefect.runtime import flow_run

    return document_run_name(flow_run.parameters)


def _batch_run_name() -> str:
    from prefect.runtime import flow_run

    return batch_run_name(flow_run.parameters)


def _folder_run_name() -> str:
    from prefect.runtime import flow_run

    return folder_run_name(flow_run.parameters)


def _report(run: DocumentRun, *, with_markdown: bool) -> DocumentReport:
    return run.outcome.report(run.result if with_markdown else None)


def _ended(runs: Sequence[DocumentRun], reports: list[DocumentReport]) -> list[DocumentReport] | State:
    """The reports, in a Failed state naming the failed documents when any failed (the UI shows the run red)."""
    line = failures_line([r.outcome for r in runs])
    return reports if line is None else Failed(message=line, data=reports)


async def reports_of(state: State) -> list[DocumentReport]:
    """A batch or folder run's reports, whether it Completed or Failed for its documents; its error re-raised."""
    result = state.result(raise_on_failure=False)
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, BaseException):
        raise result
    return cast(list[DocumentReport], result)


@flow(name="summarise-document", flow_run_name=_document_run_name, retries=0, persist_result=False, log_prints=False)
async def summarise_document(
    path: str,
    output_dir: str | None = None,
    options: SummariseOptions | None = None,
    progress: bool = True,
    spend_scope: str | None = None,
    claims: bool | None = None,
) -> DocumentReport:
    """Summarise one document; raises its TomeError (the flow run fails) so the CLI can exit with its code.

    On a work pool (flows/distributed.py) ``spend_scope`` is the batch's id, so ``--max-cost`` caps the whole
    batch, and ``claims`` is on, so the batch can tell when this run's worker is lost.
    """
    runtime = _runtime(options or SummariseOptions(), progress, spend_scope=spend_scope, claims=claims)
    try:
        with run_handler():  # started by tome's CLI: SIGTERM cancels at an await (flows/sigterm.py)
            run = await summarise_path(
                runtime, Path(path), out_dir=Path(output_dir) if output_dir else None, steps=PrefectSteps()
            )
            runtime.board.close()  # the live display ends before the artifacts upload
            await _publish([run], runtime)
    finally:
        runtime.board.close()
        await runtime.aclose()
    if run.error is not None:
        raise run.error
    return _report(run, with_markdown=True)


@flow(name="summarise-batch", flow_run_name=_batch_run_name, retries=0, persist_result=False, log_prints=False)
async def summarise_batch(
    inputs: list[str],
    output_dir: str | None = None,
    options: SummariseOptions | None = None,
    pattern: str = "*",
    progress: bool = True,
    with_markdown: bool = False,
) -> list[DocumentReport] | State:
    """Summarise files, folders (matched with ``pattern``) or globs concurrently under ONE rate budget.

    A document that fails does not stop the others; each report carries its outcome (and, on request,
    its markdown), and the run ends Failed naming them (``reports_of`` reads it). The usage table is
    published as an artifact.
    """
    out = Path(output_dir) if output_dir else None
    paths = expand_inputs(inputs, pattern, exclude=out)
    runtime = _runtime(options or SummariseOptions(), progress)
    try:
        with run_handler():
            runs = await summarise_paths(runtime, paths, out_dir=out, steps=PrefectSteps())
            runtime.board.close()  # the live display ends before the artifacts upload
            await _publish(runs, runtime)
    finally:
        runtime.board.close()
        await runtime.aclose()
    return _ended(runs, [_report(r, with_markdown=with_markdown) for r in runs])


@flow(name="summarise-folder", flow_run_name=_folder_run_name, retries=0, persist_result=False, log_prints=False)
async def summarise_folder(
    input_dir: str,
    output_dir: str,
    options: SummariseOptions | None = None,
    pattern: str = "*",
) -> list[DocumentReport] | State:
    """Summarise the documents in ``input_dir`` that are new or changed since their summary was written.

    What is done is tracked by content: ``<name>.summary.json`` records the source's sha256 and the options,
    so an unchanged file is skipped and an edited one is summarised again.
    """
    from flows.prefect_env import quiet_reported_errors

    quiet_reported_errors()  # this may be a fresh process the served deployment started
    options = options or SummariseOptions()
    out = Path(output_dir)
    paths = expand_inputs([input_dir], pattern, exclude=out)
    names = output_names(paths)
    todo = [p for p in paths if not is_current(out, names[p], source_sha256=file_sha256(p), options=options)]
    new = sum(not output_paths(out, names[p])[1].is_file() for p in todo)
    skipped = [Outcome(name=names[p], path=str(p), status="skipped") for p in paths if p not in todo]
    runs: list[DocumentRun] = []
    if todo:
        # Quiet: a served deployment logs one line per run (below), not progress or notices.
        runtime = _runtime(options, progress=False, announce=False)
        try:
            runs = await summarise_paths(runtime, todo, out_dir=out, steps=PrefectSteps(), names=names)
            await _publish(runs, runtime)
        finally:
            runtime.board.close()
            await runtime.aclose()
    print(folder_run_line(input_dir, new=new, changed=len(todo) - new, unchanged=len(skipped), runs=runs),
          file=sys.stderr, flush=True)  # fmt: skip
    return _ended(runs, [_report(r, with_markdown=False) for r in runs] + [o.report() for o in skipped])


def folder_run_line(input_dir: str, *, new: int, changed: int, unchanged: int, runs: Sequence[DocumentRun]) -> str:
    """One line per served run: "inbox: 3 new, 1 changed, 12 unchanged" (+ failures, each with its document)."""
    from datetime import datetime

    failed = [r.outcome for r in runs if r.outcome.status != "done"]
    text = f"{datetime.now().strftime('%Y-%m-%d %H:%M:%S')} {Path(input_dir).name}: {new} new, "
    text += (f"{changed} changed, " if changed else "") + f"{unchanged} unchanged"
    if failed:
        text += f", {len(failed)} failed (" + "; ".join(f"{o.name}: {o.error}" for o in failed) + ")"
    return text
