"""`tome summarise FILE...`: the summary on stdout (or files in -o), progress and notices on stderr."""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
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
    existing_files,
    set_password,
    with_run_options,
)
from flows.commands.stdin_input import STDIN, stdin_document
from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.document_runs import DocumentJson, DocumentReport, OutcomeOnly, SummaryWithOutcome
    from pipeline.options import SummariseOptions
    from pipeline.outputs import SummaryJson


def register(app: typer.Typer) -> None:
    """Add the ``summarise`` command to ``app``."""
    app.command("summarise")(summarise)


FILE_SUFFIXES = (".md", ".json", ".txt")  # -o PATH with one of these is a file; anything else is a folder


@with_run_options()
def summarise(
    files: Annotated[
        list[Path],
        typer.Argument(help="Documents: .txt, .md, .pdf, .epub; - reads one from stdin.", show_default=False),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="A .md, .json or .txt PATH is the file to write (one document); any other PATH is a folder "
            "that gets <name>.summary.md, <name>.summary.json and <name>.summary.html (the report).",
            show_default="stdout",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON document on stdout: final summary, sections, usage, run id, tree."
        ),
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="The name of the document read from stdin.", show_default="stdin")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="txt|md|pdf|epub",
            help="The format of the document read from stdin.",
            show_default="sniffed from its first bytes",
        ),
    ] = None,
    run: RunOptions = COMMAND_LINE,
    progress: ProgressOpt = True,
    no_prefect: NoPrefectOpt = False,
) -> None:
    """Summarise documents: the summary on stdout (or files in -o DIR), progress on stderr.

    Examples: tome summarise book.epub > summary.md; cat notes.txt | tome summarise - --name notes;
    tome summarise report.pdf --json | jq .final; tome summarise book.txt -o summary.md

    Exit codes: 0 done, 1 failed, 2 bad input or configuration, 3 a quota is used up (run again later: it resumes).
    """

    def body() -> int:
        options = run.build()
        out_file = output if output is not None and output.suffix.lower() in FILE_SUFFIXES else None
        out_dir = output if out_file is None else None
        if files.count(Path(STDIN)) > 1:
            raise ConfigError("Only one - (stdin) can be given.")
        if (name or fmt) and Path(STDIN) not in files:
            raise ConfigError("--name and --format name the document read from stdin; give - as the file.")
        if out_file is not None and len(files) > 1:
            raise ConfigError(
                f"-o {out_file} is one file, but {len(files)} documents were given; pass a folder instead."
            )
        if out_file is not None and out_file.is_dir():
            raise ConfigError(f"-o {out_file} is a folder; a file of that name cannot be written.")
        existing_files([f for f in files if f != Path(STDIN)])
        # -o must be writable: found now, not after the whole run was paid for.
        check_output_dir(out_dir if out_file is None else out_file.parent)
        set_password(run.password)
        with ExitStack() as stack:
            paths = [
                stack.enter_context(stdin_document(sys.stdin.buffer, name=name, fmt=fmt)) if f == Path(STDIN) else f
                for f in files
            ]
            reports = run_async(
                _run(paths, options, output=out_dir, progress=progress, use_prefect=not no_prefect)
            )
        for f, report in zip(files, reports, strict=True):
            if f == Path(STDIN):  # not the temporary file, gone by now
                report["outcome"]["path"] = STDIN
                if report.get("result"):
                    report["result"]["document"] = STDIN
        return _show(reports, output=out_dir, out_file=out_file, as_json=as_json)

    code = run_cli(body)
    if code:
        raise typer.Exit(code)


