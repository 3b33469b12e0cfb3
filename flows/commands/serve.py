"""`tome serve`: a Prefect deployment that summarises new or changed documents of a folder, on a schedule
or when triggered (`prefect deployment run 'summarise-folder/<name>'`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from flows.commands.common import run_cli
from flows.commands.run_options import (
    COMMAND_LINE,
    RunOptions,
    set_password,
    with_run_options,
)
from pipeline.errors import ConfigError, DocumentNotFoundError

FLOW_NAME = "summarise-folder"


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""
    app.command("serve")(serve)


@with_run_options()
def serve(
    input_dir: Annotated[Path, typer.Option("--input", "-i", help="Folder to watch.", show_default=False)],
    output_dir: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the summaries.", show_default=False)
    ],
    cron: Annotated[str | None, typer.Option(help="Cron schedule, e.g. '0 * * * *' (hourly).", show_default="none")] = None,
    interval: Annotated[float | None, typer.Option(help="Run every N seconds.", min=1, show_default="none: only when triggered")] = None,
    name: Annotated[str, typer.Option(help="Deployment name: summarise-folder/<name>.")] = "tome",
    glob: Annotated[str, typer.Option("--glob", "-g", help="Which files of the folder.")] = "*",
    run: RunOptions = COMMAND_LINE,
) -> None:
    """Summarise new or changed documents of a folder as a Prefect deployment: on a schedule, or triggered.

    Runs until interrupted (Ctrl+C or SIGTERM). Without --cron/--interval it runs only when triggered. Each run
    logs one line: "inbox: 3 new, 1 changed, 12 unchanged".

    Uses PREFECT_API_URL when set, else tome's background Prefect server (`tome server status`), so that
    schedules, triggers (`prefect deployment run` with that PREFECT_API_URL) and the UI share it.
    """

    def body() -> None:
        if cron and interval:
            raise ConfigError("Pass --cron or --interval, not both.")
        options = run.build()
        if not input_dir.is_dir():
            raise DocumentNotFoundError(f"{input_dir}: no such folder.")
        output_dir.mkdir(parents=True, exist_ok=True)
        set_password(run.password)
        from flows.prefect_env import connect_prefect, quiet_reported_errors

        configured = bool(os.environ.get("PREFECT_API_URL", "").strip())
        connect_prefect()  # the user's PREFECT_API_URL, else tome's background server (unless opted out)
        if not os.environ.get("PREFECT_API_URL"):
            typer.echo(
                "Note: with TOME_PREFECT_SERVER=ephemeral this runs its own temporary Prefect server; other "
                "processes cannot trigger it. Unset it (tome's background server) or set PREFECT_API_URL for that.",
                err=True,
            )
        from prefect.types.entrypoint import EntrypointType

        from flows.summarise import summarise_folder

        quiet_reported_errors()
        when = f"every {interval:g} s" if interval else f"on cron '{cron}'" if cron else "when triggered"
        typer.echo(
            f"Serving {FLOW_NAME}/{name}: {input_dir} -> {output_dir}, {when}. "
            f"Trigger: {'' if configured else _api_prefix()}prefect deployment run '{FLOW_NAME}/{name}'. "
            "Stop with Ctrl+C.",
            err=True,
        )
        summarise_folder.serve(
            name=name,
            interval=interval,
            cron=cron,
            parameters={
                "input_dir": str(input_dir.resolve()),
                "output_dir": str(output_dir.resolve()),
                "options": options.model_dump(exclude_none=True),
                "pattern": glob,
            },
            description=f"Summarise new or changed documents in {input_dir.resolve()}",
            tags=["tome"],
            limit=1,  # one run at a time: two overlapping runs would summarise the same new files
            print_starting_message=False,
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        # Prefect's runner stops gracefully on SIGTERM (in-flight runs cancelled, their answers cached).
        typer.echo(f"Stopped serving {FLOW_NAME}/{name}.", err=True)

    run_cli(body)


def _api_prefix() -> str:
    """``PREFECT_API_URL=... `` for a trigger command when tome chose the server (its background one)."""
    url = os.environ.get("PREFECT_API_URL", "")
    return f"PREFECT_API_URL={url} " if url else ""
