"""Translate HTTP statuses, error bodies and httpx exceptions into tome errors, each in one table."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from pipeline.errors import (
    AuthenticationError,
    ConfigError,
    ContentFilterError,
    ContextLengthError,
    CorruptDocumentError,
    InvalidRequestError,
    LLMConnectionError,
    LLMError,
    LLMStatusError,
    LLMTimeoutError,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    ServerUnreachableError,
    StreamInterruptedError,
    TomeError,
)
from pipeline.utc import next_utc_midnight

_TRY_AGAIN = re.compile(r"try again after\s+(\d+(?:\.\d+)?)\s*(?:seconds?|s)\b", re.IGNORECASE)
_TOKEN_LIMIT = re.compile(r"exceeded model token limit:\s*(\d+)(?:\s*\(requested:\s*(\d+)\))?", re.IGNORECASE)
# How servers word a context-length refusal (see context_numbers and tests/fixtures/servers/context):
# OpenAI, DeepSeek, vLLM, llama-cpp-python, OpenRouter, llama-server (directly or wrapped by Ollama), Moonshot.
_CONTEXT_REFUSAL = re.compile(
    r"input token length too long|context length|maximum context|context size|context window"
    r"|exceeded model token limit|longer than the context",
    re.IGNORECASE,
)
_CONTEXT_TYPES = frozenset({"exceed_context_size_error", "context_length_exceeded", "context_exceeded"})
_WINDOW = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),
    re.compile(r"available context size \((\d+) tokens?\)", re.IGNORECASE),
    re.compile(r"exceeds? (?:the )?context size \((\d+) tokens?\)", re.IGNORECASE),
    _TOKEN_LIMIT,
)
_REQUESTED = (
    re.compile(r"you requested (?:about )?(\d+) tokens", re.IGNORECASE),
    re.compile(r"\(requested:\s*(\d+)\)", re.IGNORECASE),
)
_PROMPT = (
    re.compile(r"\((\d+) (?:in the messages|of text input)", re.IGNORECASE),
    re.compile(r"your messages resulted in (\d+) tokens", re.IGNORECASE),
    re.compile(r"your request has (\d+) input tokens", re.IGNORECASE),
    re.compile(r"request \((\d+) tokens?\) exceeds", re.IGNORECASE),
    re.compile(r"prompt tokens \((\d+)\) exceeds", re.IGNORECASE),
)
_COMPLETION = (
    re.compile(r"(\d+) in the (?:completion|output)", re.IGNORECASE),
    re.compile(r"is too large:\s*(\d+)", re.IGNORECASE),
)
_CURRENT_LIMIT = re.compile(r"current:\s*(\d+),\s*limit:\s*(\d+)", re.IGNORECASE)
_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class ErrorInfo:
    """What a failed response said, parsed tolerantly (the body may be JSON, HTML or nothing)."""

    status: int
    message: str
    error_type: str | None
    request_id: str | None
    retry_after: float | None  # the server's wait hint: message text first, then headers
    key_env: str
    now: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)  # the body's error object (code, n_ctx, ...)

    @property
    def kw(self) -> dict[str, Any]:
        return {"status": self.status, "error_type": self.error_type, "request_id": self.request_id}


def retry_after_from_message(message: str) -> float | None:
    """Seconds from Moonshot's "please try again after N seconds", if present."""
    m = _TRY_AGAIN.search(message)
    return float(m.group(1)) if m else None


