"""Run an evaluation: summarise every item (through the cache), score it and the baselines, record the results."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import fmean
from typing import Any, Protocol

from pipeline.config import ModelSpec, RateLimits
from pipeline.documents.loader import document_from_text
from pipeline.documents.model import Document
from pipeline.engine import LENGTH_HEADROOM, SummaryEngine
from pipeline.errors import QuotaExhaustedError, TomeError
from pipeline.evaluation.baselines import lead, textrank
from pipeline.evaluation.dataset import EvalItem
from pipeline.evaluation.records import EvalRecords
from pipeline.evaluation.results import LEAD, TEXTRANK, EvalReport, ItemResult, JudgeUsage
from pipeline.evaluation.rouge import Rouge
from pipeline.language import count_units, counts_characters, length_unit, sample_text
from pipeline.lengths import measure
from pipeline.llm.types import ChatBackend
from pipeline.settings import RunSettings
from pipeline.store import Store
from pipeline.tokens import TokenCounter, counter_for

TOME = "tome"
REFERENCE_LENGTH = "reference"
ITEMS_AT_ONCE = 4  # items summarised at once; their calls share one rate budget either way


class Judged(Protocol):
    """What a coherence judge returns (pipeline.evaluation.judge.Coherence): a score and what it took."""

    calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def score(self) -> float: ...


Judge = Callable[[str, str], Awaitable[Judged]]  # (summary, language) -> judgement
ItemDone = Callable[[int, int, EvalItem, list[ItemResult]], None]
# How one item's work runs: awaited directly, or as an orchestrator's task named by the label.
ItemStep = Callable[[str, Callable[[], Awaitable[list[ItemResult]]]], Awaitable[list[ItemResult]]]


async def run_directly(label: str, fn: Callable[[], Awaitable[list[ItemResult]]]) -> list[ItemResult]:
    """The default ItemStep: no orchestration."""
    return await fn()


@dataclass(frozen=True)
class Evaluation:
    """What to evaluate with: the summariser's parts, and how long the summaries should be."""

    backend: ChatBackend
    store: Store
    settings: RunSettings
    model: ModelSpec
    limits: RateLimits
    length: str = REFERENCE_LENGTH  # "reference": each item's mean reference length; else the settings' length
    max_in_flight: int = 8
    counter: TokenCounter | None = None


def target_tokens(
    item: EvalItem, text: str, model: ModelSpec, counter: TokenCounter, *, calibration: float | None = None
) -> int:
    """The final-summary budget (provider tokens) that makes the engine ask for the references' mean length.

    ``text`` is the document as the engine reads it (normalised: its words per token are what the engine
    measures). ``calibration``: provider tokens per local token when the backend states it (the extractive
    backend counts locally: 1.0); else the model's configured ratio, which the engine also starts from.
    """
    # Languages written in characters are asked for characters as `--length 500字` counts them (a Latin word's
    # letters each count), so a reference mixing in "defi" or "TV" is not matched by a shorter summary.
    if counts_characters(item.language):
        units = fmean(measure(r, "chars") for r in item.references)
    else:
        units = fmean(count_units(r, item.language) for r in item.references)
    # The engine asks for unit.units(tokens * LENGTH_HEADROOM / calibration) words; invert that.
    unit = length_unit(item.language, sample_text(text), counter)
    calibration = calibration or model.for_language(item.language).calibration
    return max(20, math.ceil(units * calibration / (LENGTH_HEADROOM * unit.per_token)))


