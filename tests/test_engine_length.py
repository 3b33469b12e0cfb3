"""Length that fits the first time: headroom learned from the model's own answers, cut-offs kept to a sentence,
refused calls give their admission back, and no 400 once the server has reported its token counts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.budget import make_budget
from pipeline.config import RateLimits
from pipeline.engine.length import trim_to_sentence
from pipeline.errors import ContextLengthError
from pipeline.llm.client import MoonshotClient
from pipeline.store import Store
from pipeline.testing import MoonshotTestServer, Obedience
from tests.test_engine import Recorder, _client, _engine, generated_document
from tests.test_llm_unreachable import chat


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'tome.db'}")


def asked_words(request) -> int:
    return int(re.findall(r"at most (\d+) words", request.messages[-1].content)[-1])


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Alice fell. She saw a rabbit. Then the", "Alice fell. She saw a rabbit."),
        ("Alice fell. She saw a rabbit.", "Alice fell. She saw a rabbit."),
        ('He said "Go." Then she', 'He said "Go."'),
        ("爱丽丝掉下去了。她看见一只兔子。然后", "爱丽丝掉下去了。她看见一只兔子。"),
        ("Half a sen", None),
    ],
)
def test_trim_to_the_last_complete_sentence(text: str, kept: str | None) -> None:
    assert trim_to_sentence(text) == kept


async def test_disobedient_model_is_never_kept_cut_off_and_later_levels_learn_its_overshoot(
    moonshot_server: MoonshotTestServer, store: Store
) -> None:
    moonshot_server.configure(obedience=Obedience.disobedient())
    doc = generated_document(chapters=30, paragraphs=9)
    client = Recorder(_client(moonshot_server))
    engine = _engine(client, store)
    state = engine.prepare(doc)
    while not state.done:
        await engine.run_level(state, state.next_level)
    result = engine.finish(state)
    await client.aclose()
    assert len(state.levels) >= 2 and len(state.levels[0]) >= 3
    assert not any(n.truncated for level in result.levels for n in level)
    assert result.usage.retries == 0  # no prompt was sent twice for a cut-off
    log = moonshot_server.chat_log()
    assert sum(r.finish_reason == "length" for r in log) == result.usage.trimmed
    # Level 0 asked for a third of max_tokens; the model wrote 1.3-2x that, which the next level planned for.
    level0 = [r for r in client.requests if "part " in r.messages[-1].content]
    assert all(r.max_tokens >= 2.5 * asked_words(r) for r in level0)
    headroom0, _ = state.level_headroom[0]
    headroom1, overshoot1 = state.level_headroom[1]
    assert headroom0 == 3.0 and 1.3 <= overshoot1 <= 2.6 and headroom1 == pytest.approx(overshoot1 * 1.15)
    rerun = await _engine(_client(moonshot_server), store).summarise(doc)
    assert rerun.final == result.final and rerun.usage.calls == 0  # learned between levels: same prompts


async def test_cut_off_answer_with_complete_sentences_is_trimmed_not_resent(
    moonshot_server: MoonshotTestServer, store: Store
) -> None:
    doc = generated_document(chapters=1, paragraphs=4)
    cut = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "moonshot-v1-8k",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The keeper lit the lamp. A ship came near the rocks. It"},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 900, "completion_tokens": 600, "total_tokens": 1500},
    }
    moonshot_server.gateway.inject("response", body=cut)
    client = Recorder(_client(moonshot_server))
    result = await _engine(client, store).summarise(doc)
    await client.aclose()
    assert len(client.requests) == 1
    node = result.levels[0][0]
    assert node.trimmed and not node.truncated
    assert result.final == "The keeper lit the lamp. A ship came near the rocks."
    assert result.usage.trimmed == 1 and result.usage.retries == 0


async def test_refused_calls_give_their_admission_back(moonshot_server: MoonshotTestServer) -> None:
    request = chat()
    # The window holds one such call a minute: a refused call that kept its admission would block the next.
    budget = make_budget(RateLimits(concurrency=4, rpm=100, tpm=request.admission_tokens + 40), account="acct")
    moonshot_server.inject("context_length", requested=9000)
    async with MoonshotClient(
        base_url=moonshot_server.base_url, api_key=moonshot_server.api_key, budget=budget
    ) as client:
        with pytest.raises(ContextLengthError):
            await client.complete(request)
        assert budget.estimated_wait(request.admission_tokens, 1) == 0  # the 400 was given back
        await client.complete(request)
        assert budget.estimated_wait(request.admission_tokens, 1) > 30  # an admitted call holds the window


async def test_no_400_once_the_server_reported_its_counts(
    moonshot_server_factory, store: Store
) -> None:
    # The server counts 30 % more than tome's calibration expects: first answers tell, later levels fit.
    srv: MoonshotTestServer = moonshot_server_factory(token_scale=1.3, obedience=Obedience.disobedient())
    doc = generated_document(chapters=40, paragraphs=9)
    client = _client(srv)
    engine = _engine(client, store, length="long")
    state = engine.prepare(doc)
    await engine.run_level(state, 0)
    first_level = len(srv.chat_log())
    while not state.done:
        await engine.run_level(state, state.next_level)
    await client.aclose()
    later = srv.chat_log()[first_level:]
    assert later and all(r.status == 200 for r in later)
    assert state.level_calibration[1] > engine.model.calibration * 1.1
