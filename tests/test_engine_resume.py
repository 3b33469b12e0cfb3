"""Kill -9 a run half-way; the rerun makes only the calls that had not completed (counted on the server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pipeline.engine import SummaryEngine
from pipeline.llm.client import MoonshotClient
from pipeline.settings import model_and_limits, resolve_settings
from pipeline.store import Store
from pipeline.testing import Latency
from tests.test_engine import generated_document

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = 60

_RUN = textwrap.dedent(
    """
    import asyncio, sys
    from pipeline.engine import SummaryEngine
    from pipeline.llm.client import MoonshotClient
    from pipeline.settings import model_and_limits, resolve_settings
    from pipeline.store import Store
    from tests.test_engine import generated_document

    async def main(base_url, api_key, db):
        settings = resolve_settings()
        model, _ = model_and_limits(settings)
        client = MoonshotClient(base_url=base_url, api_key=api_key)
        engine = SummaryEngine(backend=client, store=Store(db), settings=settings, model=model, max_in_flight=2)
        await engine.summarise(generated_document(chapters=int(sys.argv[4])))

    asyncio.run(main(*sys.argv[1:4]))
    """
)


async def _run(server, url: str) -> None:
    settings = resolve_settings()
    model, _ = model_and_limits(settings)
    client = MoonshotClient(base_url=server.base_url, api_key=server.api_key)
    engine = SummaryEngine(backend=client, store=Store(url), settings=settings, model=model, max_in_flight=2)
    await engine.summarise(generated_document(chapters=CHAPTERS))
    await client.aclose()


async def test_killed_run_resumes_without_repeating_completed_calls(moonshot_server_factory, tmp_path: Path):
    server = moonshot_server_factory()
    await _run(server, f"sqlite:///{tmp_path / 'reference.db'}")
    total = sum(r.status == 200 for r in server.chat_log())
    assert total >= 10

    server.gateway.reset_stats()
    server.gateway.configure(latency=Latency(ttft_s=0.04, per_token_s=0.0))
    url = f"sqlite:///{tmp_path / 'tome.db'}"
    Store(url)  # create the schema before the child starts
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", _RUN, server.base_url, server.api_key, url, str(CHAPTERS)],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while sum(r.status == 200 for r in server.chat_log()) < total // 2:
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the child run made no progress"
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    store = Store(url)
    completed = store.cache_stats().entries
    assert total // 2 - 2 <= completed < total
    assert store.list_runs()[0].status == "interrupted"  # killed: nobody closed it, and its process is gone

    server.gateway.configure(latency=Latency.zero())
    server.gateway.reset_stats()
    await _run(server, url)
    remade = server.gateway.stats().requests
    assert remade == total - completed  # every completed call came from the cache
    assert [r.status for r in store.list_runs()] == ["done", "interrupted"]
