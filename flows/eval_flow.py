"""The Prefect flow behind `tome eval`: one task run per dataset item, and the results table as an artifact."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.evaluation import SYSTEM_HEAD, EvalOptions, evaluate_dataset, system_rows
from flows.tables import markdown_table
from pipeline.evaluation.results import EvalReport, ItemResult
from pipeline.options import SummariseOptions

log = logging.getLogger("tome.flows")


@task(name="evaluate-item", retries=0, cache_policy=NO_CACHE, persist_result=False)
async def evaluate_item(work: Callable[[], Awaitable[list[ItemResult]]]) -> list[ItemResult]:
    """One item: its summary (the engine's calls fan out inside), both baselines, ROUGE, and the judge if asked."""
    return await work()


async def _as_task(label: str, work: Callable[[], Awaitable[list[ItemResult]]]) -> list[ItemResult]:
    return await evaluate_item.with_options(task_run_name=label)(work)


def _run_name() -> str:
    from prefect.runtime import flow_run

    return f"eval {Path(str(flow_run.parameters.get('dataset', 'dataset'))).name}"


@flow(name="evaluate-dataset", flow_run_name=_run_name, retries=0, persist_result=False, log_prints=False)
async def evaluate_dataset_flow(
    dataset: str, options: SummariseOptions | None = None, eval_options: EvalOptions | None = None
) -> EvalReport:
    """Evaluate a dataset against its references; a TomeError fails the flow run so the CLI exits with its code."""
    from flows.summarise import announce_flow_run

    announce_flow_run()
    report = await evaluate_dataset(
        Path(dataset), options or SummariseOptions(), eval_options or EvalOptions(), step=_as_task
    )
    try:
        table = markdown_table(SYSTEM_HEAD, system_rows(report), right=set(range(1, 13)))
        await acreate_markdown_artifact(
            key="tome-eval",
            markdown=f"**Evaluation** `{report.run_id}` of `{Path(dataset).name}`\n\n{table}",
            description="ROUGE F1 x 100 beside the lead and TextRank baselines",
        )
    except Exception as exc:  # noqa: BLE001 - the artifact is a view; the results are already in the database
        log.warning("Could not publish the evaluation artifact: %s", exc)
    return report
