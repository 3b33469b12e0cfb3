"""tome and LangChain's async map-reduce on an obedient and a disobedient Moonshot-compatible server, side by side.

Run from the repo root (LangChain runs in bench/.venv-peers, see bench/requirements-peers.txt):

    .venv/bin/python bench/bench_disobedient.py [--docs alice,pride] [--no-tpm] [--no-write]

Server modes (pipeline/testing):
- obedient: the model writes at most the length it is asked for; its tokenizer is the test server's own.
- disobedient: the model writes 1.3-2x the length it is asked for (whole sentences, cut at max_tokens), and its
  tokenizer counts 15 % more than tome's calibration expects for the document (the scale is computed per
  document: server tokens = 1.15 x cl100k tokens x the model's calibration).
Both report prefix-cache hits as ``cached_tokens`` (whole leading messages seen before).

Cells: generous limits (concurrency 50, RPM 200, TPM 2M) for tome (default settings, carry-forward on) and
LangChain map-reduce; TPM 20,000 (concurrency 8, RPM 120) for tome on Alice, with two bounds: the token bound
(the admitted tokens' 60-s windows: (ceil(admitted / TPM) - 1) x 60 s plus the last call's latency) and the
schedule bound (the least time the limits allow for the same calls, levels in order; bench_budget's simulator).
Token figures are the server's: admitted = prompt + max_tokens of admitted calls; billed = prompt tokens of
answered calls (Kimi bills cached input at a quarter: "billed, cache-discounted" counts them so).
Results: bench/results/disobedient.md and bench/results/disobedient.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_budget import LoggedCall, minimum_schedule  # noqa: E402
from bench.peers.serve import LATENCY, serve  # noqa: E402
from pipeline.config import RateLimits, load_catalog  # noqa: E402
from pipeline.documents import load_document  # noqa: E402
from pipeline.testing import Latency, Obedience, ServerTokenizer  # noqa: E402
from pipeline.tokens import TiktokenCounter  # noqa: E402

BENCH = REPO / "bench"
RESULTS_MD = BENCH / "results" / "disobedient.md"
RESULTS_JSON = BENCH / "results" / "disobedient.json"
PEERS_PY = BENCH / ".venv-peers" / "bin" / "python"
TOME_PY = REPO / ".venv" / "bin" / "python"
CORPUS = REPO.parent / "shared" / "corpus" / "books"
MODEL = "moonshot-v1-8k"
DOCS = {"alice": "en_alice_in_wonderland_pg11.txt", "pride": "en_pride_and_prejudice_pg1342.txt"}
TITLES = {"alice": "Alice in Wonderland", "pride": "Pride and Prejudice"}
GENEROUS = {"concurrency": 50, "rpm": 200, "tpm": 2_000_000}
TIGHT = {"concurrency": 8, "rpm": 120, "tpm": 20_000}
OFF_CALIBRATION = 1.15


def server_modes(doc: str, mode: str) -> dict[str, Any]:
    """Test-server options for a mode; the disobedient tokenizer is scaled for this document."""
    if mode == "obedient":
        return {"prefix_cache": True}
    text = load_document(CORPUS / DOCS[doc]).text
    calibration = load_catalog().model(MODEL).calibration
    expected = TiktokenCounter().count(text) * calibration
    scale = OFF_CALIBRATION * expected / ServerTokenizer().count(text)
    return {"obedience": Obedience.disobedient(), "token_scale": round(scale, 4), "prefix_cache": True}


def run(system: str, doc: str, mode: str, limits: dict[str, int], log: Any, *, fixed: bool = False) -> dict[str, Any]:
    python, script = {"tome": (TOME_PY, "tome_driver.py"), "langchain": (PEERS_PY, "langchain_mapreduce.py")}[system]
    modes = server_modes(doc, mode)
    with tempfile.TemporaryDirectory(prefix=f"bench-{system}-") as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, "TOME_HOME": str(Path(tmp) / "home"), "PREFECT_HOME": str(Path(tmp) / "prefect"),
               "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        with serve(**limits, **modes) as server:
            env["BENCH_API_KEY"] = server.api_key
            doc_tokens = server.server.tokenizer.count(load_document(CORPUS / DOCS[doc]).text)
            cmd = [str(python), str(BENCH / "peers" / script), "--base-url", server.base_url, "--model", MODEL,
                   "--doc", str(CORPUS / DOCS[doc]), "--concurrency", str(limits["concurrency"]), "--out", str(out),
                   "--rpm", str(limits["rpm"]), "--tpm", str(limits["tpm"]), *(["--fixed"] if fixed else [])]
            started = time.perf_counter()
            proc = subprocess.run(cmd, cwd=BENCH / "peers", env=env, capture_output=True, text=True, timeout=1800)
            process_s = time.perf_counter() - started
            stats = server.server.stats()
        peer = json.loads(out.read_text()) if out.exists() else {}
    chat = [r for r in stats.log if r.endpoint == "chat"]
    ok = [r for r in chat if r.status == 200]
    cut = sum(r.finish_reason == "length" for r in ok)
    record = {
        "system": system + ("-fixed" if fixed else ""), "doc": doc, "mode": mode, "limits": limits, "server_modes": {
            k: (v.overshoot if isinstance(v, Obedience) else v) for k, v in modes.items()},
        "finished": bool(peer.get("finished")), "error": peer.get("error"),
        "wall_s": peer.get("elapsed_s"), "process_s": round(process_s, 2), "doc_tokens": doc_tokens,
        "calls": len(chat), "status": {str(k): v for k, v in stats.by_status.items()},
        "admitted": stats.tokens_admitted, "prompt": stats.prompt_tokens, "cached": stats.cached_tokens,
        "completion": stats.completion_tokens, "cut_off": cut,
        "resent": len(ok) - len({r.messages_hash for r in ok}),
        "tome": peer.get("extra", {}), "stderr_tail": (proc.stderr or "")[-1500:],
    }
    if limits is TIGHT and ok:
        t0 = min(r.t for r in ok)
        last = max(ok, key=lambda r: r.t)
        token_bound = (math.ceil(stats.tokens_admitted / limits["tpm"]) - 1) * 60 + Latency(
            **LATENCY).total(last.completion_tokens)
        per_level = record["tome"].get("calls_per_level") or [len(ok)]
        bounds = [sum(per_level[: i + 1]) for i in range(len(per_level))]
        calls = [
            LoggedCall(t=r.t - t0, cost=r.admission_tokens, latency_s=Latency(**LATENCY).total(r.completion_tokens),
                       level=next((j for j, b in enumerate(bounds) if i < b), len(bounds) - 1))
            for i, r in enumerate(sorted(ok, key=lambda r: r.t))
        ]
        sched = minimum_schedule(calls, RateLimits(**limits))
        record["token_bound_s"] = round(token_bound, 1)
        started = record["tome"].get("started_wall")
        record["start_s"] = round(t0 - started, 2) if started else None  # loading and planning, before any call
        # Every chat request as the server saw it, from the first answered one: where the window room went.
        record["timeline"] = [
            [round(r.t - t0, 2), r.status, r.admission_tokens, r.prompt_tokens, r.max_tokens, r.completion_tokens,
             r.finish_reason]
            for r in sorted(chat, key=lambda r: r.t)
        ]
        record["schedule_bound_s"] = round(max(f for _, f in sched), 1)
    log(f"{system} {doc} {mode} {'TPM20k' if limits is TIGHT else 'generous'}: "
        f"{'ok' if record['finished'] else 'FAILED ' + str(record['error'])[:120]} {record['wall_s']} s, "
        f"{record['calls']} calls, admitted {record['admitted'] / doc_tokens:.2f}x, "
        f"billed {record['prompt'] / doc_tokens:.2f}x")
    return record


def ratio(r: dict[str, Any], key: str) -> str:
    return f"{r[key] / r['doc_tokens']:.2f}×"


def render(records: list[dict[str, Any]]) -> str:
    lines = [
        "# Obedient vs disobedient server (`bench/bench_disobedient.py`)",
        "",
        "moonshot-v1-8k on the project's test server, latency 0.5 s + 5 ms per output token, tome with default "
        "settings (carry-forward on). *disobedient*: the model writes 1.3-2× the length asked for and the "
        "tokenizer counts 15 % above tome's calibration. Ratios are to the document's tokens as that server "
        "counts them. *billed* = prompt tokens of answered calls; *billed, cache-discounted* counts cached prompt "
        "tokens at a quarter (Kimi's price). *cut* = answers that stopped at max_tokens; *resent* = prompts sent "
        "again with identical messages.",
        "",
        "## Generous limits (concurrency 50, RPM 200, TPM 2M)",
        "",
        "| document | server | system | wall | calls | 400 | admitted | billed | billed, cache-discounted | cut | "
        "resent | truncated kept | trimmed |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        if r["limits"] is not GENEROUS and r["limits"] != GENEROUS:
            continue
        usage = r["tome"].get("usage") or {}
        billed_cd = (r["prompt"] - 0.75 * r["cached"]) / r["doc_tokens"]
        lines.append(
            f"| {TITLES[r['doc']]} | {r['mode']} | {r['system']} | "
            f"{r['wall_s'] if r['finished'] else 'failed'} s | {r['calls']} | {r['status'].get('400', 0)} | "
            f"{ratio(r, 'admitted')} | {ratio(r, 'prompt')} | {billed_cd:.2f}× | {r['cut_off']} | {r['resent']} | "
            f"{usage.get('truncated', '—')} | {usage.get('trimmed', '—')} |"
        )
    lines += ["", "Wall time, tome / LangChain map-reduce (same document and server):", ""]
    for doc in TITLES:
        for mode in ("obedient", "disobedient"):
            cell = {r["system"]: r for r in records if r["doc"] == doc and r["mode"] == mode
                    and r["limits"] == GENEROUS and r["finished"]}
            peer = cell.get("langchain") or cell.get("langchain-fixed")
            if "tome" in cell and peer:
                lines.append(f"- {TITLES[doc]}, {mode}: {cell['tome']['wall_s']} s / {peer['wall_s']} s ({peer['system']}) "
                             f"= {cell['tome']['wall_s'] / peer['wall_s']:.2f}")
    tight = [r for r in records if r["limits"] == TIGHT]
    if tight:
        lines += [
            "",
            "## TPM 20,000 (concurrency 8, RPM 120), tome",
            "",
            "*token bound* = (⌈A / TPM⌉ − 1) × 60 s + the last admitted call's latency, A = the prompt + max_tokens "
            "of every admitted call as the server counted them: any 60 s holds at most TPM tokens, so no schedule "
            "admits A tokens sooner. It runs from the first admission; *start* (loading and planning, before the "
            "first request) is in the wall time but not in the bound; the issue's target reads \"within 1.10× of the "
            "60-s-window bound for the tokens the run admitted (plus process start)\": *wall / (bound + start)*. "
            "*schedule bound* = the least time the limits "
            "allow for the same calls with levels in order (bench_budget's simulator over the server's log); "
            "*windows* = 60-s windows the admissions spanned.",
            "",
            "| document | server | wall | start | calls | 400 | 429 | admitted | windows | token bound | "
            "wall / token bound | wall / (bound + start) | schedule bound | wall / schedule bound |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in tight:
            spans = [t for t, status, *_ in r.get("timeline", []) if status == 200]
            windows = int(max(spans) // 60) + 1 if spans else "—"
            lines.append(
                f"| {TITLES[r['doc']]} | {r['mode']} | {r['wall_s']} s | {r.get('start_s', '—')} s | {r['calls']} | "
                f"{r['status'].get('400', 0)} | {r['status'].get('429', 0)} | "
                f"{r['admitted']:,} ({ratio(r, 'admitted')}) | {windows} | {r['token_bound_s']} s | "
                f"{r['wall_s'] / r['token_bound_s']:.2f} | "
                f"{r['wall_s'] / (r['token_bound_s'] + (r.get('start_s') or 0)):.2f} | {r['schedule_bound_s']} s | "
                f"{r['wall_s'] / r['schedule_bound_s']:.2f} |"
            )
    lines += ["", recorded_line(), ""]
    return "\n".join(lines)


def recorded_line() -> str:
    """When the cells were recorded and how busy the shared machine was (its figures are ratios for that reason)."""
    return f"Recorded {time.strftime('%Y-%m-%d %H:%M')} UTC; load average {os.getloadavg()[0]:.1f} at the end (2 shared cores)."


def log(msg: str) -> None:
    """A timestamped progress line on stderr (the tables go to stdout)."""
    print(time.strftime("%H:%M:%S"), msg, file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="alice,pride")
    ap.add_argument("--no-tpm", action="store_true")
    ap.add_argument("--tpm-docs", default="alice", help="documents of the TPM 20,000 cells (e.g. alice,pride)")
    ap.add_argument("--modes", default="obedient,disobedient", help="server modes of the TPM cells")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--merge", action="store_true", help="merge these cells into the recorded results")
    ap.add_argument("--only", help="run just these cells (system:doc, e.g. langchain-fixed:pride) and merge them "
                    "into the recorded results")
    args = ap.parse_args()
    if not CORPUS.is_dir():
        print(f"skipped: {CORPUS} is absent")
        return 0

    records: list[dict[str, Any]] = []
    if args.only:
        records = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else []
        for cell in args.only.split(","):
            system, doc = cell.split(":")
            base = system.removesuffix("-fixed")
            for mode in ("obedient", "disobedient"):
                records.append(run(base, doc, mode, GENEROUS, log, fixed=system.endswith("-fixed")))
        args.no_tpm = True
        docs: list[str] = []
    else:
        docs = [d for d in args.docs.split(",") if d]
    for doc in docs:
        for mode in ("obedient", "disobedient"):
            records.append(run("tome", doc, mode, GENEROUS, log))
            if PEERS_PY.exists():
                records.append(run("langchain", doc, mode, GENEROUS, log))
    if not args.no_tpm:
        for doc in args.tpm_docs.split(","):
            for mode in args.modes.split(","):
                records.append(run("tome", doc, mode, TIGHT, log))
    if args.merge and RESULTS_JSON.exists():  # keep the recorded cells these runs did not redo
        redone = {(r["system"], r["doc"], r["mode"], json.dumps(r["limits"], sort_keys=True)) for r in records}
        kept = [r for r in json.loads(RESULTS_JSON.read_text())
                if (r["system"], r["doc"], r["mode"], json.dumps(r["limits"], sort_keys=True)) not in redone]
        records = kept + records
    text = render(records)
    print(text)
    if not args.no_write:
        RESULTS_MD.write_text(text, encoding="utf-8")
        RESULTS_JSON.write_text(json.dumps(records, indent=1, default=str), encoding="utf-8")
    else:  # kept for a look at the timelines (bench/out is not tracked)
        scratch = BENCH / "out" / f"disobedient-{os.getpid()}.json"
        scratch.parent.mkdir(exist_ok=True)
        scratch.write_text(json.dumps(records, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