def retry_after_from_headers(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date); None when absent or bad."""
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _describe_text(text: str) -> str:
    text = text.strip()
    if not text:
        return "(empty body)"
    if text.startswith("<"):
        m = _HTML_TITLE.search(text)
        title = " ".join(m.group(1).split()) if m else ""
        return f"an HTML error page{': ' + title if title else ''}"
    return " ".join(text.split())[:300]


def parse_error_body(text: str) -> tuple[str, str | None]:
    """(message, type) from ``{"error":{"message","type"}}``, or a short description of a non-JSON body."""
    message, error_type, _ = parse_error_fields(text)
    return message, error_type


def parse_error_fields(text: str) -> tuple[str, str | None, dict[str, Any]]:
    """(message, type, the error object's fields) of an error body, JSON or not.

    Ollama wraps its runner's (llama-server's) JSON error as a string: ``{"error": "{\\"error\\": {...}}"}``;
    the inner object is read.
    """
    try:
        data = json.loads(text)
    except ValueError:
        return _describe_text(text), None, {}
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, str) and err.lstrip().startswith("{"):
            inner = parse_error_fields(err)
            if inner[2]:
                return inner
        if isinstance(err, dict):
            return str(err.get("message") or "").strip() or "(no message)", err.get("type"), err
        if isinstance(err, str):
            return err, data.get("type") if isinstance(data.get("type"), str) else None, data
        if isinstance(data.get("message"), str):
            # vLLM's older {"object":"error","message":…,"type":"BadRequestError","code":400}
            return data["message"], data.get("type") if isinstance(data.get("type"), str) else None, data
    return _describe_text(text), None, {}


def _first_int(patterns: tuple[re.Pattern[str], ...], text: str) -> int | None:
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            return int(m.group(1))
    return None


def _int_field(fields: Mapping[str, Any], name: str) -> int | None:
    value = fields.get(name)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def context_numbers(message: str, fields: Mapping[str, Any] | None = None) -> tuple[int | None, int | None, int | None]:
    """(window, requested, prompt) a context-length refusal states; None for each number it does not give.

    ``requested`` is prompt + completion; when the server names both parts but not the sum, it is their sum.
    """
    fields = fields or {}
    window = _int_field(fields, "n_ctx") or _first_int(_WINDOW, message)
    prompt = _int_field(fields, "n_prompt_tokens") or _first_int(_PROMPT, message)
    requested = _first_int(_REQUESTED, message)
    completion = _first_int(_COMPLETION, message)
    if requested is None and prompt is not None and completion is not None:
        requested = prompt + completion
    return window, requested, prompt


# --- builders: one per row of the table below --------------------------------------------------------------


def _content_filter(e: ErrorInfo) -> TomeError:
    return ContentFilterError(
        f"The provider's content filter rejected this text ({e.status}: {e.message}). "
        "Edit or skip the offending passage and run again.",
        **e.kw,
    )


def _context_length(e: ErrorInfo) -> TomeError:
    limit, requested, prompt = context_numbers(e.message, e.fields)
    said = [f"limit {limit}"] if limit else []
    said += [f"requested {requested}"] if requested else []
    said += [f"prompt {prompt}"] if prompt else []
    detail = ", ".join(said) or "no numbers given"
    return ContextLengthError(
        f"The prompt plus max_tokens exceeded the model's context ({detail}; server said: {e.message}). "
        "Split the input into smaller chunks or lower max_tokens.",
        limit=limit,
        requested=requested,
        prompt_tokens=prompt,
        **e.kw,
    )


def _invalid(e: ErrorInfo) -> TomeError:
    return InvalidRequestError(f"The server rejected the request ({e.status}: {e.message}).", **e.kw)


def _auth(e: ErrorInfo) -> TomeError:
    return AuthenticationError(
        f"The API key was rejected ({e.status}: {e.message}). Check {e.key_env}; keys for api.moonshot.cn "
        "and api.moonshot.ai are not interchangeable.",
        **e.kw,
    )


def _balance(e: ErrorInfo) -> TomeError:
    return QuotaExhaustedError(
        f"The account's balance quota is exhausted ({e.status}: {e.message}). Top up the account, then run "
        "the same command again: finished work is cached and the run resumes.",
        quota="balance",
        **e.kw,
    )


def _permission(e: ErrorInfo) -> TomeError:
    return PermissionDeniedError(
        f"The account may not use this resource ({e.status}: {e.message}). Check the plan and the model name.",
        **e.kw,
    )


def _not_found(e: ErrorInfo) -> TomeError:
    if "model" in e.message.lower():
        return ModelNotFoundError(
            f"The model is not available ({e.status}: {e.message}). Check the model name and that this key "
            "may use it.",
            **e.kw,
        )
    return LLMStatusError(f"Not found ({e.status}: {e.message}).", **e.kw)


def _request_timeout(e: ErrorInfo) -> TomeError:
    return LLMTimeoutError(f"The server timed out reading the request ({e.status}: {e.message}).")


def _tpd(e: ErrorInfo) -> TomeError:
    resets = next_utc_midnight(e.now)
    m = _CURRENT_LIMIT.search(e.message)
    used = f" (current {m.group(1)}, limit {m.group(2)})" if m else ""
    return QuotaExhaustedError(
        f"The daily token quota (TPD) is used up{used}; it resets at {resets:%Y-%m-%d %H:%M} UTC. "
        "Run the same command again after that: the run resumes where it stopped.",
        quota="tpd",
        resets_at=resets,
        **e.kw,
    )


def _overloaded(e: ErrorInfo) -> TomeError:
    return OverloadedError(
        f"The provider's engine is overloaded ({e.status}: {e.message}).", retry_after=e.retry_after, **e.kw
    )


def _limit_kind(message: str) -> str | None:
    low = message.lower()
    if "concurrency" in low:
        return "concurrency"
    if "max request" in low or "rpm" in low:
        return "rpm"
    if "tpm" in low:
        return "tpm"
    return None


# Moonshot's 429s name the account's real limit: "max concurrency: 4", "max request: 30", "limit:40000".
_STATED_LIMIT = {
    "concurrency": re.compile(r"max concurrency:\s*(\d+)", re.IGNORECASE),
    "rpm": re.compile(r"max request:\s*(\d+)", re.IGNORECASE),
    "tpm": re.compile(r"TPM rate limit,\s*current:\s*\d+,\s*limit:\s*(\d+)", re.IGNORECASE),
}


def stated_limit(message: str, kind: str | None) -> int | None:
    """The limit a rate-limit message states for ``kind``, or None."""
    pattern = _STATED_LIMIT.get(kind or "")
    match = pattern.search(message) if pattern else None
    return int(match.group(1)) if match else None


def _rate_limit(e: ErrorInfo) -> TomeError:
    kind = _limit_kind(e.message)
    return RateLimitError(
        f"Rate limit reached ({kind or 'unknown limit'}; {e.status}: {e.message}).",
        limit_kind=kind,
        retry_after=e.retry_after,
        limit_value=stated_limit(e.message, kind),
        **e.kw,
    )


def _extract_failed(e: ErrorInfo) -> TomeError:
    return CorruptDocumentError(
        f"The provider could not extract text from the file ({e.message}). Check that it opens, or convert "
        "it to PDF or plain text."
    )


def _server(e: ErrorInfo) -> TomeError:
    return ServerError(f"The server failed ({e.status}: {e.message}).", retry_after=e.retry_after, **e.kw)


def _other(e: ErrorInfo) -> TomeError:
    return LLMStatusError(f"The server answered {e.status}: {e.message}.", **e.kw)


@dataclass(frozen=True)
class _Rule:
    statuses: range | tuple[int, ...]
    error_type: str | None  # match when the body's type equals this (None: any)
    pattern: re.Pattern[str] | None  # match when the message matches (None: any)
    build: Callable[[ErrorInfo], TomeError]

    def matches(self, e: ErrorInfo) -> bool:
        return (
            e.status in self.statuses
            and (self.error_type is None or e.error_type == self.error_type)
            and (self.pattern is None or bool(self.pattern.search(e.message)))
        )


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# The one status table, first match wins. Rows follow shared/moonshot-api.md's error table.
STATUS_TABLE: tuple[_Rule, ...] = (
    _Rule((400,), "content_filter", None, _content_filter),
    _Rule((400,), None, _rx(r"considered high risk"), _content_filter),
    # llama-server answered 500 for this before it answered 400; Ollama's embed endpoint still does.
    _Rule((400, 413, 500), "exceed_context_size_error", None, _context_length),
    _Rule((400, 413), "context_length_exceeded", None, _context_length),
    _Rule((400, 413, 422), None, _CONTEXT_REFUSAL, _context_length),
    _Rule((400, 413, 422), None, None, _invalid),
    _Rule((401,), None, None, _auth),
    _Rule((402,), None, None, _balance),
    _Rule((403,), "exceeded_current_quota_error", None, _balance),
    _Rule((403,), None, None, _permission),
    _Rule((404,), None, None, _not_found),
    _Rule((408,), None, None, _request_timeout),
    _Rule((429,), None, _rx(r"\bTPD\b"), _tpd),
    _Rule((429,), "exceeded_current_quota_error", None, _balance),
    _Rule((429,), None, _rx(r"exceeded your current (token )?quota|is suspended"), _balance),
    _Rule((429,), "engine_overloaded_error", None, _overloaded),
    _Rule((429,), None, _rx(r"overloaded"), _overloaded),
    _Rule((429,), None, None, _rate_limit),
    _Rule((500,), None, _rx(r"failed to extract file"), _extract_failed),
    _Rule((500,), None, _rx(r"exceeds the (?:available )?context|longer than the context"), _context_length),
    _Rule(range(500, 600), None, None, _server),
    _Rule(range(100, 600), None, None, _other),
)


def error_from_response(
    status: int,
    body: bytes | str,
    headers: Mapping[str, str] | None = None,
    *,
    key_env: str = "MOONSHOT_API_KEY",
    redact: Callable[[str], str] = lambda s: s,
    now: datetime | None = None,
) -> TomeError:
    """The tome error for an error response (any status, any body)."""
    headers = headers or {}
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    message, error_type, fields = parse_error_fields(text)
    message = redact(message)
    code = fields.get("code")
    if error_type is None and isinstance(code, str) and code in _CONTEXT_TYPES:
        error_type = code  # OpenAI names the refusal in "code", not "type"
    when = now or datetime.now(UTC)
    lower = {k.lower(): v for k, v in headers.items()}
    hint = retry_after_from_message(message)
    if hint is None:
        hint = retry_after_from_headers(headers, when)
    info = ErrorInfo(
        status=status,
        message=message,
        error_type=error_type,
        request_id=lower.get("msh-request-id") or lower.get("x-request-id"),
        retry_after=hint,
        key_env=key_env,
        now=when,
        fields=fields,
    )
    for rule in STATUS_TABLE:
        if rule.matches(info):
            return rule.build(info)
    return _other(info)


def error_from_stream_payload(payload: Mapping[str, Any], **kw: Any) -> TomeError:
    """An ``{"error":…}`` object sent inside an SSE stream, mapped as if it were a response with its status."""
    err = payload.get("error")
    etype = err.get("type") if isinstance(err, dict) else None
    status = {
        "rate_limit_reached_error": 429,
        "engine_overloaded_error": 429,
        "exceeded_current_quota_error": 429,
        "invalid_request_error": 400,
        "content_filter": 400,
        "invalid_authentication_error": 401,
        "incorrect_api_key_error": 401,
        "resource_not_found_error": 404,
    }.get(str(etype), 500)
    return error_from_response(status, json.dumps(payload), {}, **kw)


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
