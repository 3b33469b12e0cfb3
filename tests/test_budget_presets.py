"""Tier presets, per-limit overrides (config < environment < flags), account ids and the Msh-Gid tier."""

from __future__ import annotations

import pytest

from pipeline.budget import account_id, make_budget, resolve_limits, tier_from_gid, tier_warning
from pipeline.budget.inprocess import InProcessBudget
from pipeline.budget.sql import SqlBudget
from pipeline.config import RateLimits, load_catalog
from pipeline.db import make_engine
from pipeline.errors import ConfigError


def test_tier_presets_match_the_published_tables() -> None:
    assert resolve_limits("tier0", env={}) == RateLimits(concurrency=1, rpm=3, tpm=500_000, tpd=1_500_000)
    assert resolve_limits("Tier0-2024", env={}) == RateLimits(concurrency=1, rpm=3, tpm=32_000, tpd=1_500_000)
    assert resolve_limits("tier5", env={}) == RateLimits(concurrency=1000, rpm=10_000, tpm=5_000_000, tpd=0)


def test_config_then_environment_then_flags_override_per_limit() -> None:
    env = {"TOME_RPM": "10", "TOME_TPM": "1_000_000", "TOME_TPD": "unlimited"}
    limits = resolve_limits(
        "tier0", config={"rpm": 5, "concurrency": 2}, env=env, overrides={"tpm": 200_000, "tpd": None}
    )
    assert limits == RateLimits(concurrency=2, rpm=10, tpm=200_000, tpd=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"env": {"TOME_RPM": "fast"}}, "TOME_RPM must be a whole number"),
        ({"env": {"TOME_TPM": "-5"}}, "TOME_TPM must be 0"),
        ({"env": {}, "overrides": {"rpn": 3}}, "Unknown rate limit"),
        ({"env": {}, "overrides": {"rpm": True}}, "whole number"),
    ],
)
def test_bad_overrides_are_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        resolve_limits("tier1", **kwargs)


def test_unknown_tier_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="Unknown tier 'tier9'.*tier0"):
        resolve_limits("tier9", env={})


def test_account_id_is_stable_and_never_contains_the_key() -> None:
    key = "sk-abcdefghijklmnopqrstuvwxyz0123456789"
    ident = account_id("moonshot", key)
    assert ident == account_id("moonshot", key) and ident.startswith("moonshot:") and len(ident) == 21
    assert "sk-" not in ident and key[3:15] not in ident
    assert account_id("moonshot", key + "x") != ident
    assert account_id("ollama", None) == "ollama"


def test_tier_from_gid_and_warning() -> None:
    assert tier_from_gid("enterprise-tier-1") == "tier1"
    assert tier_from_gid("enterprise-tier-05") == "tier5"
    assert tier_from_gid("something-else") is None and tier_from_gid(None) is None
    catalog = load_catalog()
    assert tier_warning(catalog.tier("tier1"), "enterprise-tier-1") is None
    assert tier_warning(catalog.tier("tier0-2024"), "enterprise-tier-0") is None
    warning = tier_warning(catalog.tier("tier2"), "enterprise-tier-0")
    assert warning is not None and "--tier tier0" in warning and "tpd unlimited > 1500000" in warning


def test_make_budget_picks_the_backend(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'tome.db'}")
    limits = RateLimits(concurrency=2, rpm=3)
    local = make_budget(limits, account="a", engine=engine)
    assert isinstance(local, InProcessBudget) and local.ledger is not None
    assert isinstance(make_budget(limits, account="a", engine=engine, shared=True), SqlBudget)
    assert make_budget(limits, account="a").ledger is None
    with pytest.raises(ConfigError, match="needs the database"):
        make_budget(limits, account="a", shared=True)
