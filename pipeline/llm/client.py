"""The async HTTP client for Moonshot and any OpenAI-compatible Chat Completions server."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from pipeline.config import Catalog, ProviderSpec, load_catalog
from pipeline.errors import (
    ConfigError,
    DocumentNotFoundError,
    LLMError,
    LLMStatusError,
    NoTextLayerError,
    OverloadedError,
    RateLimitError,
    ServerError,
)
from pipeline.llm.admission import RateBudget
from pipeline.llm.exchange import Exchange
from pipeline.llm.providers import DEFAULT_PROVIDER, api_key_for, chat_body, resolve_provider
from pipeline.llm.retry import RetryHook, RetryPolicy, with_retries
from pipeline.llm.types import ChatRequest, Completion, Message, ModelInfo, Usage
from pipeline.llm.unlimited import UnlimitedBudget

log = logging.getLogger("tome.llm")

MAX_READ_TIMEOUT_S = 300.0  # Moonshot's gateway gives up after 5 minutes; waiting longer is pointless
REFUSED_STATUSES = (400, 429)  # answered before the gateway admits a call: no tokens counted
# Moonshot's chat call counts a few tokens more than its estimate endpoint for the same messages (~3 seen);
# admission must never count less than the gateway will (one token over a full TPM window is a 429).
ESTIMATE_TO_CHAT_TOKENS = 8


@cache
def _ssl_context() -> ssl.SSLContext:
    # Building the default context (loading CA certificates) costs ~40 ms; one per process is enough.
    return httpx.create_ssl_context()


class OpenAICompatibleClient:
    """Chat completions over HTTP with typed errors, one retry loop and an optional rate budget.

    Implements :class:`pipeline.llm.types.ChatBackend`. Every attempt, retries included, is admitted
    by ``budget``; 429s are reported to it before the retry.
    """

    billable = True
    calibration: float | None = None  # usage comes from the provider: the engine learns the ratio
    headroom: float | None = None  # a model may overshoot the length it is asked for: the engine learns by how much
    reads_prompts = True
    extracts_files = False

    def __init__(
        self,
        provider: ProviderSpec | str = DEFAULT_PROVIDER,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str | None = None,
        concurrency: int = 8,
        connect_timeout_s: float | None = None,
        read_timeout_s: float | None = None,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        catalog: Catalog | None = None,
        env: Mapping[str, str] | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        """Args:
        provider: a name in configs/providers.toml or a ProviderSpec (base URL, key variable, quirks).
        api_key: the key; default: the provider's environment variable (ConfigError when unset).
        base_url: overrides the provider's (e.g. a local test server), ending in ``/v1``.
        model: the model for calls that need one but get none (estimate_tokens).
        concurrency: keep-alive connection pool size; match the rate tier's concurrency.
        connect_timeout_s / read_timeout_s: default configs/defaults.toml's (read: at most 300 s).
        retry: the retry policy; default: ``RetryPolicy(max_retries=defaults.max_retries)``.
        http_client / transport: injected I/O (the client does not close an injected http_client).
        sleep / rand: injected into the retry loop so tests never really wait.
        on_retry: told (seconds, reason) before each wait for a retry; progress displays set it later too.
        """
        self._spec = resolve_provider(provider, catalog)
        self._key = api_key_for(self._spec, api_key, env)
        self.name = self._spec.name
        self.cutoff_recovery = self._spec.cutoff_recovery  # "continue": the server takes a partial prefill
        self.planning_window: int | None = None  # a server's model plans with the model's own window
        self.base_url = (base_url or self._spec.base_url).rstrip("/")
        defaults = (catalog or load_catalog()).defaults
        self.model = model or defaults.model
        # Unless given, timeouts and retries come from configs/defaults.toml (and the user's tome.toml).
        connect_timeout_s = defaults.connect_timeout_s if connect_timeout_s is None else connect_timeout_s
        read_timeout_s = defaults.read_timeout_s if read_timeout_s is None else read_timeout_s
        if not 0 < connect_timeout_s <= MAX_READ_TIMEOUT_S:
            raise ConfigError(
                f"connect_timeout_s must be in (0, {MAX_READ_TIMEOUT_S:.0f}] seconds, got {connect_timeout_s}."
            )
        if not 0 < read_timeout_s <= MAX_READ_TIMEOUT_S:
            raise ConfigError(f"read timeout must be in (0, {MAX_READ_TIMEOUT_S:.0f}] seconds, got {read_timeout_s}.")
        if retry is None and defaults.max_retries < 0:
            raise ConfigError(f"max_retries must be 0 or more, got {defaults.max_retries}.")
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {concurrency}.")
        # pool=None: waiting for a free connection is governed by the budget, not a timeout.
        self._timeout = httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=read_timeout_s, pool=None)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            transport=transport,
            verify=_ssl_context(),
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self._retry = retry or RetryPolicy(max_retries=defaults.max_retries)
        self._budget: RateBudget = budget if budget is not None else UnlimitedBudget()
        self._sleep = sleep
        self._rand = rand
        self.on_retry = on_retry
        self._io = Exchange(
            http=self._http, timeout=self._timeout, key=self._key, key_env=self._spec.api_key_env,
            on_response=self._observe_tier,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.name!r}, base_url={self.base_url!r}, api_key='***')"

    @property
    def cache_namespace(self) -> str:
        """Answers are cached per provider (and model, in the key)."""
        return self.name

    async def extract_file(self, path: str | Path) -> str:
        """Only Moonshot's client reads image-only documents (see ``extracts_files``)."""
        raise NoTextLayerError(f"{path} has no text layer, and {self.name} has no file-extract service.")

    async def __aenter__(self) -> OpenAICompatibleClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (not an injected http_client)."""
        if self._owns_http:
            await self._http.aclose()

    # --- chat ------------------------------------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> Completion:
        """One chat completion (JSON or SSE per ``request.stream``), retried per the policy.

        Raises:
            LLMError subclasses (see pipeline.errors); QuotaExhaustedError stops at once.
        """
        started = time.monotonic()

        async def attempt(_retries_taken: int) -> Completion:
            tokens = request.admission_tokens
            admit = self._budget.admit(tokens) if request.order is None else self._budget.admit(tokens, order=request.order)
            async with admit as slot:
                try:
                    completion = await self._send_chat(request)
                except LLMStatusError as exc:
                    if exc.status in REFUSED_STATUSES:
                        # Refused before admission (400 / 429): the gateway counted nothing, nor does the window.
                        slot.record(Usage(), charged_tokens=0)
                    raise
                prompt = completion.usage.prompt_tokens
                # The gateway charged the real prompt + max_tokens at admission; the budget keeps that count.
                slot.record(completion.usage, charged_tokens=prompt + request.max_tokens if prompt else None)
                return completion

        completion, attempts = await with_retries(
            attempt,
            policy=self._retry,
            sleep=self._sleep,
            rand=self._rand,
            on_failure=self._tell_budget,
            on_retry=self.on_retry,
            what=f"{self.name} {request.model}",
        )
        u = completion.usage
        log.info(
            "%s %s prompt=%d completion=%d cached=%d latency=%.2fs total=%.2fs attempts=%d finish=%s request_id=%s",
            self.name,
            completion.model,
            u.prompt_tokens,
            u.completion_tokens,
            u.cached_tokens,
            completion.latency_s,
            time.monotonic() - started,
            attempts,
            completion.finish_reason,
            completion.request_id,
        )
        return replace(completion, attempts=attempts)

    def _tell_budget(self, exc: LLMError) -> None:
        if isinstance(exc, RateLimitError):
            self._budget.on_rate_limited(
                limit_kind=exc.limit_kind, retry_after=exc.retry_after, limit_value=exc.limit_value
            )
        elif isinstance(exc, OverloadedError):
            self._budget.on_rate_limited(limit_kind="overloaded", retry_after=exc.retry_after)

    async def _send_chat(self, request: ChatRequest) -> Completion:
        body = chat_body(self._spec, request)
        return await self._io.chat(f"{self.base_url}/chat/completions", body, stream=request.stream, model=request.model)

    def _observe_tier(self, resp: httpx.Response) -> None:
        # Moonshot names the account's tier in Msh-Gid; the budget warns once if it was configured higher.
        gid = resp.headers.get("msh-gid")
        if gid:
            self._budget.observe_tier(gid)

    # --- other endpoints -------------------------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        """The models this key may use (GET /models)."""
        data = await self._call_json("GET", "/models")
        models = []
        for item in data.get("data") or ():
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                ctx = item.get("context_length")
                models.append(
                    ModelInfo(
                        id=item["id"],
                        context_length=int(ctx) if isinstance(ctx, int | float) else None,
                        owned_by=item.get("owned_by"),
                    )
                )
        return models

    async def _call_json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        """A JSON endpoint with the same error mapping and retry policy as chat (no budget: not a chat call)."""
        url = f"{self.base_url}{path}"

        async def attempt(_retries_taken: int) -> dict[str, Any]:
            return await self._io.request_json(method, url, f"{method} {path}", **kw)

        data, _ = await with_retries(
            attempt,
            policy=self._retry,
            sleep=self._sleep,
            rand=self._rand,
            on_retry=self.on_retry,
            what=f"{method} {path}",
        )
        return data

    async def count_prompt_tokens(self, messages: Sequence[Message]) -> int | None:
        """The server's own count of a chat prompt before sending it, or None when it offers no such count."""
        return None

    # --- helpers ---------------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return self._io.headers()


