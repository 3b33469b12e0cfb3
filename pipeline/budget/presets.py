"""Rate limits from a tier preset, overridden per limit by config, environment and flags; account ids."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any

from pipeline.config import Catalog, RateLimits, load_catalog
from pipeline.errors import ConfigError

LIMIT_NAMES = ("concurrency", "rpm", "tpm", "tpd")
ENV_VARS = {name: f"TOME_{name.upper()}" for name in LIMIT_NAMES}
_UNLIMITED_WORDS = {"unlimited", "none", "inf", "off"}
_GID_TIER = re.compile(r"tier[-_ ]?(\d+)", re.IGNORECASE)


def _parse_limit(name: str, value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a whole number (0 = unlimited), not {value!r}.")
    if isinstance(value, int):
        number = value
    else:
        raw = str(value).strip().replace("_", "").replace(",", "")
        if raw == "":
            return None
        if raw.lower() in _UNLIMITED_WORDS:
            return 0
        try:
            number = int(raw)
        except ValueError:
            raise ConfigError(f"{where} must be a whole number (0 = unlimited), got {value!r}.") from None
    if number < 0:
        raise ConfigError(f"{where} must be 0 (unlimited) or positive, got {number}.")
    return number


def _checked(values: Mapping[str, Any] | None, where: str) -> dict[str, int | None]:
    if not values:
        return {}
    unknown = sorted(set(values) - set(LIMIT_NAMES))
    if unknown:
        raise ConfigError(
            f"Unknown rate limit(s) {', '.join(unknown)} in {where}; use {', '.join(LIMIT_NAMES)}."
        )
    return {k: _parse_limit(k, v, f"{k} in {where}") for k, v in values.items()}


def resolve_limits(
    tier: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] = os.environ,
    catalog: Catalog | None = None,
) -> RateLimits:
    """The tier's preset limits, overridden per limit by ``config``, then environment, then ``overrides``.

    Args:
        tier: a tier name from configs/tiers.toml ("tier0".."tier5", "tier1-2024", "unlimited", ...).
        overrides: flag values (highest precedence), keys concurrency/rpm/tpm/tpd; None keeps the value.
        config: values from a config file (lowest precedence after the preset).
        env: TOME_CONCURRENCY, TOME_RPM, TOME_TPM, TOME_TPD ("0" or "unlimited" = no limit).

    Raises:
        ConfigError: unknown tier or limit name, or a value that is not a non-negative whole number.
    """
    cat = catalog or load_catalog()
    limits = cat.tier(tier)
    limits = limits.override(**_checked(cat.limit_overrides if config is None else config, "the config file"))
    from_env = {
        name: _parse_limit(name, env.get(var), f"environment variable {var}")
        for name, var in ENV_VARS.items()
        if env.get(var) is not None
    }
    limits = limits.override(**from_env)
    return limits.override(**_checked(overrides, "the command-line flags"))


def max_call_tokens(limits: RateLimits) -> int | None:
    """The largest admission cost (prompt + max_tokens) these limits can ever admit, or None if unbounded."""
    caps = [v for v in (limits.tpm, limits.tpd) if v]
    return min(caps) if caps else None


def account_id(provider: str, api_key: str | None) -> str:
    """A stable, non-secret id for the account behind ``api_key``: provider + 12 hex chars of its SHA-256."""
    if not api_key:
        return provider
    digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:12]
    return f"{provider}:{digest}"


def tier_from_gid(gid: str | None) -> str | None:
    """The tier name in a ``Msh-Gid`` header value: "enterprise-tier-1" -> "tier1"; None if absent."""
    if not gid:
        return None
    match = _GID_TIER.search(gid)
    return f"tier{int(match.group(1))}" if match else None


def tier_warning(configured: RateLimits, gid: str | None, *, catalog: Catalog | None = None) -> str | None:
    """A warning when the configured limits exceed the tier the server reports in ``Msh-Gid``, else None."""
    observed = tier_from_gid(gid)
    if observed is None:
        return None
    try:
        actual = (catalog or load_catalog()).tier(observed)
    except ConfigError:
        return None
    higher = []
    for name in ("concurrency", "rpm", "tpm", "tpd"):
        mine, theirs = getattr(configured, name), getattr(actual, name)
        if theirs and (mine == 0 or mine > theirs):
            higher.append(f"{name} {mine or 'unlimited'} > {theirs}")
    if not higher:
        return None
    return (
        f"The configured rate limits are higher than this account's tier ({observed}, reported by the server): "
        f"{', '.join(higher)}. Expect 429s; pass --tier {observed} to match the account."
    )
