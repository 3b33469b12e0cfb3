"""tome against its peers on the project's Moonshot-compatible test server: same limits, latency and documents.

Run from the repo root with the project's venv (peers run as subprocesses in bench/.venv-peers):

    .venv/bin/python bench/bench_peers.py [--docs alice,pride,xiyouji] [--limits tier1,tpm60k]
        [--systems tome,tome-nocarry,langchain-mapreduce,langgraph-mapreduce,langchain-refine,
                   llamaindex-tree,cookbook,cookbook-flat]
        [--timeout 1200] [--jobs 1] [--force]

Every cell (document x limits x system) gets a fresh server (fresh counters and rate windows) and writes
bench/results/peers-raw/<doc>__<limits>__<system>.json as soon as it ends; existing cells are skipped unless
--force, so an interrupted matrix resumes. bench/results/peers.md is regenerated from all raw files at the end
(or alone with --report-only).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.peers.serve import LATENCY, serve  # noqa: E402

BENCH = REPO / "bench"
RAW = BENCH / "results" / "peers-raw"
REPORT = BENCH / "results" / "peers.md"
PEERS_PY = BENCH / ".venv-peers" / "bin" / "python"
TOME_PY = REPO / ".venv" / "bin" / "python"
CORPUS = REPO.parent / "shared" / "corpus" / "books"
MODEL = "moonshot-v1-8k"
PRICE_IN, PRICE_OUT = 2.0, 10.0  # CNY per 1M tokens, moonshot-v1-8k

DOCS = {
    "alice": "en_alice_in_wonderland_pg11.txt",
    "pride": "en_pride_and_prejudice_pg1342.txt",
    "xiyouji": "zh_xiyouji_pg23962.txt",
}
DOC_TITLES = {"alice": "Alice in Wonderland", "pride": "Pride and Prejudice", "xiyouji": "西遊記"}


@dataclass(frozen=True)
class Limits:
    """One limit setting, applied identically to the server and told to every system."""

    name: str
    label: str
    concurrency: int
    rpm: int
    tpm: int
    tpd: int = 0


LIMITS = {
    "tier1": Limits("tier1", "Tier1-like (conc 50, RPM 200, TPM 2M)", 50, 200, 2_000_000),
    "tpm60k": Limits("tpm60k", "TPM-bound (conc 8, RPM 120, TPM 60k)", 8, 120, 60_000),
}

# system -> (interpreter, script, extra args)
SYSTEMS: dict[str, tuple[Path, str, list[str]]] = {
    "tome": (TOME_PY, "tome_driver.py", []),
    "tome-nocarry": (TOME_PY, "tome_driver.py", ["--context-strategy", "none"]),
    "langchain-mapreduce": (PEERS_PY, "langchain_mapreduce.py", []),
    "langgraph-mapreduce": (PEERS_PY, "langgraph_mapreduce.py", []),
    "langchain-refine": (PEERS_PY, "langchain_refine.py", []),
    "llamaindex-tree": (PEERS_PY, "llamaindex_tree.py", []),
    "cookbook": (PEERS_PY, "cookbook.py", []),
    "cookbook-flat": (PEERS_PY, "cookbook.py", ["--flat"]),
    # The failure remedies from the report, applied (not in the default matrix; pick with --systems).
    "langchain-mapreduce-fixed": (PEERS_PY, "langchain_mapreduce.py", ["--fixed"]),
    "langgraph-mapreduce-fixed": (PEERS_PY, "langgraph_mapreduce.py", ["--fixed"]),
    "langchain-refine-fixed": (PEERS_PY, "langchain_refine.py", ["--fixed"]),
    "llamaindex-tree-fixed": (PEERS_PY, "llamaindex_tree.py", ["--fixed"]),
}
DEFAULT_SYSTEMS = [s for s in SYSTEMS if not s.endswith("-fixed")]


def doc_path(doc: str) -> Path:
    return CORPUS / DOCS[doc]


def cell_path(doc: str, limits: str, system: str) -> Path:
    return RAW / f"{doc}__{limits}__{system}.json"


def cost(prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * PRICE_IN + completion_tokens * PRICE_OUT) / 1_000_000


def run_cell(doc: str, limits: Limits, system: str, *, timeout_s: float, log: Any) -> dict[str, Any]:
    """One system on one document under one limit setting, on its own fresh server."""
    python, script, extra = SYSTEMS[system]
    with tempfile.TemporaryDirectory(prefix=f"bench-{system}-") as tmp:
        out = Path(tmp) / "peer.json"
        env = dict(os.environ)
        env.update(
            TOME_HOME=str(Path(tmp) / "tome-home"),  # fresh cache per cell: nothing is free
            PREFECT_HOME=str(Path(tmp) / "prefect-home"),
            PYTHONUNBUFFERED="1",
            TOKENIZERS_PARALLELISM="false",
        )
        with serve(
            concurrency=limits.concurrency, rpm=limits.rpm, tpm=limits.tpm, tpd=limits.tpd
        ) as server:
            env["BENCH_API_KEY"] = server.api_key
            cmd = [
                str(python), str(BENCH / "peers" / script),
                "--base-url", server.base_url, "--model", MODEL, "--doc", str(doc_path(doc)),
                "--concurrency", str(limits.concurrency), "--out", str(out),
                "--rpm", str(limits.rpm), "--tpm", str(limits.tpm), "--tpd", str(limits.tpd), *extra,
            ]
            start = time.perf_counter()
            proc = subprocess.Popen(
                cmd, cwd=str(BENCH / "peers"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, start_new_session=True,
            )
            timed_out = False
            try:
                output, _ = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    output, _ = proc.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    output, _ = proc.communicate()
            wall = time.perf_counter() - start
            counters = server.counters()
        peer: dict[str, Any] = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    finished = bool(peer.get("finished")) and not timed_out
    if timed_out:
        status = f"timeout after {timeout_s:.0f}s"
    elif finished:
        status = "finished"
    else:
        status = f"failed ({peer.get('error_kind') or 'no result'})"
    record = {
        "doc": doc, "limits": limits.name, "system": system, "status": status, "finished": finished,
        "wall_s": round(peer.get("elapsed_s") or wall, 2) if finished else round(wall, 2),
        "process_wall_s": round(wall, 2),
        "server": counters,
        "cost_cny": round(cost(counters.get("prompt_tokens", 0), counters.get("completion_tokens", 0)), 4),
        "peer": peer,
        "limits_detail": asdict(limits),
        "latency": LATENCY,
        "timeout_s": timeout_s,
        "command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
        "output_tail": (output or "")[-3000:],
        "recorded_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    log(f"{doc}/{limits.name}/{system}: {status} in {record['wall_s']}s, "
        f"{counters.get('requests')} calls, {counters.get('rate_limited')} x 429, ¥{record['cost_cny']}")
    return record


def write_cell(record: dict[str, Any]) -> None:
    RAW.mkdir(parents=True, exist_ok=True)
    path = cell_path(record["doc"], record["limits"], record["system"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)


def plan(docs: list[str], limits: list[str], systems: list[str]) -> list[tuple[str, str, str]]:
    """Cheap cells first: smaller documents before bigger, generous limits before TPM-bound."""
    order = {d: i for i, d in enumerate(DOCS)}
    lorder = {name: i for i, name in enumerate(LIMITS)}
    cells = [(d, lim, s) for d in docs for lim in limits for s in systems]
    return sorted(cells, key=lambda c: (order[c[0]], lorder[c[1]], systems.index(c[2])))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default=",".join(DOCS))
    ap.add_argument("--limits", default=",".join(LIMITS))
    ap.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS))
    ap.add_argument("--timeout", type=float, default=1200.0, help="per-cell timeout in seconds")
    ap.add_argument("--jobs", type=int, default=1, help="cells run at once (each on its own server)")
    ap.add_argument("--force", action="store_true", help="re-run cells that already have a raw result")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    docs = [d for d in args.docs.split(",") if d]
    limits = [x for x in args.limits.split(",") if x]
    systems = [s for s in args.systems.split(",") if s]
    for name, known in (("doc", DOCS), ("limits", LIMITS), ("system", SYSTEMS)):
        chosen = {"doc": docs, "limits": limits, "system": systems}[name]
        bad = [x for x in chosen if x not in known]
        if bad:
            ap.error(f"unknown {name}: {', '.join(bad)} (known: {', '.join(known)})")
    lock = threading.Lock()
    # A server stopped under a failed peer cancels its sleeping handlers; uvicorn would print each traceback.
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)

    def log(msg: str) -> None:
        with lock:
            print(time.strftime("%H:%M:%S"), msg, flush=True)

    if not args.report_only:
        cells = []
        for d, lim, s in plan(docs, limits, systems):
            if not doc_path(d).exists():
                log(f"skip {d}: {doc_path(d)} is absent")
                continue
            if cell_path(d, lim, s).exists() and not args.force:
                log(f"skip {d}/{lim}/{s}: already recorded")
                continue
            cells.append((d, lim, s))

        def one(cell: tuple[str, str, str]) -> None:
            d, lim, s = cell
            log(f"start {d}/{lim}/{s}")
            try:
                write_cell(run_cell(d, LIMITS[lim], s, timeout_s=args.timeout, log=log))
            except Exception as exc:  # noqa: BLE001 - one broken cell must not stop the matrix
                log(f"{d}/{lim}/{s}: runner error {type(exc).__name__}: {exc}")
            with lock:
                write_report()

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(one, cells))
    write_report()
    return 0


def load_cells() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(RAW.glob("*.json"))]


def write_report() -> None:
    from bench.peers.report import render

    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(render(load_cells(), docs=DOC_TITLES, limits=LIMITS, systems=list(SYSTEMS)),
                      encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
