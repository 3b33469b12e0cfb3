"""Ask a local OpenAI-compatible server which models it serves and with what context window.

Each server says it its own way: vLLM in ``GET /v1/models`` (``max_model_len``), llama.cpp's llama-server in
``GET /props`` (``n_ctx``), Ollama in ``GET /api/ps`` (``context_length`` of a loaded model) or
``POST /api/show`` (a ``num_ctx`` parameter). llama-cpp-python's server says nothing: its window is learnt
from its first refusal instead. Every probe is best-effort: a failure only means "not known".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("tome.llm")

PROBE_TIMEOUT_S = 3.0
_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class ServerModels:
    """What a server said about itself; ``models`` is None when it could not be listed."""

    base_url: str
    models: tuple[str, ...] | None
    window: int | None = None  # the context window (prompt + completion) the asked-for model runs with
    source: str = ""  # where the window was read, for messages: "vLLM max_model_len", "llama-server /props"

    def serves(self, model: str) -> bool:
        return self.models is not None and any(_same_model(model, m) for m in self.models)


def _same_model(wanted: str, listed: str) -> bool:
    # Ollama lists "smollm2:latest" for "smollm2"; llama-server lists the GGUF path unless given an alias.
    return listed == wanted or listed.removesuffix(":latest") == wanted or listed.rsplit("/", 1)[-1] == wanted


def _positive_int(value: Any) -> int | None:
    return (
        int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None
    )


def server_root(base_url: str) -> str:
    """The server's root URL: ``base_url`` without its trailing ``/v1``."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def probe_server(
    base_url: str,
    model: str,
    *,
    headers: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> ServerModels:
    """The models ``base_url`` lists and the window it runs ``model`` with, as far as it says.

    Synchronous on purpose: it runs once, while a run's configuration is resolved, before any event loop work.
    """
    with httpx.Client(transport=transport, timeout=timeout_s, headers=dict(headers or {})) as http:

        def get(url: str, **kw: Any) -> Any:
            return _json(http, "GET", url, **kw)

        def post(url: str, **kw: Any) -> Any:
            return _json(http, "POST", url, **kw)

        base = base_url.rstrip("/")
        listed = get(f"{base}/models")
        entries = [
            e
            for e in (listed or {}).get("data") or ()
            if isinstance(e, dict) and isinstance(e.get("id"), str)
        ]
        models = tuple(e["id"] for e in entries) if listed is not None else None
        for entry in entries:
            if _same_model(model, entry["id"]):
                window = _positive_int(entry.get("max_model_len"))
                if window:
                    return ServerModels(base, models, window, "vLLM /v1/models max_model_len")
        root = server_root(base)
        for probe in (_llama_server_props, _ollama_ps, _ollama_show):
            found = probe(get, post, root, model)
            if found:
                window, source = found
                return ServerModels(base, models, window, source)
        return ServerModels(base, models)


Getter = Callable[..., Any]


def _llama_server_props(get: Getter, post: Getter, root: str, model: str) -> tuple[int, str] | None:
    props = get(f"{root}/props")
    if not isinstance(props, dict):
        return None
    settings = props.get("default_generation_settings")
    window = _positive_int(settings.get("n_ctx")) if isinstance(settings, dict) else None
    window = window or _positive_int(props.get("n_ctx"))
    return (window, "llama-server /props n_ctx") if window else None


def _ollama_ps(get: Getter, post: Getter, root: str, model: str) -> tuple[int, str] | None:
    running = get(f"{root}/api/ps")
    entries = running.get("models") if isinstance(running, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and any(
            _same_model(model, str(entry.get(k, ""))) for k in ("name", "model")
        ):
            window = _positive_int(entry.get("context_length"))
            if window:
                return window, "Ollama /api/ps context_length"
    return None


def _ollama_show(get: Getter, post: Getter, root: str, model: str) -> tuple[int, str] | None:
    shown = post(f"{root}/api/show", json={"model": model})
    parameters = shown.get("parameters") if isinstance(shown, dict) else None
    m = _NUM_CTX.search(parameters) if isinstance(parameters, str) else None
    # Without num_ctx in its Modelfile, Ollama runs a model with its own default window (OLLAMA_CONTEXT_LENGTH),
    # which /api/show does not state; the model's trained context_length is not the window it runs with.
    return (int(m.group(1)), "Ollama /api/show num_ctx") if m else None


def _json(http: httpx.Client, method: str, url: str, **kw: Any) -> Any:
    """The JSON answer of one request, or None on any failure (a probe is only a hint)."""
    try:
        resp = http.request(method, url, **kw)
    except httpx.HTTPError as exc:
        log.debug("probe %s %s failed: %s", method, url, type(exc).__name__)
        return None
    if resp.status_code != 200:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


__all__ = ["ServerModels", "probe_server", "server_root"]
