"""Documents as flow runs on a work pool, for real: `prefect server start` on PostgreSQL, two `prefect worker`
processes, tome's database on the same PostgreSQL, the project's test server with tight limits, 40 documents
(one corrupt), and one worker killed mid-run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from pipeline.config import RateLimits
from pipeline.db import make_engine
from pipeline.testing import Latency, MoonshotTestServer
from pipeline.testing.cluster import BIN, deploy, kill_tree, start_prefect_server, start_worker
from pipeline.testing.postgres import create_database

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
POOL = "tome-it"
LIMITS = RateLimits(concurrency=4, rpm=150)  # the account's limits: the workers' shared budget must keep them
TOPICS = ["harbour", "orchard", "railway", "library", "glacier", "market", "observatory", "vineyard", "foundry",
          "lighthouse", "monastery", "canal", "quarry"]  # fmt: skip


def _documents(folder: Path, n_good: int = 39) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(n_good):
        topic = TOPICS[i % len(TOPICS)]
        body = " ".join(
            f"Report {i} on the {topic}: in week {w} the team counted {i * 7 + w} visitors, repaired {w + 2} "
            f"fittings and wrote down what the {topic} needs before winter."
            for w in range(1, 9)
        )
        path = folder / f"report-{i:02d}.txt"
        path.write_text(f"Report {i}: the {topic}\n\n{body}\n", encoding="utf-8")
        paths.append(path)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n")  # no %%EOF: corrupt
    return paths


@pytest.fixture
def prefect_server(postgres_server_url: str, tmp_path: Path) -> Iterator[str]:
    """`prefect server start` with its database on PostgreSQL; yields the API URL."""
    database = create_database(postgres_server_url).replace("postgresql+psycopg://", "postgresql+asyncpg://")
    server, url = start_prefect_server(database, tmp_path / "prefect-server")
    try:
        yield url
    finally:
        kill_tree(server)


_PARENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from flows.distributed import summarise_distributed
    from pipeline.options import SummariseOptions
    folder, out, base_url = sys.argv[1], sys.argv[2], sys.argv[3]
    options = SummariseOptions(backend="moonshot", base_url=base_url, concurrency=4, rpm=150, length="short")
    state = asyncio.run(summarise_distributed(inputs=[folder], output_dir=out, options=options, start_grace_s=45,
                                              return_state=True))
    data = state.result(raise_on_failure=False)
    print(json.dumps({"type": state.type.value, "message": state.message, "report": data}))
    """
)


def test_a_folder_on_two_workers_with_one_killed(
    prefect_server: str, postgres_server_url: str, tmp_path: Path
) -> None:
    tome_db = create_database(postgres_server_url)
    folder, out = tmp_path / "reports", tmp_path / "summaries"
    good = _documents(folder)
    srv = MoonshotTestServer(limits=LIMITS, latency=Latency(1.2, 0.004)).start()
    base_env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "TOME_DATABASE_URL": tome_db,
        "TOME_SHARED_BUDGET": "1",  # one rate budget across both workers
        "TOME_CLAIM_LEASE_S": "4",
        "MOONSHOT_API_KEY": srv.api_key,
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }
    workers: list[subprocess.Popen] = []
    try:
        deploy(POOL, {**base_env, "TOME_HOME": str(tmp_path / "deployer")}, cwd=REPO)
        for i in range(2):
            env = {**base_env, "TOME_HOME": str(tmp_path / f"w{i}"), "PREFECT_HOME": str(tmp_path / f"w{i}-prefect")}
            workers.append(start_worker(POOL, f"w{i}", env, limit=4, cwd=tmp_path))
        parent = subprocess.Popen(
            [sys.executable, "-c", _PARENT, str(folder), str(out), srv.base_url],
            env={**base_env, "TOME_HOME": str(tmp_path / "parent"), "PREFECT_HOME": str(tmp_path / "p-prefect")},
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        engine = make_engine(tome_db)  # migrated now: the parent polls it before any worker opens it
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                done = conn.execute(text("SELECT COUNT(*) FROM runs WHERE status = 'done'")).scalar_one()
            if done >= 8:
                break
            assert parent.poll() is None, parent.communicate()[1][-3000:]
            time.sleep(0.5)
        killed_at = srv.gateway.now()  # requests the server saw before this: both workers were alive
        kill_tree(workers[1])  # a machine lost mid-run: its worker and its flow-run processes
        stdout, stderr = parent.communicate(timeout=600)
        assert parent.returncode == 0, stderr[-3000:]
        result = json.loads(stdout.strip().splitlines()[-1])
        stats = srv.stats()
        with engine.connect() as conn:
            done_runs = conn.execute(text("SELECT document, calls FROM runs WHERE status = 'done'")).all()
            answers = conn.execute(text("SELECT COUNT(*) FROM cache")).scalar_one()
        engine.dispose()
    finally:
        for worker in workers:
            if worker.poll() is None:
                kill_tree(worker)
        srv.stop()

    assert result["type"] == "FAILED" and "1 of 40 documents failed" in result["message"]
    report = {Path(r["document"]).name: r for r in result["report"]}
    assert report["broken.pdf"]["state"] == "FAILED"
    assert "damaged" in report["broken.pdf"]["reason"] and "\n" not in report["broken.pdf"]["reason"]
    assert all(report[p.name]["state"] == "COMPLETED" for p in good)
    # Every good document summarised exactly once: a document taken over after the kill may show a second
    # finished run, but that one read every answer from the cache (0 calls).
    by_document: dict[str, list[int]] = {}
    for document, calls in done_runs:
        by_document.setdefault(Path(document).name, []).append(calls)
    assert sorted(by_document) == sorted(p.name for p in good)
    assert all(sum(1 for c in calls if c > 0) == 1 for calls in by_document.values()), by_document
    assert all((out / f"{p.stem}.summary.md").is_file() for p in good)
    # One budget across both workers: no 429.
    assert stats.rate_limited == {} and stats.by_status.get(429, 0) == 0
    # No call paid twice while both workers ran (a claim lapsing under a live, slow worker would show here)...
    chat = [r for r in stats.log if r.endpoint == "chat"]
    before_kill = Counter(r.messages_hash for r in chat if r.t < killed_at)
    assert all(n == 1 for n in before_kill.values()), before_kill
    # ...and after it only the calls of runs lost with the killed worker: each is submitted again, and each
    # document here is one call. (Not the server's in-flight count sampled before the kill: the worker may
    # start, or be answered for, a call it never caches between that sample and its death.)
    resubmitted = sum(r["attempts"] - 1 for r in result["report"])
    assert answers <= stats.requests <= answers + resubmitted, (stats.requests, answers, resubmitted)
