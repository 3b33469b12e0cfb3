"""What every command shares: turning a TomeError into one line on stderr and an exit code."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import traceback
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

import typer

from pipeline.errors import TomeError

T = TypeVar("T")

RAISE_ERRORS_ENV = "TOME_RAISE_ERRORS"
INTERRUPTED_EXIT_CODE = 130
TERMINATED_EXIT_CODE = 143  # 128 + SIGTERM, as shells report it


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (a service manager or `kill` stopping tome): unwind like Ctrl+C (runs are marked
    interrupted, answers so far are cached), print one line."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, where SIGTERM cancels ``main`` at the await it waits on (as asyncio.run does on
    Ctrl+C), and Terminated is raised once it has unwound; a second SIGTERM raises at once.

    Why not raise from the handler: a signal handler runs between any two bytecodes, also inside a weakref
    callback or ``__del__`` (a finished task leaving asyncio's task set), where Python prints the exception as
    "ignored" and drops it: the SIGTERM is lost and the run goes on to the end.
    """
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(main)
    terminated = False

    async def guarded() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            nonlocal terminated
            if terminated or task is None or task.done():
                raise Terminated()
            terminated = True
            task.cancel()  # raises nothing here: it lands at main's next await
            loop.call_soon_threadsafe(lambda: None)  # wake the loop if it sleeps in select()

        previous = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            result = await main
        finally:
            signal.signal(signal.SIGTERM, previous)
        if terminated:  # the cancellation was absorbed somewhere: the run still stops here
            raise Terminated()
        return result

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if terminated:
            raise Terminated() from None
        raise


def _is_termination(exc: BaseException) -> bool:
    # Prefect installs its own SIGTERM handler while a flow runs; it raises prefect's TerminationSignal.
    return isinstance(exc, Terminated) or any(c.__name__ == "TerminationSignal" for c in type(exc).__mro__)


def run_cli(fn: Callable[[], T]) -> T:
    """Run a command's body. A TomeError prints ``Error: <message>`` on stderr (one line, no traceback) and
    exits with the error's ``exit_code``; ``TOME_RAISE_ERRORS=1`` prints the traceback too (same exit code)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
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
