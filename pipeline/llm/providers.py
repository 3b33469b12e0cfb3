"""Where provider differences live: base URL, API key lookup, temperature range, streaming usage."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pipeline.config import Catalog, ProviderSpec, load_catalog
from pipeline.errors import ConfigError
from pipeline.llm.types import ChatRequest

DEFAULT_PROVIDER = "moonshot"


class Secret:
    """An API key that never shows itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced (servers may echo parts of requests)."""
        return text.replace(self._value, "sk-***") if self._value else text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def resolve_provider(provider: ProviderSpec | str, catalog: Catalog | None = None) -> ProviderSpec:
    """A ProviderSpec from a spec or a name in configs/providers.toml."""
    if isinstance(provider, ProviderSpec):
        return provider
    return (catalog or load_catalog()).provider(provider)


def api_key_for(spec: ProviderSpec, explicit: str | None = None, env: Mapping[str, str] | None = None) -> Secret:
    """The key passed explicitly, else the provider's environment variable; ConfigError when neither is set."""
    value = explicit if explicit is not None else (env if env is not None else os.environ).get(spec.api_key_env)
    if (not value or not value.strip()) and not spec.api_key_required:
        return Secret("")
    if not value or not value.strip():
        raise ConfigError(
            f"Set {spec.api_key_env} to the API key for provider '{spec.name}', or choose --backend extractive to run offline."
        )
    return Secret(value.strip())


def clamp_temperature(spec: ProviderSpec, temperature: float) -> float:
    """Temperature inside the provider's range (Moonshot accepts [0, 1], OpenAI [0, 2])."""
    return min(max(temperature, 0.0), spec.temperature_max)


def chat_body(spec: ProviderSpec, request: ChatRequest) -> dict[str, Any]:
    """The JSON body of POST /chat/completions for this provider."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [m.as_dict() for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": clamp_temperature(spec, request.temperature),
        "stream": request.stream,
    }
    if request.stream and not spec.usage_in_choice:
        # OpenAI-style servers only report usage in a final chunk when asked to.
        body["stream_options"] = {"include_usage": True}
    return body