async def _run(
    paths: list[Path], options: SummariseOptions, *, output: Path | None, progress: bool, use_prefect: bool
) -> list[DocumentReport]:
    """Outcome reports (dicts with "outcome", "markdown" and "result"); a single document's error is raised."""
    out_dir = str(output) if output else None
    if not use_prefect:
        from flows.outcomes import summarise_direct
        from flows.progress import make_board

        runs, notice = await summarise_direct(
            options, paths, out_dir=output, board=make_board(sys.stderr, enabled=progress), announce=True
        )
        if len(runs) == 1 and runs[0].error is not None:
            raise runs[0].error
        return [r.outcome.report(r.result) for r in runs]
    from flows.prefect_env import connect_prefect, quiet_reported_errors
    from flows.summarise_rest import recorded_batch, recorded_document, records_over_rest

    over_rest = records_over_rest(os.environ)
    # Before importing Prefect: a dead API URL fails in milliseconds; with none, tome's background server.
    api_url = connect_prefect()
    if api_url is not None and over_rest:  # tome's own server: the run recorded without importing Prefect
        if len(paths) == 1:
            return [await recorded_document(api_url, str(paths[0]), out_dir, options, progress=progress)]
        inputs = [str(p) for p in paths]
        return await recorded_batch(api_url, inputs, out_dir, options, progress=progress, with_markdown=True)
    from flows.summarise import reports_of, summarise_batch, summarise_document

    quiet_reported_errors()
    if len(paths) == 1:
        return [await summarise_document(str(paths[0]), out_dir, options, progress)]
    state = await summarise_batch(
        [str(p) for p in paths], out_dir, options, progress=progress, with_markdown=True, return_state=True
    )
    return await reports_of(state)


def json_document(reports: list[DocumentReport]) -> DocumentJson | list[DocumentJson]:
    """What --json prints: one document's result (with its outcome), or a list of them for several."""
    docs = [_document_json(r) for r in reports]
    return docs[0] if len(docs) == 1 else docs


def _document_json(report: DocumentReport) -> DocumentJson:
    result = report.get("result")
    if not result:
        outcome_only: OutcomeOnly = {"outcome": report["outcome"]}
        return outcome_only
    with_outcome: SummaryWithOutcome = {**result, "outcome": report["outcome"]}
    return with_outcome


def plain_text(result: SummaryJson) -> str:
    """A result as plain text (-o summary.txt): the title, the final summary, each section's title and summary."""
    lines = [result["title"], "", result["final"].strip(), ""]
    for section in result["sections"]:
        lines += [section["title"], "", section["text"].strip(), ""]
    return "\n".join(lines).strip() + "\n"


def _write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a summary


def _show(
    reports: list[DocumentReport], *, output: Path | None, out_file: Path | None = None, as_json: bool = False
) -> int:
    """Print summaries (stdout) or where they were written (stderr); the exit code for several documents."""
    from flows.outcomes import Outcome, exit_code_for, outcomes_text

    outcomes = [Outcome(**r["outcome"]) for r in reports]
    if out_file is not None:
        report = reports[0]
        if report.get("result"):
            suffix = out_file.suffix.lower()
            if suffix == ".json":
                text = json.dumps(json_document(reports), ensure_ascii=False, indent=2) + "\n"
            elif suffix == ".txt":
                text = plain_text(report["result"])
            else:
                text = report["markdown"].rstrip() + "\n"
            _write_file(out_file, text)
            typer.echo(f"Wrote {out_file}", err=True)
    elif as_json:
        sys.stdout.write(json.dumps(json_document(reports), ensure_ascii=False, indent=2) + "\n")
        sys.stdout.flush()
    if output is None and out_file is None and not as_json:
        texts = [r["markdown"].rstrip() for r in reports if r.get("markdown")]
        if texts:
            sys.stdout.write("\n\n---\n\n".join(texts) + "\n")
            sys.stdout.flush()
    elif output is not None:
        for o in outcomes:
            if o.outputs:
                typer.echo(f"Wrote {', '.join(o.outputs)}", err=True)
    if len(outcomes) > 1:
        typer.echo(outcomes_text(outcomes), err=True, nl=False)
    return exit_code_for(outcomes)
