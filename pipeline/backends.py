"""Pick the backend a run uses: a provider's HTTP client, or the offline extractive backend."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pipeline.config import Catalog, load_catalog
from pipeline.errors import ConfigError
from pipeline.extractive import ExtractiveBackend
from pipeline.language import resolve_language
from pipeline.llm.admission import RateBudget
from pipeline.llm.client import client_for
from pipeline.llm.types import ChatBackend
from pipeline.settings import RunSettings

AUTO_PROVIDER = "moonshot"


def make_backend(
    name: str,
    settings: RunSettings,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    budget: RateBudget | None = None,
    concurrency: int = 8,
    catalog: Catalog | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[ChatBackend, str]:
    """The backend called ``name`` ("auto", "extractive" or a provider in configs/providers.toml) and a notice.

    "auto" is Moonshot when ``api_key`` is given or MOONSHOT_API_KEY is set, else the extractive backend.
    The notice is one line saying which backend runs (never the key).

    Raises:
        ConfigError: unknown provider, or a provider without its API key.
    """
    cat = catalog or load_catalog()
    environ = env if env is not None else os.environ
    choice = (name or "auto").strip().lower()
    if choice == "auto":
        provider = settings.provider if settings.provider.startswith("moonshot") else AUTO_PROVIDER
        key_env = cat.provider(provider).api_key_env
        if api_key or environ.get(key_env, "").strip():
            choice = provider
        else:
            return (
                _extractive(settings),
                f"{key_env} is not set: using the offline extractive backend (no network, no cost). "
                f"Set {key_env} to summarise with Kimi.",
            )
    if choice == "extractive":
        return _extractive(settings), "Using the offline extractive backend (no network, no cost)."
    if choice not in cat.providers:
        known = ", ".join(["auto", "extractive", *sorted(cat.providers)])
        raise ConfigError(f"Unknown backend '{name}'. Known backends: {known}.")
    client = client_for(
        choice,
        api_key=api_key,
        base_url=base_url,
        model=settings.model,
        budget=budget,
        concurrency=concurrency,
        catalog=cat,
        env=environ,
    )
    return client, f"Using {choice} ({settings.model}) at {client.base_url}."


def _extractive(settings: RunSettings) -> ExtractiveBackend:
    language = resolve_language(settings.language, None) if settings.language != "auto" else "en"
    return ExtractiveBackend(language=language)
