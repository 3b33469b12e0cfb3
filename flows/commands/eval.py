"""`tome eval DATASET.jsonl`: ROUGE against human references, beside the lead and TextRank baselines.

Runs as the Prefect flow "evaluate-dataset" (one task run per item), or directly with ``--no-prefect``. Results
are kept in tome's database, where `tome eval --list` and `--compare A B` read them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.commands.common import run_async, run_cli
from flows.commands.run_options import (
    COMMAND_LINE,
    NoPrefectOpt,
    RunOptions,
    with_run_options,
)
from pipeline.errors import ConfigError, DocumentNotFoundError

if TYPE_CHECKING:
    from flows.evaluation import EvalOptions
    from pipeline.evaluation.records import EvalRecords
    from pipeline.evaluation.results import EvalReport
    from pipeline.options import SummariseOptions


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command to ``app``."""
    app.command("eval")(evaluate)


# --length is its own here ("reference" by default); the rest of a run's options are the shared ones.
@with_run_options(omit=("length", "password", "server_extract", "encoding", "max_cost"))
def evaluate(
    dataset: Annotated[
        Path | None,
        typer.Argument(help="JSONL: a document and its human reference summaries per line.", show_default=False),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            metavar="squality|squality-questions|qmsum|qmsum-specific|plain",
            help="Dataset format (qmsum-specific, squality-questions: an item per question, summarised with it as --focus).",
            show_default="detected from the first record",
        ),
    ] = None,
    document_field: Annotated[
        str | None, typer.Option(
            help="Path of the document in a record, e.g. 'article' or 'meeting.transcript'.",
            show_default="the preset's",
        )
    ] = None,
    references_field: Annotated[
        str | None,
        typer.Option(help="Path of the references, e.g. 'summaries' or 'questions[0].responses[].response_text'.",
            show_default="the preset's",
        ),
    ] = None,
    id_field: Annotated[str | None, typer.Option(help="Path of an item's id.", show_default="the line number")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Evaluate the first N items.", min=1, show_default="all")] = None,
    length: Annotated[
        str,
        typer.Option(
            "--length",
            "-l",
            help="Summary length: 'reference' (each item's mean reference length, as the baselines get) or the "
            "usual short, medium, long or N tokens.",
        ),
    ] = "reference",
    judge: Annotated[
        bool, typer.Option("--judge", help="Also score coherence with the model as judge (BooookScore-style).")
    ] = False,
    compare: Annotated[
        tuple[str, str] | None,
        typer.Option(
            metavar="RUN_A RUN_B",
            help="Compare two recorded evaluations (ids, unique prefixes, or 'previous' and 'latest').",
            show_default="none",
        ),
    ] = None,
    list_runs: Annotated[bool, typer.Option("--list", help="List recorded evaluations, newest first.")] = False,
    show_items: Annotated[bool, typer.Option("--items", help="Also print a row per item.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    run: RunOptions = COMMAND_LINE,
    no_prefect: NoPrefectOpt = False,
) -> None:
    """Score summaries against human references (ROUGE-1/2/L F1), beside the lead and TextRank baselines.

    Exit codes: 0 done, 1 some items failed, 2 bad input or configuration, 3 a quota is used up (run again: cached).
    """

    def body() -> int:
        from pipeline.evaluation.records import EvalRecords
        from pipeline.store import Store

        if compare is not None or list_runs:
            store = Store()
            try:
                records = EvalRecords(store.engine)
                if compare is not None:
                    _print_comparison(records, compare[0], compare[1], as_json=as_json)
                else:
                    _print_list(records, as_json=as_json)
            finally:
                store.close()
            return 0
        from flows.evaluation import EvalOptions
        from pipeline.evaluation.dataset import field_spec

        if dataset is None:
            raise ConfigError("Name a dataset (tome eval DATASET.jsonl), or use --compare A B or --list.")
        is_reference = length.strip().lower() == "reference"
        options = replace(run, length=None if is_reference else length).build()
        eval_options = EvalOptions(
            preset=preset, document_field=document_field, references_field=references_field, id_field=id_field,
            limit=limit, length="reference" if is_reference else length, judge=judge,
        )  # fmt: skip
        # Fail on what can be checked at once, before Prefect starts: the file, the preset.
        if not dataset.is_file():
            raise DocumentNotFoundError(f"{dataset}: no such dataset file.")
        field_spec(preset)
        report = run_async(_evaluate(dataset, options, eval_options, use_prefect=not no_prefect))
        _print_report(report, as_json=as_json, show_items=show_items)
        return 1 if any(s.failed for s in report.systems) else 0

    code = run_cli(body)
    if code:
        raise typer.Exit(code)


async def _evaluate(
    dataset: Path, options: SummariseOptions, eval_options: EvalOptions, *, use_prefect: bool
) -> EvalReport:
    if not use_prefect:
        from flows.evaluation import evaluate_dataset

        return await evaluate_dataset(dataset, options, eval_options)
    from flows.prefect_env import connect_prefect, quiet_reported_errors

    # Before importing Prefect: a dead API URL fails in milliseconds; with none, tome's background server.
    connect_prefect()
    from flows.eval_flow import evaluate_dataset_flow

    quiet_reported_errors()
    return await evaluate_dataset_flow(str(dataset), options, eval_options)


def _print_report(report: EvalReport, *, as_json: bool, show_items: bool) -> None:
    from flows.evaluation import SYSTEM_HEAD, currency_of, percent, system_rows
    from flows.tables import text_table

    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(with_items=show_items), ensure_ascii=False, indent=2) + "\n")
        return
    s = report.settings
    sys.stdout.write(
        f"Evaluation {report.run_id[:12]} of {Path(report.dataset).name}: {len(report.items)} items, "
        f"backend {s.get('backend')}"
        + ("" if s.get("backend") == "extractive" else f", model {s.get('model')}")
        + f", length {s.get('length')}. "
        "ROUGE F1 x 100, best reference per item; lengths in words (characters for Chinese).\n"
    )
    sys.stdout.write(text_table(SYSTEM_HEAD, system_rows(report), right=set(range(1, 13))))
    judged = report.judge_usage
    if judged.calls:
        from flows.progress import money

        sys.stdout.write(
            f"Judge: {judged.calls} calls ({judged.cached_calls} cached), {judged.prompt_tokens:,} tokens in, "
            f"{judged.completion_tokens:,} out, {money(judged.cost, currency_of(report))}.\n"
        )
    if show_items:
        head = ("item", "system", "ROUGE-1", "ROUGE-2", "ROUGE-L", "length", "reference", "coherence", "error")
        rows = [
            [r.item_id, r.system, percent(r.rouge1), percent(r.rouge2), percent(r.rougeL), str(r.length),
             f"{r.reference_length:.0f}", percent(r.coherence), r.error or ""]
            for r in report.results
        ]  # fmt: skip
        sys.stdout.write("\n" + text_table(head, rows, right={2, 3, 4, 5, 6, 7}))


