"""Read configs/*.toml into small frozen settings objects, validated once at the edge."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.config_schema import validate_config
from pipeline.errors import ConfigError
from pipeline.scripts import CJK_LANGUAGES


def config_dir() -> Path:
    """The folder holding models.toml, tiers.toml, ...; ``TOME_CONFIG_DIR`` overrides."""
    env = os.environ.get("TOME_CONFIG_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here / "_configs", here.parent / "configs"):
        if (candidate / "models.toml").is_file():
            return candidate
    raise ConfigError("tome's configs/ folder was not found; set TOME_CONFIG_DIR.")


def tome_home() -> Path:
    """tome's state directory: ``TOME_HOME`` or the platform's per-user data directory (created)."""
    import platformdirs

    env = os.environ.get("TOME_HOME")
    home = Path(env) if env else Path(platformdirs.user_data_dir("tome", appauthor=False))
    _check_home(str(home), "TOME_HOME" if env else "tome's data folder")
    return home


@cache
def _check_home(home: str, what: str) -> None:
    """Create ``home`` and prove a file can be written in it (once per process and folder)."""
    import tempfile

    try:
        Path(home).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".tome-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{what} {home} is not a folder tome can write in ({exc.strerror or exc}); point TOME_HOME at a "
            "writable folder."
        ) from None


def user_config_path() -> Path | None:
    """The user's ``tome.toml``: ``TOME_CONFIG``, else ./tome.toml, else $TOME_HOME/tome.toml; None if none."""
    env = os.environ.get("TOME_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"TOME_CONFIG names {path}, which does not exist.")
        return path
    for candidate in (Path.cwd() / "tome.toml", tome_home() / "tome.toml"):
        if candidate.is_file():
            return candidate
    return None


def _read(name: str, directory: Path | None = None) -> dict[str, Any]:
    path = (directory or config_dir()) / name
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"Config file {path} is missing.") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Config file {path} is not UTF-8 text (byte {exc.start}); is it the right file?") from None
    except (PermissionError, IsADirectoryError) as exc:
        raise ConfigError(f"Config file {path} cannot be read ({exc.strerror}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A model: its context window, local tokenizer, calibration and prices (per 1M tokens)."""

    name: str
    provider: str
    context_tokens: int
    encoding: str = "cl100k_base"
    calibration: float = 1.0
    calibration_cjk: float | None = None  # for Chinese/Japanese/Korean text, where cl100k over-counts
    safety_margin_tokens: int = 256
    price_input: float = 0.0
    price_output: float = 0.0
    currency: str = "USD"

    def for_language(self, language: str) -> ModelSpec:
        """This model with the calibration that fits a document in ``language`` ("zh", "en", ...)."""
        if language in CJK_LANGUAGES and self.calibration_cjk is not None:
            return replace(self, calibration=self.calibration_cjk)
        return self

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Price of a call with these token counts."""
        return (prompt_tokens * self.price_input + completion_tokens * self.price_output) / 1_000_000


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    """An OpenAI-compatible endpoint and how it differs from OpenAI."""

    name: str
    base_url: str
    api_key_env: str
    usage_in_choice: bool = False
    temperature_max: float = 2.0
    api_key_required: bool = True  # local servers (vLLM, Ollama, llama.cpp) usually take no key
    # An answer cut off at max_tokens: "continue" it in partial mode (a prefilled assistant message; Moonshot)
    # or "trim" it to its last complete sentence. Chosen by bench/bench_cutoff.py; see pipeline/engine/cutoff.py.
    cutoff_recovery: str = "trim"


@dataclass(frozen=True, kw_only=True)
class RateLimits:
    """Concurrency, requests/min, tokens/min, tokens/day; 0 means unlimited."""

    concurrency: int
    rpm: int = 0
    tpm: int = 0
    tpd: int = 0

    def override(self, **values: int | None) -> RateLimits:
        """A copy with the given limits replaced (None keeps the current value)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


@dataclass(frozen=True, kw_only=True)
class Defaults:
    """The embedded defaults from configs/defaults.toml."""

    model: str
    provider: str
    tier: str
    length: str
    language: str
    context_strategy: str
    context_lag: int
    context_share: float
    chunk_output_tokens: int
    prompt_overhead_tokens: int
    max_depth: int
    temperature: float
    connect_timeout_s: float
    read_timeout_s: float
    max_retries: int
    max_cost: float = 0.0  # --max-cost: stop before calls would cost more than this (model's currency); 0 = no cap
    lengths: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    """Everything in configs/: models, providers, tiers, defaults and prompt versions."""

    models: dict[str, ModelSpec]
    providers: dict[str, ProviderSpec]
    tiers: dict[str, RateLimits]
    defaults: Defaults
    prompt_versions: dict[str, str]
    limit_overrides: dict[str, int] = field(default_factory=dict)  # [limits] of the user's tome.toml
    # Models whose window a local server stated (pipeline.local_models), with where it was read.
    server_windows: dict[str, str] = field(default_factory=dict)

    def model(self, name: str) -> ModelSpec:
        """The named model, or a ConfigError listing the known ones."""
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise ConfigError(
                f"Unknown model '{name}' (known: {known}). To use it, declare it in tome.toml: "
                f'[models."{name}"] provider = "<provider>", context_tokens = <its context window>.'
            ) from None

    def provider(self, name: str) -> ProviderSpec:
        """The named provider, or a ConfigError listing the known ones."""
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers))
            raise ConfigError(f"Unknown provider '{name}'. Known providers: {known}.") from None

    def tier(self, name: str) -> RateLimits:
        """The named rate tier, or a ConfigError listing the known ones."""
        try:
            return self.tiers[name.lower()]
        except KeyError:
            known = ", ".join(sorted(self.tiers))
            raise ConfigError(f"Unknown tier '{name}'. Known tiers: {known}.") from None

    def target_tokens(self, length: str | int) -> int:
        """Final-summary target in tokens from 'short'/'medium'/'long' or a number."""
        if isinstance(length, int):
            value = length
        elif length in self.defaults.lengths:
            return self.defaults.lengths[length]
        else:
            try:
                value = int(str(length).strip())
            except ValueError:
                raise ConfigError(
                    f"Invalid length '{length}': use short, medium, long, a number of tokens, words (300w) "
                    "or characters (500字, 500c)."
                ) from None
        if value < 20:
            raise ConfigError(f"Invalid length {value}: a summary needs at least 20 tokens.")
        return value


