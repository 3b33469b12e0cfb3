"""The `tome` command line: builds the typer app; each command lives in its own module under flows/commands/.

Commands import their heavy dependencies (Prefect, the engine) inside the command body, so `tome plan` and
`tome --help` start fast.
"""

from __future__ import annotations

import sys

import typer

from flows.commands import batch, cache, deploy, eval, models, plan, report, runs, serve, server, summarise

app = typer.Typer(
    name="tome",
    help="Summarise long documents with LLMs, recursively.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # On a terminal, rich's panels; in a pipe or a CI log, click's plain help, wrapped at 80 columns (rich
    # would squeeze descriptions into an 18-column cell and cut them).
    rich_markup_mode="rich" if sys.stdout.isatty() else None,
)


@app.callback()
def root() -> None:
    """Summarise long documents (books, reports, PDFs, EPUBs) with LLMs, recursively."""


summarise.register(app)
batch.register(app)
plan.register(app)
serve.register(app)
runs.register(app)
cache.register(app)
eval.register(app)
models.register(app)
deploy.register(app)
report.register(app)
server.register(app)


def main() -> None:
    """The `tome` script: the app, then a quick exit (see :func:`exit_now`)."""
    from pipeline.memory import fix_mmap_threshold

    fix_mmap_threshold()  # a big document's freed blocks go back to the system (pipeline/memory.py)
    try:
        app(prog_name="tome")
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)


def exit_now(code: int | str | None) -> None:
    """Exit as Python would (non-daemon threads joined, exit handlers run: Prefect's drain its queues), but
    without tearing the interpreter down: that alone took ~0.6 s once Prefect and the engine were imported
    (~0.3 s without Prefect) on 2 cores, and nothing is left to do in it."""
    import atexit
    import os
    import threading

    if isinstance(code, str):
        print(code, file=sys.stderr)
    status = code if isinstance(code, int) else 0 if code is None else 1
    # What Python's own exit does, in its order: threading's exit callbacks (thread pools are told to stop)
    # and the join of non-daemon threads, then the atexit handlers.
    shutdown_threads = getattr(threading, "_shutdown", None)
    if callable(shutdown_threads):
        shutdown_threads()
    else:
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`tome ... | head`) or stream: nothing more to say
            status = status or 1
    os._exit(status)
