"""The one validated shape of configs/*.toml and the user's tome.toml (pydantic, strict, unknown keys refused).

A mistake becomes one ConfigError line naming the file, the key and what is wrong with it (with a "did you mean"
for a misspelt key), instead of a TypeError deep inside a dataclass.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.errors import ConfigError

_STRICT = ConfigDict(strict=True, extra="forbid")


class ModelSchema(BaseModel):
    model_config = _STRICT

    provider: str
    context_tokens: int = Field(ge=512)
    encoding: str = "cl100k_base"
    calibration: float = Field(default=1.0, gt=0, le=10)
    calibration_cjk: float | None = Field(default=None, gt=0, le=10)
    safety_margin_tokens: int = Field(default=256, ge=0)
    price_input: float = Field(default=0.0, ge=0)
    price_output: float = Field(default=0.0, ge=0)
    currency: str = "USD"


class ProviderSchema(BaseModel):
    model_config = _STRICT

    base_url: str
    api_key_env: str
    usage_in_choice: bool = False
    temperature_max: float = Field(default=2.0, ge=0)
    api_key_required: bool = True
    cutoff_recovery: Literal["trim", "continue"] = "trim"

    @field_validator("base_url")
    @classmethod
    def _plain_url(cls, value: str) -> str:
        try:
            check_base_url(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value


class TierSchema(BaseModel):
    model_config = _STRICT

    concurrency: int = Field(ge=0)
    rpm: int = Field(default=0, ge=0)
    tpm: int = Field(default=0, ge=0)
    tpd: int = Field(default=0, ge=0)


class LimitsSchema(BaseModel):
    model_config = _STRICT

    concurrency: int | None = Field(default=None, ge=0)
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    tpd: int | None = Field(default=None, ge=0)


class DefaultsSchema(BaseModel):
    """[defaults]: every key optional in tome.toml (the shipped defaults.toml gives them all)."""

    model_config = _STRICT

    model: str | None = None
    provider: str | None = None
    tier: str | None = None
    length: str | int | None = None
    language: str | None = None
    context_strategy: Literal["none", "lagged"] | None = None
    context_lag: int | None = Field(default=None, ge=1, le=1000)
    context_share: float | None = Field(default=None, ge=0, lt=1)
    chunk_output_tokens: int | None = Field(default=None, ge=16)
    prompt_overhead_tokens: int | None = Field(default=None, ge=0)
    max_depth: int | None = Field(default=None, ge=1, le=64)
    temperature: float | None = Field(default=None, ge=0, le=2)
    connect_timeout_s: float | None = Field(default=None, gt=0)
    read_timeout_s: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0, le=100)
    max_cost: float | None = Field(default=None, ge=0)
    lengths: dict[str, int] | None = None

    @field_validator("length")
    @classmethod
    def _length(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, int) and value < 20:
            raise ValueError("a summary needs at least 20 tokens")
        return value

    @field_validator("lengths")
    @classmethod
    def _lengths(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        for name, tokens in (value or {}).items():
            if tokens < 20:
                raise ValueError(f"length '{name}' = {tokens}: a summary needs at least 20 tokens")
        return value


class UserConfig(BaseModel):
    """The whole of tome.toml."""

    model_config = _STRICT

    models: dict[str, ModelSchema] = {}
    providers: dict[str, ProviderSchema] = {}
    tiers: dict[str, TierSchema] = {}
    defaults: DefaultsSchema = DefaultsSchema()
    limits: LimitsSchema = LimitsSchema()


_SCHEMAS: dict[str, type[BaseModel]] = {
    "models": ModelSchema,
    "providers": ProviderSchema,
    "tiers": TierSchema,
    "defaults": DefaultsSchema,
    "limits": LimitsSchema,
}


def validate_config(
    raw: dict[str, Any], where: str, *, also_known: dict[str, frozenset[str]] | None = None
) -> UserConfig:
    """``raw`` (a parsed tome.toml, or the shipped files merged) checked; ConfigError naming key and file.

    ``also_known``: per section, keys the settings classes take that this schema does not describe yet; they
    are let through unchecked rather than refused as unknown.
    """
    try:
        return UserConfig.model_validate(_without(raw, also_known or {}))
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_describe(exc.errors()[0])}") from None


def _without(raw: dict[str, Any], also_known: dict[str, frozenset[str]]) -> dict[str, Any]:
    def strip(section: str, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        schema = _SCHEMAS[section]
        skip = also_known.get(section, frozenset()) - set(schema.model_fields)
        return {k: v for k, v in values.items() if k not in skip}

    out: dict[str, Any] = {}
    for section, values in raw.items():
        if section in ("models", "providers", "tiers") and isinstance(values, dict):
            out[section] = {name: strip(section, entry) for name, entry in values.items()}
        elif section in _SCHEMAS:
            out[section] = strip(section, values)
        else:
            out[section] = values
    return out


def check_base_url(value: str) -> None:
    """Refuse a base URL that is not http(s) or that carries a user name or password."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL '{_redacted(value)}' is not an http(s) URL, e.g. https://api.moonshot.cn/v1.")
    if parts.username or parts.password:
        raise ConfigError(
            f"base URL '{_redacted(value)}' carries a user name or password; remove them and put the key in the "
            "provider's key variable (e.g. MOONSHOT_API_KEY)."
        )


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def _describe(error: Any) -> str:
    """One line for a pydantic error: "[section] key: what is wrong"."""
    loc = [str(part) for part in error["loc"]]
    key = _key_path(loc)
    if error["type"] == "extra_forbidden":
        return f"unknown key {key}{_did_you_mean(loc)}"
    if error["type"] == "missing":
        return f"{key} is missing"
    value = error.get("input")
    shown = f" = {value!r}" if not isinstance(value, dict | list) and "url" not in key else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{key}{shown}: {message}"


def _key_path(loc: list[str]) -> str:
    if not loc:
        return "the file"
    if len(loc) == 1:
        return f"[{loc[0]}]"
    if loc[0] in ("models", "providers", "tiers") and len(loc) >= 3:
        return f"[{loc[0]}.{loc[1]}] {'.'.join(loc[2:])}"
    return f"[{loc[0]}] {'.'.join(loc[1:])}"


def _did_you_mean(loc: list[str]) -> str:
    name = loc[-1]
    if len(loc) == 1:
        options = list(_SCHEMAS)
    else:
        schema = _SCHEMAS.get(loc[0])
        options = list(schema.model_fields) if schema is not None else []
    close = difflib.get_close_matches(name, options, n=1)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; known keys: {', '.join(options)}" if options else ""
