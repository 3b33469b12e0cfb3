"""Overflows seen before they are sent: a call waiting for a slot is checked against what the answers before
it taught (the server's tokens per local token), and a prompt that fits with less output room is sent so, not
split. Real HTTP against the local test server, whose tokenizer here counts ~50 % above tome's calibration and
which offers no token-count endpoint (with one, level 0 is sized by the server's count before it starts:
test_engine_server_count.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pipeline.store import Store
from pipeline.testing import Latency, MoonshotTestServer, Obedience
from tests.test_engine import Recorder, _client, _engine, generated_document


def disobedient(token_scale: float) -> MoonshotTestServer:
    return MoonshotTestServer(
        latency=Latency.zero(), token_scale=token_scale, obedience=Obedience.disobedient(), count_endpoint=False
    )


async def summarise(server: MoonshotTestServer, tmp_path: Path) -> tuple[Recorder, list[str], object]:
    client = Recorder(_client(server))
    store = Store(f"sqlite:///{tmp_path / 'tome.db'}")
    # One call at a time: each level-0 call is sent after the answers before it reported their counts.
    result = await _engine(client, store, max_in_flight=1).summarise(generated_document(chapters=4, paragraphs=28))
    con = sqlite3.connect(tmp_path / "tome.db")
    outcomes = [o for (o,) in con.execute("SELECT outcome FROM run_calls WHERE level = 0 ORDER BY node, seq")]
    con.close()
    rerun = await _engine(client, store, max_in_flight=1).summarise(generated_document(chapters=4, paragraphs=28))
    assert rerun.final == result.final and rerun.usage.calls == 0  # the decision is recorded: reruns ask nothing
    await client.aclose()
    return client, outcomes, result


async def test_queued_call_that_would_be_refused_is_split_before_it_is_sent(tmp_path: Path) -> None:
    with disobedient(1.53) as server:
        _, outcomes, result = await summarise(server, tmp_path)
        assert all(r.status == 200 for r in server.chat_log())  # nothing refused once counts were reported
    assert "split-predicted" in outcomes and result.usage.splits == 1


async def test_prompt_that_fits_with_less_room_is_sent_so_not_split(tmp_path: Path) -> None:
    with disobedient(1.51) as server:
        client, outcomes, result = await summarise(server, tmp_path)
        assert all(r.status == 200 for r in server.chat_log())
    assert "refit-predicted" in outcomes and result.usage.splits == 0 and result.usage.refitted == 1
    level0 = [r for r in client.requests if "It is part" in r.messages[-1].content]
    assert len(level0) == 4 and min(r.max_tokens for r in level0) < 600 == max(r.max_tokens for r in level0)
