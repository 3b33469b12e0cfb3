"""Translate an HTTP error response into a tome error: one status table, first match wins."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import (
    AuthenticationError,
    ContentFilterError,
    ContextLengthError,
    CorruptDocumentError,
    InvalidRequestError,
    LLMStatusError,
    LLMTimeoutError,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    TomeError,
)
from pipeline.llm.error_bodies import (
    ErrorInfo,
    context_numbers,
    limit_kind,
    parse_error_fields,
    retry_after_from_headers,
    retry_after_from_message,
    stated_limit,
)
from pipeline.utc import next_utc_midnight

# How servers word a context-length refusal (see context_numbers and tests/fixtures/servers/context):
# OpenAI, DeepSeek, vLLM, llama-cpp-python, OpenRouter, llama-server (directly or wrapped by Ollama), Moonshot.
_CONTEXT_REFUSAL = re.compile(
    r"input token length too long|context length|maximum context|context size|context window"
    r"|exceeded model token limit|longer than the context",
    re.IGNORECASE,
)
_CONTEXT_TYPES = frozenset({"exceed_context_size_error", "context_length_exceeded", "context_exceeded"})
_CURRENT_LIMIT = re.compile(r"current:\s*(\d+),\s*limit:\s*(\d+)", re.IGNORECASE)


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


def _rate_limit(e: ErrorInfo) -> TomeError:
    kind = limit_kind(e.message)
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
