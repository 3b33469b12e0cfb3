"""`tome summarise FILE...`: the summary on stdout (or files in -o), progress and notices on stderr."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.commands.common import run_cli
from flows.commands.run_options import (
    BackendOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    ContextOpt,
    EncodingOpt,
    LanguageOpt,
    LengthOpt,
    MaxCostOpt,
    ModelOpt,
    NoPrefectOpt,
    PasswordOpt,
    ProgressOpt,
    RpmOpt,
    ServerExtractOpt,
    TierOpt,
    TpdOpt,
    TpmOpt,
    build_options,
    check_output_dir,
    existing_files,
    set_password,
)


def register(app: typer.Typer) -> None:
    """Add the ``summarise`` command to ``app``."""
    app.command("summarise")(summarise)


def summarise(
    files: Annotated[
        list[Path], typer.Argument(help="Documents: .txt, .md, .pdf, .epub.", show_default=False)
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write <name>.summary.md and <name>.summary.json into this folder.",
            show_default="stdout",
        ),
    ] = None,
    model: ModelOpt = None,
    length: LengthOpt = None,
    language: LanguageOpt = None,
    backend: BackendOpt = "auto",
    base_url: BaseUrlOpt = None,
    tier: TierOpt = None,
    concurrency: ConcurrencyOpt = None,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    tpd: TpdOpt = None,
    context: ContextOpt = None,
    password: PasswordOpt = None,
    server_extract: ServerExtractOpt = False,
    encoding: EncodingOpt = None,
    max_cost: MaxCostOpt = None,
    progress: ProgressOpt = True,
    no_prefect: NoPrefectOpt = False,
) -> None:
    """Summarise documents: the summary on stdout (or files in -o DIR), progress on stderr.

    Exit codes: 0 done, 1 failed, 2 bad input or configuration, 3 a quota is used up (run again later: it resumes).
    """

    def body() -> int:
        options = build_options(
            backend=backend, model=model, length=length, language=language, tier=tier, base_url=base_url,
            concurrency=concurrency, rpm=rpm, tpm=tpm, tpd=tpd, context=context, server_extract=server_extract,
            encoding=encoding,
            max_cost=max_cost,
        )  # fmt: skip
        paths = existing_files(files)
        check_output_dir(output)
        set_password(password)
        reports = asyncio.run(
            _run(paths, options, output=output, progress=progress, use_prefect=not no_prefect)
        )
        return _show(reports, output=output)

    code = run_cli(body)
    if code:
        raise typer.Exit(code)


async def _run(
    paths: list[Path], options: Any, *, output: Path | None, progress: bool, use_prefect: bool
) -> list:
    """Outcome reports (dicts with "outcome" and "markdown"); a single document's error is raised."""
    out_dir = str(output) if output else None
    if not use_prefect:
        from flows.outcomes import summarise_direct
        from flows.progress import make_board

        runs, notice = await summarise_direct(
            options, paths, out_dir=output, board=make_board(sys.stderr, enabled=progress), announce=True
        )
        if len(runs) == 1 and runs[0].error is not None:
            raise runs[0].error
        return [
            {"outcome": r.outcome.to_dict(), **({"markdown": r.result.to_markdown()} if r.result else {})}
            for r in runs
        ]
    from flows.prefect_env import check_prefect_api, quiet_reported_errors

    check_prefect_api()  # before importing Prefect: a dead API URL fails in milliseconds
    from flows.summarise import summarise_batch, summarise_document

    quiet_reported_errors()
    if len(paths) == 1:
        return [await summarise_document(str(paths[0]), out_dir, options, progress)]
    return await summarise_batch(
        [str(p) for p in paths], out_dir, options, progress=progress, with_markdown=True
    )


def _show(reports: list[dict[str, Any]], *, output: Path | None) -> int:
    """Print summaries (stdout) or where they were written (stderr); the exit code for several documents."""
    from flows.outcomes import Outcome, exit_code_for, outcomes_text

    outcomes = [Outcome(**r["outcome"]) for r in reports]
    if output is None:
        texts = [r["markdown"].rstrip() for r in reports if r.get("markdown")]
        if texts:
            sys.stdout.write("\n\n---\n\n".join(texts) + "\n")
            sys.stdout.flush()
    else:
        for o in outcomes:
            if o.outputs:
                typer.echo(f"Wrote {', '.join(o.outputs)}", err=True)
    if len(outcomes) > 1:
        typer.echo(outcomes_text(outcomes), err=True, nl=False)
    return exit_code_for(outcomes)
