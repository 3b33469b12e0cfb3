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
def main() -> None:
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
