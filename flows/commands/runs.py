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


def register(app: typer.Typer) -> None:
    """Add the ``runs`` command to ``app``."""
    app.command("runs")(runs)


def _seconds(started: str, finished: str | None) -> str:
    if not finished:
        return "-"
    try:
        delta = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    except ValueError:
        return "-"
    from flows.progress import duration

    return duration(delta.total_seconds())


def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many recent runs.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """The run history, newest first: document, status, calls, tokens, cost, time."""

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
                    f"{r.calls} ({r.cached_calls})",
                    f"{r.prompt_tokens:,}",
                    f"{r.completion_tokens:,}",
                    money(r.cost, currency),
                    _seconds(r.started_at, r.finished_at),
                    model,
                ]
            )
        head = ["started (UTC)", "document", "status", "calls (cached)", "tokens in", "tokens out", "cost", "time",
                "model"]  # fmt: skip
        sys.stdout.write(text_table(head, rows, right={3, 4, 5, 6, 7}))

    run_cli(body)