def _print_list(records: EvalRecords, *, as_json: bool) -> None:
    from flows.tables import text_table

    runs = records.list()
    if as_json:
        for r in runs:
            sys.stdout.write(json.dumps(r.__dict__, ensure_ascii=False) + "\n")
        return
    if not runs:
        typer.echo("No evaluations yet: tome eval DATASET.jsonl", err=True)
        return
    rows = [
        [r.id[:12], r.started_at[:19].replace("T", " "), Path(r.dataset).name, str(r.items), r.status,
         str(r.settings.get("backend", "")), str(r.settings.get("model", "")), str(r.settings.get("length", ""))]
        for r in runs
    ]  # fmt: skip
    head = ("id", "started (UTC)", "dataset", "items", "status", "backend", "model", "length")
    sys.stdout.write(text_table(head, rows, right={3}))


def _print_comparison(records: EvalRecords, ref_a: str, ref_b: str, *, as_json: bool) -> None:
    from flows.evaluation import percent
    from flows.tables import text_table
    from pipeline.evaluation.results import compare as compare_runs

    a, b = records.get(ref_a), records.get(ref_b)
    result = compare_runs(a, b)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str) + "\n")
        return
    sys.stdout.write(f"A = {a.run_id[:12]} ({a.started_at}), B = {b.run_id[:12]} ({b.started_at})\n")
    if result.settings_changed:
        sys.stdout.write("Settings that differ:\n")
        for key, (va, vb) in result.settings_changed.items():
            sys.stdout.write(f"  {key}: {va!r} -> {vb!r}\n")
    else:
        sys.stdout.write("Same settings.\n")
    if result.only_a or result.only_b:
        sys.stdout.write(f"Items only in A: {result.only_a}; only in B: {result.only_b} (not compared).\n")
    head = ("system", "items", "ROUGE-1 A→B", "ROUGE-2 A→B", "ROUGE-L A→B", "length A→B", "coherence A→B",
            "R-L better/worse")  # fmt: skip
    rows = []
    for d in result.systems:
        cells = [d.system, str(d.items)]
        for metric in ("rouge1", "rouge2", "rougeL"):
            cells.append(f"{percent(d.before[metric])}→{percent(d.after[metric])} ({100 * d.delta(metric):+.2f})")
        cells.append(f"{d.before['length']:.0f}→{d.after['length']:.0f}")
        cells.append(f"{percent(d.before['coherence'])}→{percent(d.after['coherence'])}")
        cells.append(f"{d.better}/{d.worse}")
        rows.append(cells)
    sys.stdout.write(text_table(head, rows, right=set(range(1, 8))))
