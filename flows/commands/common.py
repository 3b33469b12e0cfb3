"""What every command shares: turning a TomeError into one line on stderr and an exit code."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import TypeVar

import typer

from pipeline.errors import TomeError

T = TypeVar("T")

RAISE_ERRORS_ENV = "TOME_RAISE_ERRORS"
INTERRUPTED_EXIT_CODE = 130


def run_cli(fn: Callable[[], T]) -> T:
    """Run a command's body. A TomeError prints ``Error: <message>`` on stderr (one line, no traceback) and
    exits with the error's ``exit_code``; ``TOME_RAISE_ERRORS=1`` prints the traceback too (same exit code)."""
    try:
        return fn()
    except TomeError as exc:
        if os.environ.get(RAISE_ERRORS_ENV) == "1":
            # The traceback for whoever debugs, and the same exit code scripts rely on.
            traceback.print_exc()
        typer.echo(f"Error: {one_line(exc)}", err=True)
        raise typer.Exit(code=exc.exit_code) from None
    except KeyboardInterrupt:
        if os.environ.get(RAISE_ERRORS_ENV) == "1":
            raise
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(code=INTERRUPTED_EXIT_CODE) from None


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its class name when it has none)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
