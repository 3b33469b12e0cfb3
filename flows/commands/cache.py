"""`tome cache stats|clear|repair|export|import`: what the call cache holds, emptying it, salvaging it."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, TextIO

import typer

from flows.commands.common import run_cli

ModelFilterOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Only this model's answers (or 'extractive').", show_default="all"),
]

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


def _cost_text(costs: dict[str, float]) -> str:
    from flows.progress import money

    return " + ".join(money(v, c) for c, v in sorted(costs.items())) if costs else "nothing"


@cache_app.command("stats")
def stats() -> None:
    """Entries, stored text size, entries per model, tokens a rerun would not spend again."""

    def body() -> None:
        from flows.tables import text_table
        from pipeline.cache_admin import answers_cost, cache_groups
        from pipeline.config import load_catalog
        from pipeline.db import default_database_url, engine_url_for_humans
        from pipeline.store import Store

        store = Store()
        try:
            s = store.cache_stats()
            groups = cache_groups(store)
        finally:
            store.close()
        catalog = load_catalog()
        lines = [
            f"database:      {engine_url_for_humans(default_database_url())}",
            f"entries:       {s.entries:,}",
            f"stored text:   {_size(s.bytes)}",
            f"tokens stored: {s.tokens_stored:,}",
            f"hits:          {s.hits:,} (saved {s.tokens_saved:,} tokens)",
            f"answers cost:  {_cost_text(answers_cost(groups, catalog))}",
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        if groups:
            rows = [
                [g.label, f"{g.entries:,}", _cost_text(answers_cost([g], catalog)) if g.label != "extractive" else "-"]
                for g in groups
            ]
            sys.stdout.write("\n" + text_table(["model", "entries", "cost"], rows, right={1, 2}))

    run_cli(body)


@cache_app.command("clear")
def clear(
    model: ModelFilterOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete cached answers (all, or one model's): asks first, unless --yes. Run records are kept."""

    def body() -> int:
        from pipeline.cache_admin import OFFLINE_PROVIDERS, answers_cost, cache_groups, clear_cache
        from pipeline.config import load_catalog
        from pipeline.errors import ConfigError, DamagedDatabaseError
        from pipeline.store import Store

        catalog = load_catalog()
        try:
            store = Store()
            store.cache_stats()  # a damaged page shows here, before anything is asked
        except DamagedDatabaseError:
            return _clear_damaged(model, yes)
        try:
            groups = cache_groups(store, model=model)
            if model and not groups and model not in catalog.models and model not in OFFLINE_PROVIDERS:
                known = ", ".join([*sorted(catalog.models), *sorted(OFFLINE_PROVIDERS)])
                raise ConfigError(f"Unknown model '{model}'. Known models: {known}.")
            entries = sum(g.entries for g in groups)
            which = f" of {model}" if model else ""
            if not entries:
                typer.echo(f"The cache holds no answers{which}; nothing to delete.", err=True)
                return 0
            cost = _cost_text(answers_cost(groups, catalog))
            question = f"Delete {entries:,} cached answers{which}? They cost {cost} to make."
            if not yes:
                try:
                    confirmed = typer.confirm(question, default=False, err=True)
                except typer.Abort:  # no answer (stdin closed)
                    typer.echo("", err=True)
                    confirmed = False
                if not confirmed:
                    typer.echo("Nothing deleted (pass --yes to delete without asking).", err=True)
                    return 1
            deleted = clear_cache(store, model=model)
        finally:
            store.close()
        typer.echo(f"Deleted {deleted:,} cached answers{which} (they cost {cost} to make).")
        return 0

    code = run_cli(body)
    if code:
        raise typer.Exit(code)


