"""A local server's models in the catalog: its window wins over tome.toml, and a model it serves needs no entry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from pipeline.config import Catalog, ModelSpec
from pipeline.errors import ConfigError
from pipeline.llm.probe import ServerModels, probe_server

log = logging.getLogger("tome.config")

TEMPLATE_MODEL = "local"  # configs/models.toml's entry for "a model behind a local server": encoding, margins


def declare_hint(model: str, provider: str, window: str = "<its context window>") -> str:
    """How to declare ``model`` in tome.toml, as one line."""
    return f'declare it in tome.toml: [models."{model}"] provider = "{provider}", context_tokens = {window}'


def with_server_window(
    catalog: Catalog,
    *,
    provider: str,
    model: str,
    base_url: str | None = None,
    probe: Callable[[str, str], ServerModels] = probe_server,
) -> Catalog:
    """``catalog`` with ``model`` as the local server at ``base_url`` runs it (unchanged for hosted providers).

    Raises:
        ConfigError: the model is not in the catalog and the server does not serve it, or does not say its window.
    """
    spec = catalog.provider(provider)
    if spec.api_key_required:  # hosted APIs do not state windows; their models.toml entries are the truth
        return catalog
    url = (base_url or spec.base_url).rstrip("/")
    declared = catalog.models.get(model)
    info = probe(url, model)
    if declared is None:
        return _add_served_model(catalog, provider=provider, model=model, url=url, info=info)
    if info.window and info.window != declared.context_tokens:
        log.warning(
            "The configuration gives '%s' a %d-token context, but the server at %s runs it with %d tokens (%s); "
            "using %d. Set context_tokens = %d in tome.toml to silence this.",
            model,
            declared.context_tokens,
            url,
            info.window,
            info.source,
            info.window,
            info.window,
        )
        return _with_model(catalog, replace(declared, context_tokens=info.window), info.source)
    if info.window:
        return replace(catalog, server_windows={**catalog.server_windows, model: info.source})
    return catalog


def _add_served_model(
    catalog: Catalog, *, provider: str, model: str, url: str, info: ServerModels
) -> Catalog:
    if info.models is None:
        raise ConfigError(
            f"Unknown model '{model}', and the server at {url} did not list its models (is it running?); "
            f"{declare_hint(model, provider)}."
        )
    if not info.serves(model):
        served = ", ".join(info.models) or "nothing"
        raise ConfigError(
            f"The server at {url} does not serve '{model}' (it serves: {served}); pass one of those as --model, "
            f"or {declare_hint(model, provider)}."
        )
    if not info.window:
        raise ConfigError(
            f"The server at {url} serves '{model}' but does not say its context window; "
            f"{declare_hint(model, provider, '<the server’s n_ctx / num_ctx / max-model-len>')}."
        )
    template = catalog.models.get(TEMPLATE_MODEL) or ModelSpec(
        name=model, provider=provider, context_tokens=0
    )
    spec = replace(template, name=model, provider=provider, context_tokens=info.window)
    log.info(
        "'%s' is not in the configuration: using the server's %d-token context (%s)",
        model,
        info.window,
        info.source,
    )
    return _with_model(catalog, spec, info.source)


def _with_model(catalog: Catalog, spec: ModelSpec, source: str) -> Catalog:
    return replace(
        catalog, models={**catalog.models, spec.name: spec}, server_windows={**catalog.server_windows, spec.name: source}
    )


__all__ = ["declare_hint", "with_server_window"]
