"""The `tome` command line: builds the typer app; each command lives in its own module under flows/commands/.

Commands import their heavy dependencies (Prefect, the engine) inside the command body, so `tome plan` and
`tome --help` start fast.
"""

from __future__ import annotations

import typer

from flows.commands import batch, cache, eval, plan, runs, serve, summarise

app = typer.Typer(
    name="tome",
    help="Summarise long documents with LLMs, recursively.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
