"""How the test server streams an answer: Moonshot's SSE chunks, paced by the gateway's latency, and the
streams it breaks on purpose (dropped mid-answer, or ended without the final chunk)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from pipeline.scripts import CJK_PUNCTUATION, HAN, KANA
from pipeline.testing.gateway import Gateway

_PIECE = re.compile(
    rf"[{CJK_PUNCTUATION}{KANA}{HAN}]{{1,2}}"
    rf"|[^\s{CJK_PUNCTUATION}{KANA}{HAN}]+\s*|\s+"
)
CREATED = 1715000000  # fixed timestamps keep answers deterministic


class DropConnection(Exception):
    """Raised inside a streaming body to make uvicorn close the socket mid-answer."""


class _QuietDrops(logging.Filter):
    """Hide uvicorn's traceback for connections this server drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not _is_drop(exc)


def _is_drop(exc: BaseException) -> bool:
    if isinstance(exc, DropConnection):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_drop(e) for e in exc.exceptions)
    return False


def install_log_filter() -> None:
    """Keep uvicorn quiet about the connections this server drops on purpose."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


def sse_chunk(rid: str, model: str, choices: list[dict[str, Any]], **extra: Any) -> str:
    """One `data:` event of a chat.completion.chunk."""
    payload = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": choices,
        **extra,
    }
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def sse_answer(
    *,
    gw: Gateway,
    text: str,
    finish: str,
    usage: dict[str, int],
    rid: str,
    model: str,
    include_usage: bool,
    fault: str | None,
    release: Callable[[], None],
) -> AsyncIterator[str]:
    """Moonshot's stream: role chunk, content chunks, a final chunk with usage inside the choice, [DONE]."""
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        latency = gw.latency
        yield sse_chunk(rid, model, [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        pieces = _PIECE.findall(text)
        cut = len(pieces) // 2 if fault in ("drop_stream", "truncate_stream") else None
        emitted = 0
        for i, piece in enumerate(pieces):
            if i == cut:
                if fault == "drop_stream":
                    raise DropConnection()
                return  # truncate_stream: a clean end, but no final chunk and no [DONE]
            emitted += gw.tokenizer.count(piece)
            due = start + latency.ttft_s + latency.per_token_s * emitted
            if due - loop.time() > 0.002:
                await asyncio.sleep(due - loop.time())
            yield sse_chunk(rid, model, [{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        if cut is not None:  # an empty answer still gets interrupted
            if fault == "drop_stream":
                raise DropConnection()
            return
        if latency.ttft_s and not pieces:
            await asyncio.sleep(latency.ttft_s)
        yield sse_chunk(rid, model, [{"index": 0, "delta": {}, "finish_reason": finish, "usage": usage}])
        if include_usage:
            yield sse_chunk(rid, model, [], usage=usage)
        yield "data: [DONE]\n\n"
    finally:
        release()


async def dropped_json(body: bytes) -> AsyncIterator[bytes]:
    """Half of a JSON answer, then a dropped connection."""
    yield body[: len(body) // 2]
    raise DropConnection()
