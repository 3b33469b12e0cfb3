"""Run an evaluation: summarise every item (through the cache), score it and the baselines, record the results."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import fmean
from typing import Any, Protocol

from pipeline.config import ModelSpec, RateLimits
from pipeline.documents.loader import document_from_text
from pipeline.documents.model import Document
from pipeline.engine import SummaryEngine
from pipeline.errors import QuotaExhaustedError, TomeError
from pipeline.evaluation.baselines import lead, textrank
from pipeline.evaluation.dataset import EvalItem
from pipeline.evaluation.records import EvalRecords
from pipeline.evaluation.results import LEAD, TEXTRANK, EvalReport, ItemResult, JudgeUsage
from pipeline.evaluation.rouge import Rouge
from pipeline.language import counts_characters
from pipeline.lengths import DEFAULT_PER_TOKEN, ESTIMATE_HEADROOM, MIN_WORDS, Length, estimate_tokens, measure
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


def reference_size(item: EvalItem) -> Length:
    """The references' mean length in the unit ``--length`` would ask for this item's language (words, or
    characters for languages written in them), counted as ``--length`` counts it (pipeline.lengths)."""
    unit = "chars" if counts_characters(item.language) else "words"
    return Length(max(MIN_WORDS, round(fmean(measure(r, unit) for r in item.references))), unit)


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
    asked = _asked_length(item, ev)
    await _summarise_item(rows[0], document, item, ev, counter, asked)
    # Every system gets the same length in the same unit: the one tome was asked for (asked in tokens, the
    # words or characters tome wrote), as --length counts it.
    size = asked
    if size.unit == "tokens":
        unit = "chars" if counts_characters(item.language) else "words"
        size = Length(measure(rows[0].summary, unit) if rows[0].ok else reference_size(item).amount, unit)
    # Baselines are local and CPU-bound: a worker thread keeps the event loop free for in-flight calls.
    rows[1].summary, rows[2].summary = await asyncio.to_thread(
        lambda: (
            lead(document.text, size.amount, unit=size.unit),
            textrank(document.text, size.amount, rouge.tokenizer, unit=size.unit),
        )
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


def _asked_length(item: EvalItem, ev: Evaluation) -> Length:
    """The length tome is asked for on ``item``: the references' (as ``--length 120w`` / ``300字``) or the settings'."""
    if ev.length == REFERENCE_LENGTH:
        return reference_size(item)
    s = ev.settings
    return Length(s.target_units, s.target_unit) if s.target_unit != "tokens" else Length(s.target_tokens)


async def _summarise_item(
    row: ItemResult, document: Document, item: EvalItem, ev: Evaluation, counter: TokenCounter, asked: Length
) -> None:
    settings = ev.settings
    if item.focus:  # a query-focused item: summarised for its own question (cached apart from the plain one)
        settings = replace(settings, focus=item.focus)
    if asked.unit != "tokens":  # as the CLI's --length sets it; the engine sizes the tokens for the document
        tokens = estimate_tokens(asked, per_token=DEFAULT_PER_TOKEN[asked.unit] * ESTIMATE_HEADROOM)
        settings = replace(settings, target_unit=asked.unit, target_units=asked.amount, target_tokens=tokens)
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
