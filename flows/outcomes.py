"""Outcome tables and the direct (no Prefect) run the CLI's ``--no-prefect`` and benchmarks use."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from flows.progress import ProgressBoard, money
from flows.tables import markdown_table, text_table
from pipeline.document_runs import DocumentRun, Outcome, exit_code_for, summarise_paths
from pipeline.inputs import expand_inputs
from pipeline.options import SummariseOptions
from pipeline.runtime import open_runtime

__all__ = [
    "DocumentRun",
    "Outcome",
    "batch_seconds",
    "exit_code_for",
    "expand_inputs",
    "failures_line",
    "outcomes_table",
    "outcomes_text",
    "summarise_direct",
]

_OUTCOME_HEAD = ("document", "status", "calls", "cached", "tokens in", "tokens out", "cost", "time")
_NUMERIC = {2, 3, 4, 5, 6, 7}


def _outcome_rows(outcomes: Sequence[Outcome]) -> list[list[str]]:
    rows = [
        [
            o.name,
            o.status,
            str(o.calls),
            str(o.cached_calls),
            f"{o.prompt_tokens:,}",
            f"{o.completion_tokens:,}",
            money(o.cost, o.currency),
            f"{o.seconds:.1f} s",
        ]
        for o in outcomes
    ]
    if len(outcomes) > 1:
        done = sum(o.status in ("done", "skipped") for o in outcomes)
        rows.append(
            [
                "total",
                f"{done}/{len(outcomes)} ok",
                str(sum(o.calls for o in outcomes)),
                str(sum(o.cached_calls for o in outcomes)),
                f"{sum(o.prompt_tokens for o in outcomes):,}",
                f"{sum(o.completion_tokens for o in outcomes):,}",
                money(sum(o.cost for o in outcomes), outcomes[0].currency),
                f"{batch_seconds(outcomes):.1f} s",
            ]
        )
    return rows


def batch_seconds(outcomes: Sequence[Outcome]) -> float:
    """A batch's wall time: from the first document's start to the last one's end (documents overlap)."""
    spans = [(o.started_at, o.finished_at) for o in outcomes if o.finished_at]
    if not spans:
        return max((o.seconds for o in outcomes), default=0.0)
    return max(end for _, end in spans) - min(start for start, _ in spans)


def failures_line(outcomes: Sequence[Outcome]) -> str | None:
    """A batch's failed documents in one line (the flow run's Failed message), or None when none failed."""
    failed = [o for o in outcomes if o.status not in ("done", "skipped")]
    if not failed:
        return None
    names = ", ".join(f"{o.name} ({' '.join((o.error or o.status).split())})" for o in failed[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    return f"{len(failed)} of {len(outcomes)} documents failed: {names}{more}"


def outcomes_table(outcomes: Sequence[Outcome]) -> str:
    """Markdown: document, status, calls, cached, tokens, cost, time (a total row for several), then errors."""
    text = markdown_table(_OUTCOME_HEAD, _outcome_rows(outcomes), right=_NUMERIC)
    errors = [f"- **{o.name}**: {o.error}" for o in outcomes if o.error]
    return text + ("\n" + "\n".join(errors) + "\n" if errors else "")


def outcomes_text(outcomes: Sequence[Outcome]) -> str:
    """The same table as aligned text for terminals, errors listed below it."""
    text = text_table(_OUTCOME_HEAD, _outcome_rows(outcomes), right=_NUMERIC)
    errors = [f"{o.name}: {o.error}" for o in outcomes if o.error]
    return text + ("".join(e + "\n" for e in errors))


async def summarise_direct(
    options: SummariseOptions,
    paths: Sequence[Path],
    *,
    out_dir: Path | None,
    board: ProgressBoard | None = None,
    announce: bool = False,
) -> tuple[list[DocumentRun], str]:
    """Summarise without Prefect (``--no-prefect``, benchmarks); returns the runs and the backend notice."""
    async with open_runtime(options, board=board or ProgressBoard()) as runtime:
        if announce:
            print(runtime.notice, file=sys.stderr, flush=True)
        runs = await summarise_paths(runtime, paths, out_dir=out_dir)
    return runs, runtime.notice
