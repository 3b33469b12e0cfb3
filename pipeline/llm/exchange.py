"""One HTTP exchange with an OpenAI-compatible server: send, read a JSON or SSE answer, map failures to typed
errors (the client around it adds retries, the rate budget and logging)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from pipeline.errors import ServerError, TomeError
from pipeline.llm.error_mapping import error_from_response
from pipeline.llm.providers import Secret
from pipeline.llm.responses import parse_chat_json
from pipeline.llm.sse import read_chat_stream
from pipeline.llm.transport_errors import error_from_transport
from pipeline.llm.types import Completion, Usage

log = logging.getLogger("tome.llm")

_TRANSPORT_ERRORS = (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL)


@dataclass(frozen=True)
class Exchange:
    """How requests reach one server: the connection pool, timeouts and key (never logged: redacted in errors)."""

    http: httpx.AsyncClient
    timeout: httpx.Timeout
    key: Secret
    key_env: str
    on_response: Callable[[httpx.Response], None]  # told every successful response's headers (the account tier)

    def headers(self) -> dict[str, str]:
        key = self.key.reveal()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def error_kw(self) -> dict[str, Any]:
        return {"key_env": self.key_env, "redact": self.key.redact}

    def status_error(self, resp: httpx.Response) -> TomeError:
        return error_from_response(resp.status_code, resp.content, resp.headers, **self.error_kw())

    def json(self, resp: httpx.Response) -> Any:
        try:
            return json.loads(resp.content)
        except ValueError as exc:
            raise ServerError(
                f"The server answered {resp.status_code} with a body that is not JSON; the call is retried.",
                status=resp.status_code,
                request_id=resp.headers.get("msh-request-id"),
            ) from exc

    async def chat(self, url: str, body: dict[str, Any], *, stream: bool, model: str) -> Completion:
        """POST one chat completion and read its answer (SSE when ``stream``)."""
        started = time.monotonic()
        try:
            if stream:
                async with self.http.stream(
                    "POST", url, json=body, headers=self.headers(), timeout=self.timeout
                ) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        raise self.status_error(resp)
                    try:
                        acc = await read_chat_stream(resp.aiter_lines(), error_kw=self.error_kw())
                    except (httpx.HTTPError, httpx.StreamError) as exc:
                        raise error_from_transport(exc, url=url, in_stream=True, redact=self.key.redact) from exc
                    request_id = resp.headers.get("msh-request-id") or acc.id
                    self.on_response(resp)
                content, finish, usage, answered_by = acc.content, acc.finish_reason, acc.usage, acc.model
                if usage is None:
                    log.debug("stream from %s carried no usage; counting zero tokens", url)
            else:
                resp = await self.http.post(url, json=body, headers=self.headers(), timeout=self.timeout)
                if resp.status_code >= 400:
                    raise self.status_error(resp)
                content, finish, usage, body_id, answered_by = parse_chat_json(self.json(resp), status=resp.status_code)
                request_id = resp.headers.get("msh-request-id") or body_id
                self.on_response(resp)
        except _TRANSPORT_ERRORS as exc:
            raise error_from_transport(exc, url=url, redact=self.key.redact) from exc
        return Completion(
            content=content,
            finish_reason=finish,
            usage=usage or Usage(),
            model=answered_by or model,
            request_id=request_id,
            latency_s=time.monotonic() - started,
        )

    async def request_json(self, method: str, url: str, what: str, **kw: Any) -> dict[str, Any]:
        """One request to a JSON endpoint, its answer as a dict."""
        try:
            resp = await self.http.request(method, url, headers=self.headers(), timeout=self.timeout, **kw)
        except _TRANSPORT_ERRORS as exc:
            raise error_from_transport(exc, url=url, redact=self.key.redact) from exc
        if resp.status_code >= 400:
            raise self.status_error(resp)
        data = self.json(resp)
        if not isinstance(data, dict):
            raise ServerError(f"{what} answered with unexpected JSON.", status=resp.status_code)
        return data
