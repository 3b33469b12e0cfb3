"""`tome eval` without the CLI: open the runtime, load the dataset, evaluate, and show results as tables.

No Prefect here: the CLI calls :func:`evaluate_dataset` directly with ``--no-prefect``, and the flow in
flows/eval_flow.py calls it with each item as a task run.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import ConfigError
from pipeline.evaluation.dataset import PRESETS, field_spec, load_dataset
from pipeline.evaluation.records import EvalRecords
from pipeline.evaluation.results import EvalReport
from pipeline.evaluation.runner import Evaluation, ItemStep, run_directly
from pipeline.evaluation.runner import evaluate as run_evaluation
from pipeline.inputs import file_sha256
from pipeline.options import SummariseOptions
from pipeline.runtime import DEFAULT_IN_FLIGHT, build_runtime


class EvalOptions(BaseModel):
    """What to evaluate and how, beside the summariser's options (a flow parameter: no secrets)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: str | None = None
    document_field: str | None = None
    references_field: str | None = None
    id_field: str | None = None
    limit: int | None = Field(default=None, ge=1)
    length: str = "reference"  # "reference" or a summarise length (short, medium, long, N tokens)
    judge: bool = False


async def evaluate_dataset(
    dataset: Path, options: SummariseOptions, eval_options: EvalOptions, *, step: ItemStep = run_directly
) -> EvalReport:
    """Evaluate ``dataset`` with the summariser ``options`` describe; results are recorded as items finish."""
    e = eval_options
    spec = field_spec(e.preset, document=e.document_field, references=e.references_field, id=e.id_field)
    items, used = load_dataset(dataset, fields=spec, limit=e.limit)
    spec = spec or PRESETS[used]
    runtime = build_runtime(options)
    try:
        judge_fn = _judge(runtime) if e.judge else None
    except ConfigError:
        await runtime.aclose()
        raise
    print(runtime.notice, file=sys.stderr, flush=True)
    recorded = {
        **runtime.settings.as_dict(),
        "backend": runtime.backend.name,
        "backend_version": runtime.backend.cache_namespace,
        "base_url": options.base_url,
        "length": e.length,
        "limit": e.limit,
        "judge": e.judge,
        "preset": used,
        "currency": runtime.model.currency if runtime.engine.billable else "",  # the offline backend: no price
    }
    if e.length == "reference":
        recorded["target_tokens"] = "reference"
    try:
        return await run_evaluation(
            items,
            Evaluation(
                backend=runtime.backend,
                store=runtime.store,
                settings=runtime.settings,
                model=runtime.model,
                limits=runtime.limits,
                length=e.length,
                max_in_flight=runtime.limits.concurrency or DEFAULT_IN_FLIGHT,
            ),
            records=EvalRecords(runtime.store.engine),
            dataset=str(dataset),
            dataset_sha256=file_sha256(dataset),
            fields={"preset": used, **spec.describe()},
            settings_record=recorded,
            judge=judge_fn,
            on_item=_progress_line,
            step=step,
        )
    finally:
        await runtime.aclose()


def _judge(runtime: Any) -> Any:
    from pipeline.evaluation.judge import judge_coherence, require_judge_backend

    require_judge_backend(runtime.backend)

    async def judge(summary: str, language: str) -> Any:
        return await judge_coherence(
            summary,
            backend=runtime.backend,
            store=runtime.store,
            provider=runtime.settings.provider,
            model=runtime.settings.model,
            language=language,
        )

    return judge


def percent(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _progress_line(done: int, total: int, item: Any, rows: list[Any]) -> None:
    parts = []
    for r in rows:
        parts.append(f"{r.system} R-L {percent(r.rougeL)}" if r.ok else f"{r.system} failed: {r.error}")
    print(f"[{done}/{total}] {item.id}: " + ", ".join(parts), file=sys.stderr, flush=True)


SYSTEM_HEAD = ("system", "items", "ROUGE-1", "ROUGE-2", "ROUGE-L", "length", "reference", "ratio", "calls (cached)",
         "tokens in", "tokens out", "cost", "coherence")  # fmt: skip


def currency_of(report: Any) -> str:
    """The currency of the evaluated model's prices, as recorded with the evaluation."""
    return str(report.settings.get("currency", "USD") or "")


def system_rows(report: Any) -> list[list[str]]:
    from flows.progress import money

    currency = currency_of(report)
    rows = []
    for s in report.systems:
        rows.append(
            [
                s.system,
                f"{s.items}" + (f" ({s.failed} failed)" if s.failed else ""),
                percent(s.rouge1),
                percent(s.rouge2),
                percent(s.rougeL),
                f"{s.length:.0f}" if not math.isnan(s.length) else "-",
                f"{s.reference_length:.0f}" if not math.isnan(s.reference_length) else "-",
                f"{s.length_ratio:.2f}" if not math.isnan(s.length_ratio) else "-",
                f"{s.calls} ({s.cached_calls})" if s.system == "tome" else "-",
                f"{s.prompt_tokens:,}" if s.system == "tome" else "-",
                f"{s.completion_tokens:,}" if s.system == "tome" else "-",
                money(s.cost, currency) if s.system == "tome" else "-",
                percent(s.coherence),
            ]
        )
    return rows
