"""Build the budget a run uses: in-process by default, shared through SQL when several workers run."""

from __future__ import annotations

from sqlalchemy import Engine

from pipeline.budget.inprocess import InProcessBudget
from pipeline.budget.ledger import TokenLedger
from pipeline.budget.sql import SqlBudget
from pipeline.config import RateLimits
from pipeline.errors import ConfigError


def make_budget(
    limits: RateLimits,
    *,
    account: str,
    engine: Engine | None = None,
    shared: bool = False,
    tier: str | None = None,
) -> InProcessBudget | SqlBudget:
    """The rate budget for ``account``.

    Args:
        limits: from ``resolve_limits(tier, overrides=...)``.
        account: ``account_id(provider, api_key)`` (never the key itself).
        engine: the project database (``pipeline.db.make_engine()``); books TPD in ``token_ledger``.
            Without it TPD is counted in memory only (lost on restart).
        shared: share concurrency/RPM/TPM with every process using ``engine`` (``SqlBudget``).
        tier: the configured tier name, for the Msh-Gid tier warning.

    Raises:
        ConfigError: ``shared`` without an engine.
    """
    if shared:
        if engine is None:
            raise ConfigError("A shared rate budget needs the database: pass its engine (TOME_DATABASE_URL).")
        return SqlBudget(engine, limits, account=account, tier=tier)
    ledger = TokenLedger(engine) if engine is not None else None
    return InProcessBudget(limits, ledger=ledger, account=account, tier=tier)
