"""`tome plan FILE`: what a run would do — chunks, the recursion tree, tokens, cost, least wall time — no calls."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.commands.common import run_cli
from flows.commands.run_options import (
    BackendOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    ContextOpt,
    EncodingOpt,
    LanguageOpt,
    LengthOpt,
    ModelOpt,
    PasswordOpt,
    RpmOpt,
    TierOpt,
    TpdOpt,
    TpmOpt,
    build_options,
)

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.options import SummariseOptions
    from pipeline.planning import Plan


def register(app: typer.Typer) -> None:
    """Add the ``plan`` command to ``app``."""
    app.command("plan")(plan)


def plan(
    file: Annotated[Path, typer.Argument(help="The document: .txt, .md, .pdf or .epub.", show_default=False)],
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    base_url: BaseUrlOpt = None,
    tier: TierOpt = None,
    concurrency: ConcurrencyOpt = None,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    tpd: TpdOpt = None,
    length: LengthOpt = None,
    language: LanguageOpt = None,
    context: ContextOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Every chunk and the whole tree as JSON.")] = False,
    password: PasswordOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Show how FILE would be chunked and summarised, what it would cost and how long it must take.

    Takes the provider options `summarise` takes; a local server (--backend local) is asked for its window.
    """

    def body() -> Plan:
        options = build_options(
            backend=backend, model=model, length=length, language=language, tier=tier, base_url=base_url,
            concurrency=concurrency, rpm=rpm, tpm=tpm, tpd=tpd, context=context, require_key=False,
        )  # fmt: skip
        return make_plan(file, options, password=password, encoding=encoding)

    result = run_cli(body)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        from rich.console import Console

        render_plan(result, Console(highlight=False))


def make_plan(
    file: Path, options: SummariseOptions, *, password: str | None = None, encoding: str | None = None
) -> Plan:
    """Resolve settings (before reading the file, so config mistakes show first), load, chunk and plan."""
    from pipeline.documents import load_document
    from pipeline.documents.text import check_encoding
    from pipeline.planning import plan_document
    from pipeline.prompt_room import chunk_room

    if encoding:
        check_encoding(encoding)  # an unknown codec is a usage error, before reading anything
    catalog = options.catalog()
    settings = options.settings(catalog)
    spec = catalog.model(settings.model)
    limits = options.limits(settings, catalog)
    chunk_room(spec, settings)  # a model too small for any chunk is a config error, before reading the file
    doc = load_document(file, password=password, encoding=encoding)
    return plan_document(doc, spec, settings, limits)


def render_plan(plan: Plan, console: Console) -> None:
    """The readable report: document, budget derivation, chunks, levels, totals, least wall time."""
    from rich.table import Table

    doc, budget, model, settings = plan.document, plan.budget, plan.model, plan.settings
    console.print(f"[bold]Plan for {doc.path}[/bold]")
    about = Table(show_header=False, box=None, pad_edge=False)
    about.add_column(style="dim")
    about.add_column()
    about.add_row("title", doc.title)
    about.add_row("format", f"{doc.source_format}, language {doc.language}")
    about.add_row("characters", f"{len(doc.text):,}")
    about.add_row("sections found", f"{len(doc.sections):,}")
    if doc.pages:
        about.add_row("pages", f"{len(doc.pages):,}")
    about.add_row("model", f"{model.name} ({model.context_tokens:,}-token context), tier {settings.tier}")
    about.add_row("summary", f"{settings.target_tokens:,} tokens, context {settings.context_strategy}")
    console.print(about)

    console.print("\n[bold]Chunk budget[/bold] (provider tokens)")
    derivation = (
        f"  {budget.context_tokens:,} context\n"
        f"  − {budget.prompt_overhead_tokens:,} prompt overhead − {budget.max_output_tokens:,} output"
        f" − {budget.safety_margin_tokens:,} safety margin = {budget.available_tokens:,} available\n"
    )
    if budget.carried_context_tokens:
        derivation += (
            f"  − {budget.carried_context_tokens:,} carried context (≤ {budget.context_share:.0%})"
            f" = {budget.input_tokens:,} input tokens per chunk\n"
        )
    else:
        derivation += f"  = {budget.input_tokens:,} input tokens per chunk (no carried context)\n"
    derivation += (
        f"  ÷ {budget.calibration:g} calibration = {budget.max_local_tokens:,} local {model.encoding} tokens"
    )
    console.print(derivation, markup=False)

    sizes = [c.token_count for c in plan.chunks]
    spanning = sum(1 for c in plan.chunks if " … " in c.section_title)
    console.print(
        f"\n[bold]Chunks[/bold]: {len(sizes):,}  (local tokens min {min(sizes):,}, median "
        f"{int(statistics.median(sizes)):,}, max {max(sizes):,}; {spanning:,} span several sections)"
    )

    levels = Table(title=None, show_lines=False)
    for name in ("level", "calls", "input/call (max)", "output/call", "prompt tokens", "output tokens (max)"):
        levels.add_column(name, justify="right")
    for level in plan.levels:
        levels.add_row(
            str(level.level),
            f"{len(level.calls):,}",
            f"{max(c.input_tokens for c in level.calls):,}",
            f"{level.output_tokens:,}",
            f"{level.est_prompt_tokens:,}",
            f"{level.est_completion_tokens:,}",
        )
    levels.add_row(
        "total",
        f"{plan.total_calls:,}",
        "",
        "",
        f"{plan.est_prompt_tokens:,}",
        f"{plan.est_completion_tokens:,}",
        style="bold",
    )
    console.print()
    console.print(levels)

    limits = plan.limits
    shown = ", ".join(
        f"{name} {value:,}" if value else f"{name} unlimited"
        for name, value in (
            ("concurrency", limits.concurrency),
            ("rpm", limits.rpm),
            ("tpm", limits.tpm),
            ("tpd", limits.tpd),
        )
    )
    console.print(
        f"[bold]Cost[/bold]: at most {plan.est_cost:,.4f} {model.currency} "
        f"(input {model.price_input:g}, output {model.price_output:g} {model.currency} per 1M tokens)"
    )
    if plan.wall_time:
        console.print(f"[bold]Least wall time[/bold]: {plan.wall_time.describe()}  [dim]({shown})[/dim]")
