"""`tome report RUN`: write the HTML report of a finished run (self-contained, no network).

RUN is a run's ``<name>.summary.json`` (written by `-o DIR`) or a run id as `tome runs` lists it (a unique
prefix, or ``latest``): then the tree is rebuilt from the cache, sending no call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import run_async, run_cli
from pipeline.errors import DocumentError, DocumentNotFoundError


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""
    app.command("report")(report)


def report(
    run: Annotated[
        str,
        typer.Argument(
            help="A run id as `tome runs` lists it (a unique prefix, or 'latest'), or a run's <name>.summary.json "
            "(written by `tome summarise -o DIR`).",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Where to write the HTML.",
            show_default="beside the JSON; for a run id, <document>.summary.html here",
        ),
    ] = None,
) -> None:
    """Write RUN's HTML report: the summary, each sentence traced to its pages, the tree, usage and cost."""
    path = run_cli(lambda: _report(run, output))
    typer.echo(str(path))


def _report(run: str, output: Path | None) -> Path:
    """A JSON file (an existing path, or one named *.json) is rendered as it is; anything else is a run id."""
    if Path(run).is_file() or run.endswith(".json"):
        return write_report(Path(run), output)
    from pipeline.report_runs import run_report

    return run_async(run_report(run, output))


def write_report(run: Path, output: Path | None = None) -> Path:
    """Render ``run`` (a summary JSON) to ``output`` or ``<name>.summary.html`` beside it; returns the path."""
    from pipeline.report import render_report

    if not run.is_file():
        raise DocumentNotFoundError(
            f"{run} does not exist; pass a <name>.summary.json written by `tome summarise -o`."
        )
    try:
        data = json.loads(run.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DocumentError(f"{run} is not a summary JSON file ({type(exc).__name__}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("tree"), list):
        raise DocumentError(f"{run} is not a summary JSON file (no summary tree in it).")
    name = run.name.removesuffix(".json").removesuffix(".summary")
    target = output or run.with_name(f"{name}.summary.html")
    target.write_text(render_report(data), encoding="utf-8")
    return target
