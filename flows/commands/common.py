"""What every command shares: turning a TomeError into one line on stderr and an exit code."""

from __future__ import annotations

import os
import signal
import threading
import traceback
from collections.abc import Callable
from typing import TypeVar

import typer

from flows.sigterm import Terminated as Terminated  # tome's commands and their tests name it here
from flows.sigterm import raise_terminated
from flows.sigterm import run_async as run_async
from pipeline.errors import TomeError

T = TypeVar("T")

RAISE_ERRORS_ENV = "TOME_RAISE_ERRORS"
INTERRUPTED_EXIT_CODE = 130
TERMINATED_EXIT_CODE = 143  # 128 + SIGTERM, as shells report it


def _is_termination(exc: BaseException) -> bool:
    # Prefect installs its own SIGTERM handler while a flow runs; it raises prefect's TerminationSignal.
    return isinstance(exc, Terminated) or any(c.__name__ == "TerminationSignal" for c in type(exc).__mro__)


def run_cli(fn: Callable[[], T]) -> T:
    """Run a command's body. A TomeError prints ``Error: <message>`` on stderr (one line, no traceback) and
    exits with the error's ``exit_code``; ``TOME_RAISE_ERRORS=1`` prints the traceback too (same exit code)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return fn()
    except TomeError as exc:
        if os.environ.get(RAISE_ERRORS_ENV) == "1":
            # The traceback for whoever debugs, and the same exit code scripts rely on.
            traceback.print_exc()
        typer.echo(f"Error: {one_line(exc)}", err=True)
        raise typer.Exit(code=exc.exit_code) from None
    except BaseException as exc:
        if not isinstance(exc, KeyboardInterrupt) and not _is_termination(exc):
            raise
        if os.environ.get(RAISE_ERRORS_ENV) == "1":
            raise
        if _is_termination(exc):
            typer.echo(
                "Stopped (SIGTERM). Answers received so far are cached: the same command resumes from them.",
                err=True,
            )
            raise typer.Exit(code=TERMINATED_EXIT_CODE) from None
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(code=INTERRUPTED_EXIT_CODE) from None


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its class name when it has none)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
