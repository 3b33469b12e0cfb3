"""Translate an httpx exception raised while sending a request or reading its answer into a tome error."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx

from pipeline.errors import (
    ConfigError,
    LLMConnectionError,
    LLMError,
    LLMTimeoutError,
    ServerUnreachableError,
    StreamInterruptedError,
    TomeError,
)
from pipeline.llm.error_mapping import error_from_response


def _host(request_url: str) -> str:
    try:
        return httpx.URL(request_url).host or request_url
    except (httpx.InvalidURL, TypeError):
        return request_url


def _unreachable_cause(exc: BaseException) -> str | None:
    """"connection refused" / "DNS failure" when that is what a connect error comes down to, else None."""
    if not isinstance(exc, httpx.ConnectError):
        return None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "DNS failure"
        current = current.__cause__ or current.__context__
    return None


def error_from_transport(
    exc: Exception, *, url: str = "", in_stream: bool = False, redact: Callable[[str], str] = lambda s: s
) -> TomeError:
    """The tome error for an httpx exception raised while sending a request or reading its answer.

    ``in_stream``: the response had started, so a dropped connection means an interrupted stream.
    """
    host = _host(url)
    what = redact(f"{type(exc).__name__}: {exc}".rstrip(": "))
    if isinstance(exc, httpx.TimeoutException):
        return LLMTimeoutError(f"{host} did not answer in time ({what}); the call is retried.")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigError(f"The base URL '{url}' is not valid ({what}); use http:// or https://…/v1.")
    if isinstance(exc, httpx.HTTPStatusError):
        return error_from_response(
            exc.response.status_code, exc.response.content, exc.response.headers, redact=redact
        )
    if in_stream and isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError | httpx.DecodingError):
        return StreamInterruptedError(f"The stream from {host} broke off before it finished ({what}).")
    unreachable = _unreachable_cause(exc)
    if unreachable == "connection refused":
        return ServerUnreachableError(
            f"Nothing answers at {url} (connection refused): the server is not started, or the port is wrong.",
            url=url,
            cause=unreachable,
        )
    if unreachable == "DNS failure":
        return ServerUnreachableError(
            f"The host of {url} cannot be found (DNS failure): check the host name in the base URL and the network.",
            url=url,
            cause=unreachable,
        )
    if isinstance(exc, httpx.ConnectError):
        return LLMConnectionError(f"Could not connect to {host} ({what}). Check the network and the base URL.")
    if isinstance(exc, httpx.HTTPError):
        return LLMConnectionError(f"The connection to {host} failed ({what}).")
    if isinstance(exc, httpx.StreamError):
        return LLMError(f"The response stream from {host} could not be read ({what}).")
    return LLMError(f"The call to {host} failed ({what}).")
