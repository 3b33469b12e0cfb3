"""Read what a failed response says: its message and type, the server's wait hint, the numbers of a
context-length refusal and the limit a rate-limit message states. Tolerant: a body may be JSON, HTML or nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.retry_loop import retry_after_from_headers as retry_after_from_headers  # one header parser

_TRY_AGAIN = re.compile(r"try again after\s+(\d+(?:\.\d+)?)\s*(?:seconds?|s)\b", re.IGNORECASE)
_TOKEN_LIMIT = re.compile(r"exceeded model token limit:\s*(\d+)(?:\s*\(requested:\s*(\d+)\))?", re.IGNORECASE)
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


def limit_kind(message: str) -> str | None:
    """The limit a rate-limit message names: "concurrency", "rpm", "tpm", or None."""
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
