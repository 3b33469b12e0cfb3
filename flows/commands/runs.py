"""`tome runs`: the run history from tome's database — document, status, calls, tokens, cost, time."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import run_cli

runs_app = typer.Typer(help="The run history, newest first: document, status, calls, tokens, cost, time.")


def register(app: typer.Typer) -> None:
    """Add the ``runs`` command group to ``app`` (``tome runs`` lists, ``tome runs show RUN`` inspects)."""
    app.add_typer(runs_app, name="runs")


def _seconds(started: str, finished: str | None) -> str:
    if not finished:
        return "-"
    try:
        delta = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    except ValueError:
        return "-"
    from flows.progress import duration

    return duration(delta.total_seconds())


@runs_app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many recent runs.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """The run history, newest first: document, status, run id, calls, cached, tokens, cost, time, model.

    `tome runs show RUN` shows one run's settings and tree, `--call L.I` one call's prompt and answer.
    """
    if ctx.invoked_subcommand is not None:
        return

    def body() -> None:
        from flows.progress import money
        from flows.tables import text_table
        from pipeline.config import load_catalog
        from pipeline.store import Store

        store = Store()
        try:
            records = store.list_runs(limit)
        finally:
            store.close()
        if as_json:
            for r in records:
                sys.stdout.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
            return
        if not records:
            typer.echo("No runs yet. Summarise something: tome summarise FILE", err=True)
            return
        catalog = load_catalog()
        rows = []
        for r in records:
            offline = r.settings.get("backend") == "extractive"
            model = "extractive" if offline else r.settings.get("model", "")
            currency = None if offline else catalog.models[model].currency if model in catalog.models else "USD"
            rows.append(
                [
                    r.started_at[:19].replace("T", " "),
                    Path(r.document).name,
                    r.status,
                    r.id[:8],
                    f"{r.calls:,}",
                    f"{r.cached_calls:,}",
                    f"{r.prompt_tokens:,}",
                    f"{r.completion_tokens:,}",
                    money(r.cost, currency),
                    _seconds(r.started_at, r.finished_at),
                    model,
                ]
            )
        head = ["started (UTC)", "document", "status", "run", "calls", "cached", "tokens in", "tokens out", "cost",
                "time", "model"]  # fmt: skip
        sys.stdout.write(text_table(head, rows, right={4, 5, 6, 7, 8, 9}))

    run_cli(body)


@runs_app.command("show")
def show(
    run: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough) or 'latest'.", show_default=False)],
    call: Annotated[
        str | None,
        typer.Option(
            "--call", metavar="L.I", help="Print the exact prompt and answer of call I of level L, from the cache.",
            show_default="the whole tree",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The run and its calls as one JSON document.")] = False,
) -> None:
    """One run: its settings, then the tree level by level, each call's prompt version, tokens, cost, cached."""

    def body() -> None:
        from flows.commands.run_view import render_call, render_run, run_json
        from pipeline.run_calls import find_run, read_calls
        from pipeline.store import Store

        store = Store()
        try:
            record = find_run(store, run)
            calls = read_calls(store, record.id)
            if call is not None:
                sys.stdout.write(render_call(store, record, calls, call, as_json=as_json))
            elif as_json:
                sys.stdout.write(json.dumps(run_json(record, calls), ensure_ascii=False, indent=2) + "\n")
            else:
                sys.stdout.write(render_run(record, calls))
        finally:
            store.close()

    run_cli(body)
