"""tome as a bench system: SummaryEngine.summarise on the test server, built the way flows/runner.py builds it.

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
    from pipeline.backends import make_backend
    from pipeline.budget import account_id, make_budget, resolve_limits
    from pipeline.config import load_catalog
    from pipeline.documents import load_document
    from pipeline.engine import SummaryEngine
    from pipeline.settings import resolve_settings
    from pipeline.store import Store

    catalog = load_catalog()
    settings = resolve_settings(catalog, model=args.model, context_strategy=args.context_strategy)
    limits = resolve_limits(
        settings.tier,
        overrides={"concurrency": args.concurrency, "rpm": args.rpm, "tpm": args.tpm, "tpd": args.tpd},
        env={},
        catalog=catalog,
    )
    model = catalog.model(settings.model)
    store = Store()  # under TOME_HOME, fresh per cell: no cache hits
    budget = make_budget(
        limits, account=account_id(settings.provider, args.api_key), engine=store.engine, tier=settings.tier
    )
    backend, notice = make_backend(
        "moonshot", settings, base_url=args.base_url, api_key=args.api_key, budget=budget,
        concurrency=limits.concurrency or 8, catalog=catalog,
    )
    result.notes.append(notice)
    engine = SummaryEngine(
        backend=backend, store=store, settings=settings, model=model,
        max_in_flight=limits.concurrency or 8, limits=limits,
    )

    async def go():
        try:
            state = engine.prepare(load_document(args.doc))
            result.chunks = len(state.chunks)
            result.extra["planned_calls"] = state.plan.total_calls
            result.extra["planned_levels"] = len(state.plan.levels)
            while not state.done:
                await engine.run_level(state, state.next_level)
                result.depth = len(state.levels)
            return engine.finish(state)
        finally:
            await backend.aclose()

    summary = asyncio.run(go())
    store.close()
    usage = summary.usage
    result.extra["usage"] = {k: getattr(usage, k, None) for k in
                             ("calls", "cached_calls", "prompt_tokens", "completion_tokens", "cost")}
    result.extra["context_strategy"] = settings.context_strategy
    result.extra["effective_lag"] = summary.settings.get("effective_lag")
    return summary.final


if __name__ == "__main__":
    name = "tome-nocarry" if "none" in sys.argv else "tome"
    sys.exit(run_peer(name, body))
