"""Server-sent events: split a byte stream into ``data:`` payloads and fold chat chunks into one answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from pipeline.errors import StreamInterruptedError
from pipeline.llm.error_mapping import error_from_stream_payload
from pipeline.llm.responses import usage_from_json
from pipeline.llm.types import Usage

DONE = "[DONE]"


class SSEDecoder:
    """Line-by-line SSE decoder (the WHATWG rules tome needs): returns an event's data on the blank line."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """One line without its terminator; returns the event data when ``line`` ends an event."""
        if line == "":
            return self.flush()
        if line.startswith(":"):  # comment / keep-alive
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        return None  # event:, id:, retry: carry nothing a chat stream needs

    def flush(self) -> str | None:
        """Pending data (an event not yet closed by a blank line), if any."""
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return data


async def sse_payloads(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """Each event's data from an async iterator of lines (as ``httpx.Response.aiter_lines`` yields them)."""
    decoder = SSEDecoder()
    async for line in lines:
        data = decoder.feed(line.rstrip("\r\n"))
        if data is not None:
            yield data
    # Tolerate a final event without its blank line (e.g. "data: [DONE]\n" then EOF).
    data = decoder.flush()
    if data is not None:
        yield data


class ChatStreamAccumulator:
    """Folds ``chat.completion.chunk`` payloads into content, finish_reason and usage.

    Usage is read from ``choices[i].usage`` (Moonshot) and from a top-level ``usage`` (OpenAI
    ``include_usage``, whose last chunk has ``"choices": []``); whichever arrives is kept.
    """

    def __init__(self, *, error_kw: dict[str, Any] | None = None) -> None:
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.id: str | None = None
        self.model: str | None = None
        self.done = False
        self.chunks = 0
        self._error_kw = error_kw or {}

    @property
    def content(self) -> str:
        return "".join(self.parts)

    def feed(self, data: str) -> None:
        """One event's data. Raises the mapped error when the server sends an error object mid-stream."""
        if self.done:
            return
        if data.strip() == DONE:
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise StreamInterruptedError(f"The stream sent a malformed chunk: {data[:80]!r}") from exc
        if not isinstance(chunk, dict):
            raise StreamInterruptedError(f"The stream sent a malformed chunk: {data[:80]!r}")
        if "error" in chunk:
            raise error_from_stream_payload(chunk, **self._error_kw)
        self.chunks += 1
        self.id = self.id or chunk.get("id")
        self.model = self.model or chunk.get("model")
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            piece = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(piece, str) and piece:
                self.parts.append(piece)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            if isinstance(choice.get("usage"), dict):
                self.usage = usage_from_json(choice["usage"])
        if isinstance(chunk.get("usage"), dict):
            self.usage = usage_from_json(chunk["usage"])


async def read_chat_stream(
    lines: AsyncIterator[str],
    *,
    error_kw: dict[str, Any] | None = None,
) -> ChatStreamAccumulator:
    """Consume a whole chat stream; a stream that ends before ``data: [DONE]`` raises StreamInterruptedError."""
    acc = ChatStreamAccumulator(error_kw=error_kw)
    async for data in sse_payloads(lines):
        acc.feed(data)
        if acc.done:
            break
    if not acc.done:
        raise StreamInterruptedError(
            f"The stream ended after {acc.chunks} chunks and {len(acc.content)} characters without "
            "data: [DONE]; the answer is incomplete."
        )
    return acc
