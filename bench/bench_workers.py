"""Documents per minute on a Prefect work pool with 1, 2 and 4 workers, side by side in one run.

Two regimes, each against the project's test server (pipeline/testing):
- latency-bound: every call takes seconds, limits are generous -> more workers should scale near-linearly;
- rate-bound: the account's RPM binds -> every worker count should take about the same wall time (the shared
  SQL budget keeps all workers together under one limit; more workers cannot go faster, and must not 429).

Each configuration gets a fresh tome database and work pool on one PostgreSQL server and one `prefect server`;
the parent flow (summarise-distributed) runs in this process' child and submits one run per document.
Usage: .venv/bin/python bench/bench_workers.py [--docs 16] [--workers 1 2 4] [--out bench/results/workers.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import RateLimits
from pipeline.testing import Latency, MoonshotTestServer
from pipeline.testing.cluster import deploy, kill_tree, start_prefect_server, start_worker
from pipeline.testing.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[1]

_PARENT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from flows.distributed import summarise_distributed
    from pipeline.options import SummariseOptions
    folder, base_url, deployment, limits = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    options = SummariseOptions(backend="moonshot", base_url=base_url, length="short", **limits)
    started = time.monotonic()
    state = asyncio.run(summarise_distributed(inputs=[folder], options=options, deployment=deployment,
                                              return_state=True))
    print(json.dumps({"type": state.type.value, "seconds": time.monotonic() - started}))
    """
)


@dataclass(frozen=True)
class Regime:
    name: str
    limits: RateLimits
    latency: Latency


REGIMES = (
    Regime("latency-bound", RateLimits(concurrency=64, rpm=2000), Latency(6.0, 0.004)),
    Regime("rate-bound", RateLimits(concurrency=64, rpm=12), Latency(0.2, 0.001)),
)


def write_documents(folder: Path, n: int) -> None:
    """``n`` small distinct reports (one call each)."""
    folder.mkdir(parents=True)
    for i in range(n):
        body = " ".join(f"Item {i}.{w}: the depot logged {i * 11 + w} parcels and {w} delays." for w in range(12))
        (folder / f"doc-{i:03d}.txt").write_text(f"Depot report {i}\n\n{body}\n", encoding="utf-8")


def run_one(pg: PostgresServer, prefect_url: str, regime: Regime, workers: int, docs: int, tmp: Path) -> dict:
    tag = f"{regime.name}-{workers}"
    folder = tmp / tag / "docs"
    write_documents(folder, docs)
    srv = MoonshotTestServer(limits=regime.limits, latency=regime.latency).start()
    pool = f"bench-{tag}"
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "TOME_DATABASE_URL": pg.create_database(),
        "TOME_SHARED_BUDGET": "1",
        "MOONSHOT_API_KEY": srv.api_key,
        "TOME_HOME": str(tmp / tag / "home"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    procs = []
    try:
        deploy(pool, env, cwd=REPO)
        procs = [start_worker(pool, f"{tag}-w{i}", env, limit=4, cwd=tmp) for i in range(workers)]
        limits = {"concurrency": regime.limits.concurrency, "rpm": regime.limits.rpm}
        done = subprocess.run(
            [sys.executable, "-c", _PARENT, str(folder), srv.base_url, "summarise-document/tome-document",
             json.dumps(limits)],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        stats = srv.stats()
    finally:
        for proc in procs:
            kill_tree(proc)
        srv.stop()
    seconds = result["seconds"]
    return {
        "regime": regime.name,
        "workers": workers,
        "documents": docs,
        "state": result["type"],
        "seconds": round(seconds, 1),
        "docs_per_min": round(docs / seconds * 60, 1),
        "requests": stats.requests,
        "http_429": stats.by_status.get(429, 0),
        "max_concurrency": stats.max_concurrency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "workers.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tome-bench-workers-") as tmp_, PostgresServer() as pg:
        tmp = Path(tmp_)
        prefect_db = pg.create_database().replace("postgresql+psycopg://", "postgresql+asyncpg://")
        server, url = start_prefect_server(prefect_db, tmp / "prefect-server")
        try:
            for regime in REGIMES:
                for n in args.workers:
                    row = run_one(pg, url, regime, n, args.docs, tmp)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
        finally:
            kill_tree(server)
    head = "| regime | workers | documents | wall s | docs/min | requests | 429s | max concurrent calls |"
    lines = [
        f"# Documents per minute on a work pool (`bench/bench_workers.py`, {args.docs} documents, one call each)",
        "",
        f"Latency-bound: test server {REGIMES[0].latency.ttft_s} s per call, RPM {REGIMES[0].limits.rpm}. "
        f"Rate-bound: RPM {REGIMES[1].limits.rpm}, {REGIMES[1].latency.ttft_s} s per call. Workers run "
        "`--limit 4`; all share one PostgreSQL database and one rate budget.",
        "",
        head,
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['regime']} | {r['workers']} | {r['documents']} | {r['seconds']} | {r['docs_per_min']} | "
            f"{r['requests']} | {r['http_429']} | {r['max_concurrency']} |"
        )
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
