"""`tome cache stats|clear`: what the call cache holds, and emptying it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from flows.commands.common import run_cli

cache_app = typer.Typer(
    help="The cache of model answers (reruns and resumed runs read it).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the ``cache`` command group to ``app``."""
    app.add_typer(cache_app, name="cache")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


@cache_app.command("stats")
def stats() -> None:
    """Entries, stored text size, entries per model, tokens a rerun would not spend again."""

    def body() -> None:
        from flows.tables import text_table
        from pipeline.db import default_database_url, engine_url_for_humans
        from pipeline.store import Store

        store = Store()
        try:
            s = store.cache_stats()
        finally:
            store.close()
        lines = [
            f"database:      {engine_url_for_humans(default_database_url())}",
            f"entries:       {s.entries:,}",
            f"stored text:   {_size(s.bytes)}",
            f"tokens stored: {s.tokens_stored:,}",
            f"hits:          {s.hits:,} (saved {s.tokens_saved:,} tokens)",
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        if s.by_model:
            rows = [[m, f"{n:,}"] for m, n in sorted(s.by_model.items())]
            sys.stdout.write("\n" + text_table(["model", "entries"], rows, right={1}))

    run_cli(body)


@cache_app.command("clear")
def clear(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model's answers.")] = None,
) -> None:
    """Delete cached answers (all, or one model's). Run records are kept."""

    def body() -> None:
        from pipeline.store import Store

        store = Store()
        try:
            deleted = store.cache_clear(model=model)
        finally:
            store.close()
        which = f" for {model}" if model else ""
        typer.echo(f"Deleted {deleted:,} cached answers{which}.")

    run_cli(body)