async def evaluate(
    items: Sequence[EvalItem],
    ev: Evaluation,
    *,
    records: EvalRecords,
    dataset: str,
    dataset_sha256: str,
    fields: dict[str, Any],
    settings_record: dict[str, Any],
    judge: Judge | None = None,
    on_item: ItemDone | None = None,
    items_at_once: int = ITEMS_AT_ONCE,
    step: ItemStep = run_directly,
) -> EvalReport:
    """Summarise and score ``items``; each item's rows reach the database as soon as it is done.

    A failed item is recorded with its error and the evaluation goes on; a used-up quota stops it
    (status "quota", QuotaExhaustedError raised) with everything done so far kept in the cache and the database.
    """
    rouge = Rouge()
    counter = ev.counter or counter_for(ev.model)
    run_id, started = records.start(
        dataset=dataset, dataset_sha256=dataset_sha256, fields=fields, settings=settings_record, items=len(items)
    )
    report = EvalReport(run_id, dataset, settings_record, status="running", started_at=started)
    gate = asyncio.Semaphore(max(1, items_at_once))
    done = 0

    async def one(item: EvalItem) -> list[ItemResult]:
        nonlocal done
        async with gate:
            rows = await step(
                f"item {item.id}",
                lambda: _evaluate_item(item, ev, rouge, counter, judge=judge, label=dataset, usage=report.judge_usage),
            )
        records.add(run_id, rows)
        done += 1
        if on_item is not None:
            on_item(done, len(items), item, rows)
        return rows

    tasks = [asyncio.ensure_future(one(item)) for item in items]
    status = "failed"
    try:
        for rows in await asyncio.gather(*tasks):
            report.results.extend(rows)
        status = "done"
    except QuotaExhaustedError:
        status = "quota"
        raise
    except (asyncio.CancelledError, KeyboardInterrupt):
        status = "interrupted"
        raise
    finally:
        for task in tasks:
            task.cancel()
        records.finish(run_id, status)
        report.status = status
    return report


async def _evaluate_item(
    item: EvalItem,
    ev: Evaluation,
    rouge: Rouge,
    counter: TokenCounter,
    *,
    judge: Judge | None,
    label: str,
    usage: JudgeUsage,
) -> list[ItemResult]:
    reference_length = fmean(rouge.length(r) for r in item.references)
    rows = [ItemResult(item.id, system, reference_length=reference_length) for system in (TOME, LEAD, TEXTRANK)]
    try:
        # Every system reads the same text: the document as the loader cleans it (boilerplate, markup).
        document = document_from_text(Path(f"{Path(label).name}#{item.id}"), item.document)
    except TomeError as exc:
        for row in rows:
            row.error = str(exc)
        return rows
    await _summarise_item(rows[0], document, item, ev, counter)
    size = round(reference_length)
    # Baselines are local and CPU-bound: a worker thread keeps the event loop free for in-flight calls.
    rows[1].summary, rows[2].summary = await asyncio.to_thread(
        lambda: (lead(document.text, size), textrank(document.text, size, rouge.tokenizer))
    )
    for row in rows:
        if row.error is None:
            _score(row, item, rouge)
    if judge is not None:
        for row in rows:
            if row.ok and row.summary.strip():
                judged = await judge(row.summary, item.language)
                row.coherence = judged.score
                usage.add(judged, ev.model.cost(judged.prompt_tokens, judged.completion_tokens))
    return rows


def _score(row: ItemResult, item: EvalItem, rouge: Rouge) -> None:
    scores = rouge.score(row.summary, item.references)
    row.rouge1, row.rouge2, row.rougeL = scores.rouge1, scores.rouge2, scores.rougeL
    row.length = rouge.length(row.summary)


async def _summarise_item(
    row: ItemResult, document: Document, item: EvalItem, ev: Evaluation, counter: TokenCounter
) -> None:
    settings = ev.settings
    if item.focus:  # a query-focused item: summarised for its own question (cached apart from the plain one)
        settings = replace(settings, focus=item.focus)
    if ev.length == REFERENCE_LENGTH:
        calibration = ev.backend.calibration
        tokens = target_tokens(item, document.text, ev.model, counter, calibration=calibration)
        settings = replace(settings, target_tokens=tokens)
    try:
        engine = SummaryEngine(
            backend=ev.backend,
            store=ev.store,
            settings=settings,
            model=ev.model,
            counter=counter,
            max_in_flight=ev.max_in_flight,
            limits=ev.limits,
        )
        result = await engine.summarise(document)
    except QuotaExhaustedError:
        raise
    except TomeError as exc:
        row.error = str(exc)
        return
    usage = result.usage
    row.summary = result.final.strip()
    row.calls, row.cached_calls = usage.calls, usage.cached_calls
    row.prompt_tokens, row.completion_tokens, row.cost = usage.prompt_tokens, usage.completion_tokens, usage.cost
