"""Claims on SQLite and a real PostgreSQL: leases that live processes renew and dead ones let lapse, calls
waited for instead of paid twice, and two real processes on the same document paying for each call once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pipeline.claims import Claims
from pipeline.db import make_engine
from pipeline.llm.types import Completion, Usage
from pipeline.store import Store
from pipeline.testing import Latency
from tests.conftest import LIGHTHOUSE

REPO = Path(__file__).resolve().parents[1]

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pipeline.claims import Claims
    from pipeline.db import make_engine
    claims = Claims(make_engine(sys.argv[1]), lease_s=float(sys.argv[2]))
    assert claims.try_claim_document("doc", document="a.txt") and claims.try_claim_call("call")
    print("held", flush=True)
    time.sleep(600)
    """
)


def test_a_live_holder_keeps_its_claims_and_a_dead_ones_lapse(db_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, db_url, "1.5"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        other = Claims(make_engine(db_url), lease_s=1.5, poll_s=0.05, max_poll_s=0.2)
        time.sleep(3.0)  # two leases: only the holder's heartbeat keeps them
        assert not other.try_claim_document("doc", document="b.txt")
        assert not other.try_claim_call("call")
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        killed_at = time.monotonic()

        async def take_over() -> None:
            async with other.document("doc", document="b.txt"):
                assert await other.call("call", lambda: None) is None  # now ours to make

        asyncio.run(asyncio.wait_for(take_over(), timeout=30))
        assert time.monotonic() - killed_at < 30
        other.close()
    finally:
        if holder.poll() is None:
            holder.kill()


async def test_a_call_in_flight_elsewhere_is_waited_for(db_url: str) -> None:
    store = Store(db_url)
    asker, waiter = Claims(store.engine, poll_s=0.02), Claims(Store(db_url).engine, poll_s=0.02)
    assert await asker.call("k", lambda: store.cache_get("k")) is None  # nobody had it: the asker makes it
    waiting = asyncio.ensure_future(waiter.call("k", lambda: store.cache_get("k")))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # in flight elsewhere: no second request
    store.cache_put(
        "k",
        provider="p",
        model="m",
        prompt_version="v",
        completion=Completion(content="the answer", finish_reason="stop", usage=Usage(5, 2), model="m"),
    )
    asker.release_call("k")
    hit = await asyncio.wait_for(waiting, timeout=10)
    assert hit is not None and hit.completion.content == "the answer" and waiter.waited_calls == 1
    # A failed call is released without an answer: the waiter then makes it itself.
    assert await asker.call("k2", lambda: store.cache_get("k2")) is None
    second = asyncio.ensure_future(waiter.call("k2", lambda: store.cache_get("k2")))
    await asyncio.sleep(0.1)
    asker.release_call("k2")
    assert await asyncio.wait_for(second, timeout=10) is None
    asker.close()
    waiter.close()


_ENGINE_RUN = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pipeline.options import SummariseOptions
    from pipeline.runtime import build_runtime
    from pipeline.documents import load_document
    from pipeline.engine import SummaryEngine

    base_url, path, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])

    async def main():
        runtime = build_runtime(SummariseOptions(backend="moonshot", base_url=base_url, tier="unlimited", concurrency=4))
        engine = SummaryEngine(backend=runtime.backend, store=runtime.store, settings=runtime.settings,
                               model=runtime.model, limits=runtime.limits, max_in_flight=4, claims=runtime.claims)
        document = load_document(path)
        while time.time() < start_at:
            await asyncio.sleep(0.001)
        result = await engine.summarise(document)
        await runtime.aclose()
        print(json.dumps({"calls": result.usage.calls, "cached": result.usage.cached_calls}))

    asyncio.run(main())
    """
)


def _together(script: str, args: list[str], env: dict[str, str], n: int = 2) -> list[dict[str, int]]:
    start_at = str(time.time() + 5.0)  # both start their calls at the same instant
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args, start_at], cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for _ in range(n)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err[-2000:] for _, err in outs]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def _env(db_url: str, api_key: str, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MOONSHOT_API_KEY=api_key, TOME_HOME=str(tmp_path / "home"), TOME_DATABASE_URL=db_url)
    return env


def test_two_processes_asking_the_same_prompts_pay_for_each_once(
    db_url: str, moonshot_server_factory, tmp_path: Path
) -> None:
    srv = moonshot_server_factory(latency=Latency(0.4, 0.002))
    runs = _together(_ENGINE_RUN, [srv.base_url, str(LIGHTHOUSE)], _env(db_url, srv.api_key, tmp_path))
    prompts = runs[0]["calls"] + runs[0]["cached"]
    assert prompts >= 3 and runs[1]["calls"] + runs[1]["cached"] == prompts
    assert srv.stats().requests == prompts  # 2 processes x N prompts, each paid once
    assert runs[0]["calls"] + runs[1]["calls"] == prompts  # what one paid for, the other waited for


_DOCUMENT_RUN = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from flows.outcomes import summarise_direct
    from pipeline.options import SummariseOptions
    from pathlib import Path
    base_url, path, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    while time.time() < start_at:
        time.sleep(0.001)
    options = SummariseOptions(backend="moonshot", base_url=base_url, tier="unlimited")
    runs, _ = asyncio.run(summarise_direct(options, [Path(path)], out_dir=None))
    outcome = runs[0].outcome
    assert outcome.status == "done", outcome.error
    print(json.dumps({"calls": outcome.calls, "cached": outcome.cached_calls}))
    """
)


def test_two_processes_on_the_same_document_summarise_it_once(
    db_url: str, moonshot_server_factory, tmp_path: Path
) -> None:
    srv = moonshot_server_factory(latency=Latency(0.3, 0.002))
    runs = _together(_DOCUMENT_RUN, [srv.base_url, str(LIGHTHOUSE)], _env(db_url, srv.api_key, tmp_path))
    first, second = sorted(runs, key=lambda r: -r["calls"])
    assert first["calls"] >= 3 and srv.stats().requests == first["calls"]
    assert second == {"calls": 0, "cached": first["calls"]}  # it waited for the claim, then read the cache
