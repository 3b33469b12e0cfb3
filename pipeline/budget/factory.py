"""Build the budget a run uses: in-process by default, shared through SQL when several workers run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from pipeline.budget.inprocess import InProcessBudget
from pipeline.budget.ledger import TokenLedger
from pipeline.budget.sql import SqlBudget
from pipeline.config import RateLimits
from pipeline.errors import ConfigError
from pipeline.utc import utc_now

# Our admission precedes the gateway's by the request's travel time, which varies from call to call (a fresh
# connection is slower than a reused one); half a second more in the window keeps that jitter from causing 429s.
# Under a binding TPM limit every window starts this much later than the one before (12 s over a 12-window book
# at 1 s).
DEFAULT_MARGIN_S = 0.5


def make_budget(
    limits: RateLimits,
    *,
    account: str,
    engine: Engine | None = None,
    shared: bool = False,
    tier: str | None = None,
    margin_s: float = DEFAULT_MARGIN_S,
    utcnow: Callable[[], datetime] | None = None,
) -> InProcessBudget | SqlBudget:
    """The rate budget for ``account``.

    Args:
        limits: from ``resolve_limits(tier, overrides=...)``.
        account: ``account_id(provider, api_key)`` (never the key itself).
        engine: the project database (``pipeline.db.make_engine()``); books TPD in ``token_ledger``.
            Without it TPD is counted in memory only (lost on restart).
        shared: share concurrency/RPM/TPM with every process using ``engine`` (``SqlBudget``).
        tier: the configured tier name, for the Msh-Gid tier warning.
        margin_s: extra seconds each admission stays in the 60 s window (0 = exactly the gateway's window).
        utcnow: the TPD ledger's clock (tests and benchmarks move it past midnight); default the real one.

    Raises:
        ConfigError: ``shared`` without an engine.
    """
    if shared:
        if engine is None:
            raise ConfigError("A shared rate budget needs the database: pass its engine (TOME_DATABASE_URL).")
        return SqlBudget(engine, limits, account=account, tier=tier, margin_s=margin_s)
    ledger = TokenLedger(engine, utcnow=utcnow or utc_now) if engine is not None else None
    return InProcessBudget(limits, ledger=ledger, account=account, tier=tier, margin_s=margin_s)
