"""tome as a bench system: ``pipeline.asummarise`` (the library's entry point) on the test server.

Runs in the project's venv (not bench/.venv-peers). Prefect is left out: its orchestration is not what is
being compared, and its start-up would only add a constant to the wall time.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from common import PeerArgs, PeerResult, run_peer

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def body(args: PeerArgs, result: PeerResult) -> str:
    import time

    import pipeline
    from pipeline.config import load_catalog

    result.extra["started_wall"] = time.time()  # the test server's clock: wall time (the bench's start column)

    options = pipeline.SummariseOptions.build(
        backend="moonshot", model=args.model, context=args.context_strategy, base_url=args.base_url,
        concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm, tpd=args.tpd,
    )  # fmt: skip
    catalog = load_catalog()
    settings = options.settings(catalog)
    plan = pipeline.plan_document(
        pipeline.load_document(args.doc), catalog.model(settings.model), settings, options.limits(settings, catalog)
    )
    result.extra["planned_calls"] = plan.total_calls
    result.extra["planned_levels"] = len(plan.levels)
    # A fresh store under TOME_HOME per cell: no cache hits.
    summary = asyncio.run(pipeline.asummarise(args.doc, options, api_key=args.api_key))
    result.notes.append(f"backend moonshot, model {summary.model}")
    result.chunks = len(summary.levels[0])
    result.depth = len(summary.levels)
    usage = summary.usage
    result.extra["usage"] = {k: getattr(usage, k, None) for k in
                             ("calls", "cached_calls", "prompt_tokens", "completion_tokens", "cost",
                              "truncated", "trimmed", "retries", "splits")}
    result.extra["calls_per_level"] = [sum(n.calls for n in level) for level in summary.levels]
    result.extra["final_tokens"] = summary.levels[-1][0].tokens
    result.extra["context_strategy"] = settings.context_strategy
    result.extra["effective_lag"] = summary.settings.get("effective_lag")
    return summary.final


if __name__ == "__main__":
    name = "tome-nocarry" if "none" in sys.argv else "tome"
    sys.exit(run_peer(name, body))
