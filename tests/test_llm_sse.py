"""SSE parsing: the recorded Moonshot transcripts, both usage placements, and incomplete streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pipeline import errors as E
from pipeline.llm.sse import ChatStreamAccumulator, SSEDecoder, read_chat_stream, sse_payloads
from pipeline.llm.types import Usage

FIXTURES = Path(__file__).parent / "fixtures" / "moonshot"
EXPECTED_TEXT = "你好，我是Kimi。这本书讲述了一个灯塔看守人的故事。"


async def _lines(text: str) -> AsyncIterator[str]:
    for line in text.splitlines():
        yield line


async def test_recorded_moonshot_stream_usage_inside_the_choice() -> None:
    acc = await read_chat_stream(_lines((FIXTURES / "stream_usage_in_choice.sse").read_text(encoding="utf-8")))
    assert acc.content == EXPECTED_TEXT
    assert acc.finish_reason == "stop"
    assert acc.usage == Usage(prompt_tokens=39, completion_tokens=211)
    assert acc.id == "chatcmpl-67c96964971a7a505b6ff17a" and acc.model == "moonshot-v1-8k"
    assert acc.done


async def test_include_usage_final_chunk_with_empty_choices_and_cached_tokens() -> None:
    acc = await read_chat_stream(_lines((FIXTURES / "stream_include_usage.sse").read_text(encoding="utf-8")))
    assert acc.content == EXPECTED_TEXT
    assert acc.usage == Usage(prompt_tokens=39, completion_tokens=211, cached_tokens=12)


async def test_openai_style_usage_only_at_top_level() -> None:
    text = (
        'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}\n\n'
        'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}\n\n'
        'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,'
        '"prompt_tokens_details":{"cached_tokens":3}}}\n\n'
        "data: [DONE]\n\n"
    )
    acc = await read_chat_stream(_lines(text))
    assert (acc.content, acc.finish_reason, acc.usage) == ("Hi", "length", Usage(5, 1, 3))


async def test_stream_without_done_is_interrupted() -> None:
    with pytest.raises(E.StreamInterruptedError, match="without data: \\[DONE\\]"):
        await read_chat_stream(_lines((FIXTURES / "stream_no_done.sse").read_text(encoding="utf-8")))


async def test_error_object_mid_stream_raises_the_mapped_error() -> None:
    text = (
        'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
        'data: {"error":{"message":"The engine is currently overloaded, please try again later",'
        '"type":"engine_overloaded_error"}}\n\n'
    )
    with pytest.raises(E.OverloadedError):
        await read_chat_stream(_lines(text))


async def test_malformed_chunk_is_an_interrupted_stream() -> None:
    with pytest.raises(E.StreamInterruptedError, match="malformed"):
        await read_chat_stream(_lines('data: {"id": "c1", "choi\n\n'))


def test_decoder_follows_sse_rules() -> None:
    d = SSEDecoder()
    fed = [d.feed(line) for line in [": keep-alive", "event: message", "data:a", "data: b", "id: 7", ""]]
    assert fed == [None, None, None, None, None, "a\nb"]
    assert d.feed("") is None  # an empty event dispatches nothing


async def test_last_event_without_blank_line_and_crlf() -> None:
    payloads = [p async for p in sse_payloads(_lines("data: {}\r\n\r\ndata: [DONE]"))]
    assert payloads == ["{}", "[DONE]"]


def test_accumulator_ignores_other_choices_and_chunks_after_done() -> None:
    acc = ChatStreamAccumulator()
    acc.feed('{"choices":[{"index":1,"delta":{"content":"B"}},{"index":0,"delta":{"content":"A"}}]}')
    acc.feed("[DONE]")
    acc.feed('{"choices":[{"index":0,"delta":{"content":"late"}}]}')
    assert acc.content == "A" and acc.done