def _clear_damaged(model: str | None, yes: bool) -> int:
    """Clearing a damaged cache: move the file aside (nothing in it can be deleted row by row)."""
    from pipeline.db import default_database_url, sqlite_path
    from pipeline.db_repair import move_aside
    from pipeline.errors import ConfigError

    path = sqlite_path(default_database_url())
    if path is None or model:
        raise ConfigError(
            "The database is damaged; run `tome cache repair` first"
            + (" (one model's answers cannot be picked out of a damaged file)." if model else ".")
        )
    question = f"The database {path} is damaged. Move it aside and start an empty one (its run records too)?"
    if not yes and not _confirm(question):
        typer.echo("Nothing moved (pass --yes, or run `tome cache repair` to keep what is readable).", err=True)
        return 1
    aside = move_aside(path)
    typer.echo(f"Moved the damaged database to {aside}; tome starts an empty one (tome cache repair salvages).")
    return 0


def _confirm(question: str) -> bool:
    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:  # no answer (stdin closed)
        typer.echo("", err=True)
        return False


@cache_app.command("repair")
def repair() -> None:
    """Salvage a damaged SQLite database: copy every readable answer and run into a fresh file (the damaged one
    is kept beside it as <name>.damaged-<time>)."""

    def body() -> None:
        from pipeline.db import default_database_url, sqlite_path
        from pipeline.db_repair import repair_sqlite
        from pipeline.errors import ConfigError

        path = sqlite_path(default_database_url())
        if path is None:
            raise ConfigError("tome cache repair works on SQLite files; repair a PostgreSQL database with its own tools.")
        if not path.is_file():
            raise ConfigError(f"There is no database at {path} to repair.")
        report = repair_sqlite(path)
        if report.unreadable:
            typer.echo(
                f"Nothing in {report.damaged_copy} could be read (it is not a database any more); "
                f"{path} is a fresh, empty database."
            )
            return
        answers = report.salvaged.get("cache", 0)
        runs = report.salvaged.get("runs", 0)
        typer.echo(
            f"Salvaged {answers:,} cached answers and {runs:,} runs into {path}; "
            f"the damaged file is kept at {report.damaged_copy}."
        )

    run_cli(body)


def _write_lines(fh: TextIO, lines: Iterable[str]) -> int:
    return sum(1 for line in lines if fh.write(line + "\n") >= 0)


@cache_app.command("export")
def export(
    path: Annotated[
        Path, typer.Argument(help="JSON Lines file to write; - for stdout.", show_default=True)
    ] = Path("-"),
    model: ModelFilterOpt = None,
) -> None:
    """Write the cache as JSON Lines (answers with their prompts, and recorded context-length rejections)."""

    def body() -> None:
        from pipeline.cache_admin import export_lines
        from pipeline.store import Store

        store = Store()
        try:
            if str(path) == "-":
                n = _write_lines(sys.stdout, export_lines(store, model=model))
            else:
                tmp = path.with_name(f".{path.name}.tmp")  # a reader never sees half an export
                with tmp.open("w", encoding="utf-8") as fh:
                    n = _write_lines(fh, export_lines(store, model=model))
                tmp.replace(path)
        finally:
            store.close()
        typer.echo(f"Exported {n:,} cache records" + ("" if str(path) == "-" else f" to {path}") + ".", err=True)

    run_cli(body)


@cache_app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A file written by `tome cache export`; - for stdin.", show_default=False)],
) -> None:
    """Add the answers of a `tome cache export` file to this cache (answers already here are kept)."""

    def body() -> None:
        from pipeline.cache_admin import import_lines
        from pipeline.errors import DocumentNotFoundError
        from pipeline.store import Store

        if str(path) == "-":
            lines, source = sys.stdin.read().splitlines(), "stdin"
        else:
            if not path.is_file():
                raise DocumentNotFoundError(f"{path}: no such file.")
            lines, source = path.read_text(encoding="utf-8").splitlines(), str(path)
        store = Store()
        try:
            counts = import_lines(store, lines, source=source)
        finally:
            store.close()
        typer.echo(
            f"Imported {counts.added:,} answers ({counts.already:,} were already cached)"
            + (f" and {counts.overflows:,} context-length records" if counts.overflows else "")
            + "."
        )

    run_cli(body)
