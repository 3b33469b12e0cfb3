"""Cut-off recovery against the local test server (real HTTP): continued in Moonshot's partial mode, or trimmed,
per provider; a continuation is overflow-checked like a first attempt."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.config import load_catalog
from pipeline.llm.client import MoonshotClient
from pipeline.llm.retry import RetryPolicy
from pipeline.llm.types import Message
from pipeline.store import Store
from pipeline.testing import MoonshotTestServer
from tests.test_engine import Recorder, _engine, generated_document


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'tome.db'}")


def client(server: MoonshotTestServer, recovery: str) -> Recorder:
    async def no_sleep(_s: float) -> None:
        return None

    spec = replace(load_catalog().provider("moonshot"), cutoff_recovery=recovery)
    inner = MoonshotClient(
        spec, base_url=server.base_url, api_key=server.api_key, sleep=no_sleep, retry=RetryPolicy(max_retries=2)
    )
    return Recorder(inner)


def cut_answer(content: str, prompt_tokens: int = 900) -> dict[str, object]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "moonshot-v1-8k",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 40, "total_tokens": prompt_tokens + 40},
    }


async def whole_answer(server: MoonshotTestServer, tmp_path: Path) -> str:
    """What the server's model writes for the one-chunk document when nothing cuts it (a separate store)."""
    dry = client(server, "trim")
    result = await _engine(dry, Store(f"sqlite:///{tmp_path / 'dry.db'}")).summarise(generated_document(1, 4))
    await dry.aclose()
    server.gateway.reset()
    return result.final


async def test_cut_answer_is_continued_in_partial_mode(moonshot_server, store, tmp_path) -> None:
    whole = await whole_answer(moonshot_server, tmp_path)
    prefix = whole[: len(whole) // 2]  # cut mid-sentence, as max_tokens cuts
    moonshot_server.gateway.inject("response", body=cut_answer(prefix))
    backend = client(moonshot_server, "continue")
    result = await _engine(backend, store).summarise(generated_document(1, 4))
    first, more = backend.requests
    # The cut answer goes back as a prefilled assistant message; the server goes on from where it stopped.
    assert more.messages == (*first.messages, Message("assistant", prefix, partial=True))
    assert [r.status for r in moonshot_server.chat_log()] == [200, 200]
    assert result.final == whole
    node = result.levels[0][0]
    assert not node.trimmed and not node.truncated
    assert result.usage.continued == 1 and result.usage.trimmed == 0 and result.usage.retries == 0
    assert result.usage.calls == node.calls == 2
    rerun = await _engine(backend, store).summarise(generated_document(1, 4))
    assert rerun.final == whole and len(backend.requests) == 2  # both answers come from the cache
    await backend.aclose()


async def test_cut_answer_is_trimmed_where_the_provider_takes_no_prefill(moonshot_server, store, tmp_path) -> None:
    whole = await whole_answer(moonshot_server, tmp_path)
    prefix = whole[: len(whole) // 2]
    moonshot_server.gateway.inject("response", body=cut_answer(prefix))
    backend = client(moonshot_server, "trim")
    result = await _engine(backend, store).summarise(generated_document(1, 4))
    await backend.aclose()
    assert len(backend.requests) == 1
    assert result.levels[0][0].trimmed and whole.startswith(result.final) and len(result.final) < len(prefix)
    assert result.usage.trimmed == 1 and result.usage.continued == 0


async def test_a_continuation_that_would_overflow_is_not_sent(moonshot_server, store) -> None:
    # The server counted the prompt at 8,000 tokens: a continuation (prompt + answer so far) leaves no room, so
    # it is never sent (it would be refused); the answer is trimmed instead.
    moonshot_server.gateway.inject(
        "response", body=cut_answer("The keeper lit the lamp. A ship came near the rocks. It", prompt_tokens=8000)
    )
    backend = client(moonshot_server, "continue")
    result = await _engine(backend, store).summarise(generated_document(1, 4))
    await backend.aclose()
    assert len(backend.requests) == 1 and [r.status for r in moonshot_server.chat_log()] == [200]
    assert result.final == "The keeper lit the lamp. A ship came near the rocks."
    assert result.usage.trimmed == 1 and result.usage.continued == 0


async def test_a_continuation_cut_again_is_trimmed_as_a_whole(moonshot_server, store) -> None:
    moonshot_server.gateway.inject("response", times=2, body=cut_answer("The keeper lit the lamp. A ship"))
    backend = client(moonshot_server, "continue")
    result = await _engine(backend, store).summarise(generated_document(1, 4))
    await backend.aclose()
    assert len(backend.requests) == 2
    # prefix + continuation ("The keeper lit the lamp. A ship" twice), kept up to its last complete sentence
    assert result.final == "The keeper lit the lamp. A shipThe keeper lit the lamp."
    assert result.usage.continued == 1 and result.usage.trimmed == 1 and not result.levels[0][0].truncated
