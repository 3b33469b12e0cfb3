"""SIGTERM for tome's commands: an async run is cancelled at the await it waits on, then Terminated is raised.

A signal handler runs between any two bytecodes, also inside a weakref callback or ``__del__`` (a finished task
leaving asyncio's task set), where Python prints an exception as "ignored" and drops it. A handler that raised
there lost the SIGTERM: the run went on to the end and its flow run was recorded Completed. Cancelling the run's
task raises nothing in the handler; the cancellation lands at the run's next await, as asyncio.run does on Ctrl+C.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")
Handler = Callable[[int, FrameType | None], None]

# The handler of the async run this task belongs to (tome's CLI), so a Prefect flow inside it can put it back.
_RUN_HANDLER: ContextVar[Handler | None] = ContextVar("tome_sigterm_handler", default=None)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (a service manager or `kill` stopping tome): unwind like Ctrl+C (runs are marked
    interrupted, answers so far are cached), print one line."""


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    """The handler outside an async run (tome's commands install it)."""
    raise Terminated()


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, where SIGTERM cancels ``main`` at the await it waits on and Terminated is raised
    once it has unwound; a second SIGTERM raises at once."""
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
        _RUN_HANDLER.set(on_sigterm)
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


@contextlib.contextmanager
def run_handler() -> Iterator[None]:
    """Inside a Prefect flow started by tome's CLI: tome's handler instead of Prefect's, which raises wherever it
    runs (and so can be dropped the same way). Elsewhere (a worker's flow run: SIGTERM is Prefect's cancel)
    Prefect's stays."""
    handler = _RUN_HANDLER.get()
    if handler is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
