"""Level 0 sized by the server's own tokenizer before its first call, when the server counts prompts (Moonshot's
token-count endpoint). Real HTTP against the local test server with its disobedient model, its tokenizer ~15 %
above or below tome's calibration; the same server without the endpoint shows the fallback (learning from
refusals and answers only)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.engine.replan import RECALIBRATE
from pipeline.store import Store
from pipeline.testing import Latency, MoonshotTestServer, Obedience
from pipeline.testing.tokenizer import ServerTokenizer
from pipeline.tokens import TiktokenCounter
from tests.test_engine import _client, _engine, generated_document

CHAPTERS = 20


def scale_for(off: float) -> float:
    """The test server's token scale at which it counts ``off`` times tome's calibration for the document."""
    text = generated_document(chapters=CHAPTERS).text
    return off * 1.1 * TiktokenCounter().count(text) / ServerTokenizer().count(text)  # 1.1: moonshot-v1-8k's


async def run(tmp_path: Path, off: float, *, count_endpoint: bool) -> tuple[MoonshotTestServer, object, object]:
    server = MoonshotTestServer(latency=Latency.zero(), token_scale=scale_for(off), count_endpoint=count_endpoint,
                                obedience=Obedience.disobedient())  # fmt: skip
    with server:
        client = _client(server)
        tmp_path.mkdir(exist_ok=True)
        store = Store(f"sqlite:///{tmp_path / 'tome.db'}")
        engine = _engine(client, store)
        doc = generated_document(chapters=CHAPTERS)
        state = engine.prepare(doc)
        planned = len(state.chunks)
        while not state.done:
            await engine.run_level(state, state.next_level)
        result = engine.finish(state)
        chats = len(server.chat_log())
        rerun = await _engine(client, store).summarise(doc)
        await client.aclose()
        assert len(server.chat_log()) == chats and rerun.final == result.final  # same prompts: all cached
    return server, (planned, state), result


async def test_server_counting_more_refuses_nothing_when_it_can_count(tmp_path: Path) -> None:
    with_count, (planned, state), _ = await run(tmp_path / "a", 1.15, count_endpoint=True)
    assert all(r.status == 200 for r in with_count.chat_log())  # no prompt was sent that the server refuses
    assert state.level_calibration[0] > 1.1 * (1 + RECALIBRATE)  # level 0 ran with the server's count ...
    assert len(state.chunks) == planned  # ... with the chunks the sections were packed into
    _, (_, fallback), _ = await run(tmp_path / "b", 1.15, count_endpoint=False)
    assert fallback.level_calibration[0] == 1.1  # without the endpoint: the configured calibration until answers


@pytest.mark.parametrize("off", [0.85])
async def test_server_counting_less_gets_fewer_larger_chunks(tmp_path: Path, off: float) -> None:
    server, (planned, state), result = await run(tmp_path, off, count_endpoint=True)
    assert len(state.chunks) < planned and state.level_calibration[0] < 1.1 * (1 - RECALIBRATE)
    level0 = [r for r in server.chat_log() if r.status == 200][: len(state.chunks)]
    assert max(r.prompt_tokens + r.max_tokens for r in level0) <= 8192  # larger, and still within the window
    assert result.usage.splits == 0 and all(r.status == 200 for r in server.chat_log())


async def test_prompt_of_a_denser_stretch_is_counted_not_refused(tmp_path: Path) -> None:
    """A chapter of long words counts ~3x the document's average on the server: its prompt, planned by the average,
    is over the window. With the count endpoint it is counted before it is sent and split, never refused."""
    doc = generated_document(chapters=CHAPTERS)
    dense = " ".join(["The international organisations acknowledged extraordinary responsibilities."] * 150)
    at = doc.sections[CHAPTERS // 2].start
    doc = replace(doc, text=doc.text[:at] + dense + "\n\n" + doc.text[at:], sections=())
    statuses = {}
    for name, endpoint in (("count", True), ("fallback", False)):
        with MoonshotTestServer(latency=Latency.zero(), obedience=Obedience.disobedient(),
                                count_endpoint=endpoint) as server:  # fmt: skip
            client = _client(server)
            (tmp_path / name).mkdir()
            result = await _engine(client, Store(f"sqlite:///{tmp_path / name / 'tome.db'}")).summarise(doc)
            await client.aclose()
            statuses[name] = [r.status for r in server.chat_log()]
        assert result.final and result.usage.splits >= 1
    assert set(statuses["count"]) == {200} and 400 in statuses["fallback"]
