"""`tome server status|start|stop`: the local Prefect server tome starts in the background on first use."""

from __future__ import annotations

import os
import sys

import typer

from flows.commands.common import run_cli

server_app = typer.Typer(
    help="The local Prefect server tome starts in the background on first use and reuses (status, start, stop). "
    "Not used when PREFECT_API_URL is set or TOME_PREFECT_SERVER=ephemeral.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``server`` command group to ``app``."""
    app.add_typer(server_app, name="server")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _configured_elsewhere() -> str | None:
    url = os.environ.get("PREFECT_API_URL", "").strip()
    return f"PREFECT_API_URL is set ({url}): tome uses that server and starts none of its own." if url else None


@server_app.command("status")
def status() -> None:
    """Whether tome's Prefect server runs, and its UI address. Exit code 0 when it runs, 1 when not."""

    def body() -> int:
        from flows.background_server import ServerFiles, server_status

        files = ServerFiles.of()
        now = server_status(files)
        typer.echo(f"Prefect server: {now.describe()}")
        typer.echo(f"PREFECT_HOME: {files.home} (log: {files.log})")
        if note := _configured_elsewhere():
            typer.echo(note)
        return 0 if now.usable else 1

    code = run_cli(body)
    if code:
        raise typer.Exit(code)


@server_app.command("start")
def start() -> None:
    """Start tome's Prefect server in the background now (tome summarise would on first use); prints its UI."""

    def body() -> None:
        from flows.background_server import ServerFiles, ensure_server
        from pipeline.errors import ConfigError

        if note := _configured_elsewhere():
            raise ConfigError(note + " Unset it to use tome's own server.")
        state = ensure_server(ServerFiles.of(), os.environ, say=_say)
        typer.echo(f"Prefect server running at {state.ui_url} (API {state.api_url}, pid {state.pid}).")

    run_cli(body)


@server_app.command("stop")
def stop() -> None:
    """Stop tome's Prefect server (its run history stays in PREFECT_HOME; the next run starts it again)."""

    def body() -> None:
        from flows.background_server import ServerFiles, is_prefect_server, read_state
        from flows.background_server import stop as stop_server

        files = ServerFiles.of()
        recorded = read_state(files)
        running = recorded is not None and is_prefect_server(recorded.pid)
        stopped = stop_server(files)
        if stopped is not None and running:
            typer.echo(f"Stopped the Prefect server at {stopped.ui_url} (pid {stopped.pid}).")
        else:
            typer.echo("tome's Prefect server was not running.")

    run_cli(body)