class MoonshotClient(OpenAICompatibleClient):
    """The Moonshot (Kimi) client: chat plus the token-estimate and file-extract endpoints."""

    extracts_files = True

    def __init__(self, provider: ProviderSpec | str = DEFAULT_PROVIDER, **kw: Any) -> None:
        super().__init__(provider, **kw)
        self._no_estimate = False

    async def estimate_tokens(self, messages: Sequence[Message], *, model: str | None = None) -> int:
        """Moonshot's own count of the prompt tokens of ``messages`` (the chat call counts ~3 more)."""
        data = await self._call_json(
            "POST",
            "/tokenizers/estimate-token-count",
            json={"model": model or self.model, "messages": [m.as_dict() for m in messages]},
        )
        # Docs show {"data":{"total_tokens":N}}; the real answer wraps it in {"code":0,…,"status":true}.
        if data.get("code") not in (None, 0) or data.get("status") is False:
            raise ServerError(f"The token-count endpoint failed: {data.get('message') or data}", status=200)
        inner = data.get("data")
        total = inner.get("total_tokens") if isinstance(inner, dict) else None
        if not isinstance(total, int):
            raise ServerError("The token-count endpoint answered without data.total_tokens.", status=200)
        return total

    async def count_prompt_tokens(self, messages: Sequence[Message]) -> int | None:
        """The estimate endpoint's count plus what the chat call adds (None once the server has refused it)."""
        if self._no_estimate:
            return None
        try:
            return await self.estimate_tokens(messages) + ESTIMATE_TO_CHAT_TOKENS
        except LLMStatusError as exc:  # a Moonshot-compatible gateway without the endpoint: not asked again
            log.info("the token-count endpoint is not available (%s): counting locally", exc)
            self._no_estimate = True
            return None

    async def extract_file(self, path: str | Path) -> str:
        """Text of a document extracted by Moonshot (upload with purpose=file-extract, read, delete).

        Raises:
            DocumentNotFoundError: ``path`` is not a file.
            CorruptDocumentError: the server could not extract text from it.
        """
        p = Path(path)
        if not p.is_file():
            raise DocumentNotFoundError(f"{p} does not exist or is not a file.")
        mime = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        upload = await self._call_json(
            "POST", "/files", files={"file": (p.name, p.read_bytes(), mime)}, data={"purpose": "file-extract"}
        )
        file_id = upload.get("id")
        if not isinstance(file_id, str):
            raise ServerError("The file upload answered without an id.", status=200)
        try:
            data = await self._call_json("GET", f"/files/{file_id}/content")
        finally:
            await self._delete_file(file_id)
        content = data.get("content")
        if not isinstance(content, str):
            raise ServerError("The file-content endpoint answered without 'content'.", status=200)
        return content

    async def _delete_file(self, file_id: str) -> None:
        # Accounts hold a limited number of files; deleting is a courtesy, its failure is not the caller's.
        try:
            resp = await self._http.delete(f"{self.base_url}/files/{file_id}", headers=self._headers())
            if resp.status_code >= 400:
                log.debug("deleting file %s answered %d", file_id, resp.status_code)
        except httpx.HTTPError as exc:
            log.debug("deleting file %s failed: %s", file_id, type(exc).__name__)


def client_for(provider: ProviderSpec | str = DEFAULT_PROVIDER, **kw: Any) -> OpenAICompatibleClient:
    """The right client class for a provider (Moonshot's endpoints for moonshot/moonshot-ai)."""
    spec = resolve_provider(provider, kw.get("catalog"))
    cls = MoonshotClient if spec.name.startswith("moonshot") else OpenAICompatibleClient
    return cls(spec, **kw)
