"""Assembling a run: settings -> limits -> budget -> backend -> store -> engine -> progress board.

Everything the documents of one run share is built here once (one store, ONE rate budget, one backend, one
engine); :func:`open_runtime` is the async context manager that also closes them. The API key is read here
only, from the environment (or passed in), and never stored in options, logs or the database.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from pipeline.backends import make_backend
from pipeline.budget.factory import make_budget
from pipeline.budget.presets import account_id
from pipeline.claims import Claims, lease_from_env
from pipeline.config import ModelSpec, RateLimits
from pipeline.engine import SummaryEngine
from pipeline.llm.admission import RateBudget
from pipeline.llm.types import ChatBackend
from pipeline.options import SummariseOptions
from pipeline.progress_events import NullBoard, RunBoard
from pipeline.settings import RunSettings
from pipeline.spending import CappedBackend, SpendingCap
from pipeline.store import Store

DEFAULT_IN_FLIGHT = 8  # calls in flight per document when the tier sets no concurrency limit
SHARED_BUDGET_ENV = "TOME_SHARED_BUDGET"


@dataclass
class Runtime:
    """What every document of one run shares: settings, one store, ONE rate budget, one backend and engine."""

    options: SummariseOptions
    settings: RunSettings
    model: ModelSpec
    limits: RateLimits
    store: Store
    budget: RateBudget
    backend: ChatBackend
    engine: SummaryEngine
    notice: str  # one line naming the backend and model (the CLI prints it)
    board: RunBoard
    spending: SpendingCap | None = None  # --max-cost: shared by every document (and worker) of the scope
    claims: Claims | None = None  # document and in-flight call claims shared with other processes

    async def aclose(self) -> None:
        """Close the backend's connections, the claims and the store."""
        try:
            await self.backend.aclose()
            if self.claims is not None:
                await asyncio.to_thread(self.claims.close)
        finally:
            self.store.close()


def build_runtime(
    options: SummariseOptions,
    *,
    board: RunBoard | None = None,
    env: Mapping[str, str] = os.environ,
    api_key: str | None = None,
    store: Store | None = None,
    utcnow: Callable[[], datetime] | None = None,
    spend_scope: str | None = None,
    claims: bool | None = None,
) -> Runtime:
    """Resolve settings and build store, budget, backend and engine (the caller closes it: ``aclose``).

    ``spend_scope`` names what ``--max-cost`` caps (a batch's id, shared by its workers); default: this runtime.
    ``claims``: claim documents and calls in the database (default: for billable backends; work-pool workers
    always do, so their batch can tell a lost worker by its lapsed claims; lease: ``TOME_CLAIM_LEASE_S``).

    Raises:
        ConfigError: unknown model, tier, length or backend, or a missing API key.
    """
    catalog = options.catalog()
    settings = options.settings(catalog)
    model = catalog.model(settings.model)
    limits = options.limits(settings, catalog)
    provider = catalog.provider(settings.provider)
    api_key = api_key or env.get(provider.api_key_env) or None
    store = store or Store()
    # Several processes or machines on one account share one budget through the database (opt-in: the
    # in-process budget is cheaper when one process owns the account).
    shared = env.get(SHARED_BUDGET_ENV, "").strip().lower() in {"1", "true", "yes"}
    budget = make_budget(
        limits,
        account=account_id(settings.provider, api_key),
        engine=store.engine,
        tier=settings.tier,
        shared=shared,
        utcnow=utcnow,
    )
    in_flight = limits.concurrency or DEFAULT_IN_FLIGHT
    backend, notice = make_backend(
        options.backend,
        settings,
        base_url=options.base_url,
        api_key=api_key,
        budget=budget,
        concurrency=in_flight,
        catalog=catalog,
        env=env,
    )
    if backend.planning_window:
        # The offline backend has no model behind it: it plans with its own window, not the configured model's.
        model = replace(model, context_tokens=backend.planning_window)
    billable = backend.billable
    # Paid calls are claimed in the database: processes sharing it never pay twice for a document or a prompt.
    use_claims = billable if claims is None else claims
    shared_claims = Claims(store.engine, lease_s=lease_from_env(env)) if use_claims else None
    spending = None
    cap = options.spending_cap(catalog)
    if cap > 0 and billable:
        spending = SpendingCap(store.engine, scope=spend_scope or uuid.uuid4().hex, cap=cap, currency=model.currency)
        backend = CappedBackend(backend, spending, model)
    engine = SummaryEngine(
        backend=backend,
        store=store,
        settings=settings,
        model=model,
        max_in_flight=in_flight,
        limits=limits,
        claims=shared_claims,
        # A hosted model's window is in models.toml; a local server's only if it stated it (else it is probed).
        window_confirmed=provider.api_key_required or settings.model in catalog.server_windows,
    )
    board = board or NullBoard()
    # The plan's wall-time floor assumes a model's latency; the offline backend answers in milliseconds.
    # The offline backend has no price: its runs show no cost and no currency anywhere.
    currency = model.currency if engine.billable else ""
    # Only calls to a server pass the rate budget: its wait estimate is no floor for the offline backend's ETA.
    wait_estimate = budget.estimated_wait if backend.base_url is not None else None
    board.attach(currency=currency, wait_estimate=wait_estimate, plan_eta=engine.billable)
    backend.on_retry = board.retrying  # the client's retry waits show on the progress line
    return Runtime(
        options, settings, model, limits, store, budget, backend, engine, notice, board, spending, shared_claims
    )


@asynccontextmanager
async def open_runtime(
    options: SummariseOptions,
    *,
    board: RunBoard | None = None,
    env: Mapping[str, str] = os.environ,
    api_key: str | None = None,
    store: Store | None = None,
    utcnow: Callable[[], datetime] | None = None,
    spend_scope: str | None = None,
) -> AsyncIterator[Runtime]:
    """The assembled runtime for ``async with``; the board, backend and store are closed on the way out."""
    runtime = build_runtime(
        options, board=board, env=env, api_key=api_key, store=store, utcnow=utcnow, spend_scope=spend_scope
    )
    try:
        yield runtime
    finally:
        runtime.board.close()
        await runtime.aclose()
