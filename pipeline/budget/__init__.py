"""Client-side rate budget: concurrency, RPM, TPM (sliding 60 s) and TPD, learning from 429s."""

from pipeline.budget.clock import VirtualClock
from pipeline.budget.factory import make_budget
from pipeline.budget.inprocess import InProcessBudget, check_admissible
from pipeline.budget.ledger import LedgerDay, TokenLedger
from pipeline.budget.presets import (
    account_id,
    max_call_tokens,
    resolve_limits,
    tier_from_gid,
    tier_warning,
)
from pipeline.budget.sql import SqlBudget
from pipeline.budget.stats import BudgetSlot, BudgetStats
from pipeline.llm.admission import Admission, RateBudget
from pipeline.utc import next_utc_midnight

__all__ = [
    "Admission",
    "BudgetSlot",
    "BudgetStats",
    "InProcessBudget",
    "LedgerDay",
    "RateBudget",
    "SqlBudget",
    "TokenLedger",
    "VirtualClock",
    "account_id",
    "check_admissible",
    "make_budget",
    "max_call_tokens",
    "next_utc_midnight",
    "resolve_limits",
    "tier_from_gid",
    "tier_warning",
]
