"""`tome batch DIR`: every matching document in a folder, concurrently under one rate budget; a table at the end."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.commands.common import run_async, run_cli
from flows.commands.run_options import (
    COMMAND_LINE,
    NoPrefectOpt,
    ProgressOpt,
    RunOptions,
    check_output_dir,
    set_password,
    with_run_options,
)
from pipeline.errors import DocumentNotFoundError

if TYPE_CHECKING:
    from pipeline.document_runs import DocumentReport
    from pipeline.options import SummariseOptions


def register(app: typer.Typer) -> None:
    """Add the ``batch`` command to ``app``."""
    app.command("batch")(batch)


def default_output(folder: Path) -> Path:
    """Where summaries go when -o is not given: a ``summaries`` folder inside the input folder."""
    return folder / "summaries"


@with_run_options()
def batch(
    folder: Annotated[Path, typer.Argument(help="Folder of documents.", show_default=False)],
    glob: Annotated[
        str, typer.Option("--glob", "-g", help="Which files in the folder, e.g. '*.txt' or '**/*.pdf'.")
    ] = "*",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output folder.", show_default="DIR/summaries"),
    ] = None,
    run: RunOptions = COMMAND_LINE,
    progress: ProgressOpt = True,
    no_prefect: NoPrefectOpt = False,
) -> None:
    """Summarise every matching document of a folder under one rate budget; a table at the end.

    One failed document does not stop the others. Exit codes: 0 all done, 1 some failed, 3 a quota ran out
    (run again later: it resumes).
    """

    def body() -> int:
        options = run.build()
        if not folder.is_dir():
            raise DocumentNotFoundError(f"{folder}: no such folder.")
        from flows.outcomes import expand_inputs

        out_dir = output or default_output(folder)
        check_output_dir(out_dir)
        if not expand_inputs([str(folder)], glob, exclude=out_dir):
            raise DocumentNotFoundError(f"No documents in {folder} match '{glob}'.")
        set_password(run.password)
        reports = run_async(
            _run(folder, glob, out_dir, options, progress=progress, use_prefect=not no_prefect)
        )
        return _show(reports)

    code = run_cli(body)
    if code:
        raise typer.Exit(code)


async def _run(
    folder: Path, glob: str, out_dir: Path, options: SummariseOptions, *, progress: bool, use_prefect: bool
) -> list[DocumentReport]:
    if not use_prefect:
        from flows.outcomes import expand_inputs, summarise_direct
        from flows.progress import make_board

        paths = expand_inputs([str(folder)], glob, exclude=out_dir)
        runs, _ = await summarise_direct(
            options, paths, out_dir=out_dir, board=make_board(sys.stderr, enabled=progress), announce=True
        )
        return [r.outcome.report() for r in runs]
    from flows.prefect_env import connect_prefect, quiet_reported_errors
    from flows.summarise_rest import recorded_batch, records_over_rest

    over_rest = records_over_rest(os.environ)
    # Before importing Prefect: a dead API URL fails in milliseconds; with none, tome's background server.
    api_url = connect_prefect()
    if api_url is not None and over_rest:  # tome's own server: the run recorded without importing Prefect
        return await recorded_batch(api_url, [str(folder)], str(out_dir), options, pattern=glob, progress=progress)
    from flows.summarise import reports_of, summarise_batch

    quiet_reported_errors()
    state = await summarise_batch([str(folder)], str(out_dir), options, pattern=glob, progress=progress, return_state=True)
    return await reports_of(state)


def _show(reports: list[DocumentReport]) -> int:
    from flows.outcomes import Outcome, exit_code_for, outcomes_text

    outcomes = [Outcome(**r["outcome"]) for r in reports]
    sys.stdout.write(outcomes_text(outcomes))
    sys.stdout.flush()
    return exit_code_for(outcomes)
