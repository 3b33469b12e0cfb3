"""Parse the JSON bodies of successful answers (chat completions, usage) into tome's types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.errors import ServerError
from pipeline.llm.types import Usage


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def usage_from_json(raw: Mapping[str, Any] | None) -> Usage:
    """Usage from an OpenAI/Moonshot ``usage`` object; cached tokens from either place they appear."""
    if not raw:
        return Usage()
    cached = _int(raw.get("cached_tokens"))
    details = raw.get("prompt_tokens_details")
    if not cached and isinstance(details, Mapping):
        cached = _int(details.get("cached_tokens"))
    return Usage(
        prompt_tokens=_int(raw.get("prompt_tokens")),
        completion_tokens=_int(raw.get("completion_tokens")),
        cached_tokens=cached,
    )


def parse_chat_json(data: Any, *, status: int = 200) -> tuple[str, str | None, Usage, str | None, str | None]:
    """(content, finish_reason, usage, body id, model) of a non-streamed chat completion.

    Raises:
        ServerError: the body is not a chat completion (retried: gateways sometimes send junk).
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("choices"), list) or not data["choices"]:
        raise ServerError("The server answered 200 without any choices; the call is retried.", status=status)
    choice = data["choices"][0]
    if not isinstance(choice, Mapping):
        raise ServerError("The server answered 200 with a malformed choice.", status=status)
    message = choice.get("message") or {}
    content = message.get("content") if isinstance(message, Mapping) else None
    usage = data.get("usage") if isinstance(data.get("usage"), Mapping) else choice.get("usage")
    return (
        content if isinstance(content, str) else "",
        choice.get("finish_reason"),
        usage_from_json(usage if isinstance(usage, Mapping) else None),
        data.get("id") if isinstance(data.get("id"), str) else None,
        data.get("model") if isinstance(data.get("model"), str) else None,
    )