def _build(cls: type, name: str, raw: dict[str, Any], where: str) -> Any:
    try:
        return cls(name=name, **raw)
    except TypeError as exc:
        raise ConfigError(f"Bad entry '{name}' in {where}: {exc}") from exc




def _settings_fields() -> dict[str, frozenset[str]]:
    """The keys each settings class takes, so a key added there is not refused before the schema knows it."""
    from dataclasses import fields

    def names(cls: type) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))

    return {"models": names(ModelSpec), "providers": names(ProviderSpec), "tiers": names(RateLimits),
            "defaults": names(Defaults), "limits": names(RateLimits)}  # fmt: skip


@cache
def _load_catalog(directory: str, user_file: str | None) -> Catalog:
    d = Path(directory)
    user: dict[str, Any] = {}
    if user_file:
        user = _read(Path(user_file).name, Path(user_file).parent)
        validate_config(user, user_file, also_known=_settings_fields())
    shipped = {
        "models": _read("models.toml", d).get("models", {}),
        "providers": _read("providers.toml", d).get("providers", {}),
        "tiers": _read("tiers.toml", d).get("tiers", {}),
        "defaults": _read("defaults.toml", d),
    }
    validate_config(shipped, f"{d} (models/providers/tiers/defaults.toml)", also_known=_settings_fields())
    where = f"models.toml or {user_file}" if user_file else "models.toml"
    raw_models = {**_read("models.toml", d).get("models", {}), **user.get("models", {})}
    models = {n: _build(ModelSpec, n, v, where) for n, v in raw_models.items()}
    raw_providers = {**_read("providers.toml", d).get("providers", {}), **user.get("providers", {})}
    providers = {n: _build(ProviderSpec, n, v, "providers.toml") for n, v in raw_providers.items()}
    tiers: dict[str, RateLimits] = {}
    for n, v in {**_read("tiers.toml", d).get("tiers", {}), **user.get("tiers", {})}.items():
        try:
            tiers[n.lower()] = RateLimits(**v)
        except TypeError as exc:
            raise ConfigError(f"Bad tier '{n}': {exc}") from exc
    raw_defaults = {**_read("defaults.toml", d), **user.get("defaults", {})}
    raw_defaults["lengths"] = {**_read("defaults.toml", d).get("lengths", {}), **user.get("defaults", {}).get("lengths", {})}
    try:
        defaults = Defaults(**raw_defaults)
    except TypeError as exc:
        raise ConfigError(f"Bad defaults ({user_file or 'defaults.toml'}): {exc}") from exc
    prompts = _read("prompts.toml", d).get("prompts", {})
    return Catalog(models, providers, tiers, defaults, prompts, dict(user.get("limits", {})))


def load_catalog(directory: Path | None = None) -> Catalog:
    """The configuration catalog: configs/ (or ``directory``) overlaid with the user's tome.toml, if any."""
    user = user_config_path()
    return _load_catalog(str((directory or config_dir()).resolve()), str(user.resolve()) if user else None)
