"""Where tome's billed prompt tokens go on the disobedient test server: document text, carried context, fixed
instructions, merge inputs, extra calls from splits and cut-off recovery.

Run from the repo root:

    .venv/bin/python bench/bench_billing.py [--docs alice,pride] [--recovery trim|continue] [--no-write]

tome runs in this process (``pipeline.asummarise``, default settings, carry-forward on) against the project's
test server in its disobedient mode (as bench/bench_disobedient.py sets it up). Every answered call's exact
prompt is read back from tome's cache and cut into parts; each part's share of the call's billed
``prompt_tokens`` is its share of the server's own count of the prompt. Ratios are to the document's tokens as
the server counts them. Results: bench/results/billing.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_disobedient import CORPUS, DOCS, GENEROUS, MODEL, TITLES, server_modes  # noqa: E402
from bench.peers.serve import serve  # noqa: E402
from pipeline.documents import load_document  # noqa: E402
from pipeline.testing import ServerTokenizer  # noqa: E402

RESULTS_MD = REPO / "bench" / "results" / "billing.md"
CONTEXT = re.compile(r"<context>\n.*?\n</context>\n", re.DOTALL)
TEXT = re.compile(r"<text>\n(.*?)\n</text>", re.DOTALL)
SUMMARY = re.compile(r"<summary\b[^>]*>\n(.*?)\n</summary>", re.DOTALL)
PARTS = ("system", "instructions", "context", "document", "merge inputs", "assistant prefill")


def split_prompt(messages: list[dict[str, Any]], tok: ServerTokenizer) -> Counter[str]:
    """Server tokens of each part of one prompt (message framing goes to instructions)."""
    parts: Counter[str] = Counter()
    for m in messages:
        content = str(m.get("content") or "")
        if m["role"] == "system":
            parts["system"] += tok.count(content)
            continue
        if m["role"] == "assistant":
            parts["assistant prefill"] += tok.count(content)
            continue
        rest = content
        for block in CONTEXT.findall(content):
            parts["context"] += tok.count(block)
            rest = rest.replace(block, "")
        for body in TEXT.findall(rest):
            parts["document"] += tok.count(body)
            rest = rest.replace(body, "")
        for body in SUMMARY.findall(rest):
            parts["merge inputs"] += tok.count(body)
            rest = rest.replace(body, "")
        parts["instructions"] += tok.count(rest)
    return parts


def breakdown(db: Path, tok: ServerTokenizer) -> dict[str, Any]:
    """Billed prompt tokens by part, by level, plus the calls that re-sent material (splits, continuations)."""
    con = sqlite3.connect(db)
    rows = con.execute("SELECT key, messages, prompt_tokens, cached_tokens, finish_reason FROM cache").fetchall()
    levels = dict(con.execute("SELECT key, MIN(level) FROM run_calls GROUP BY key").fetchall())
    outcomes = Counter(o for (o,) in con.execute("SELECT outcome FROM run_calls"))
    con.close()
    parts: Counter[str] = Counter()
    by_level: Counter[int] = Counter()
    cached = billed = 0
    for key, messages, prompt, cached_tokens, _finish in rows:
        msgs = json.loads(messages)
        split = split_prompt(msgs, tok)
        total = sum(split.values()) or 1
        for name, n in split.items():
            parts[name] += prompt * n / total  # scaled to what the server billed (framing included)
        by_level[levels.get(key, -1)] += prompt
        billed += prompt
        cached += cached_tokens
    return {"parts": dict(parts), "by_level": dict(by_level), "billed": billed, "cached": cached,
            "answered": len(rows), "outcomes": dict(outcomes)}


async def run_tome(doc: str, base_url: str, api_key: str, home: Path) -> Any:
    import pipeline

    os.environ["TOME_HOME"] = str(home)
    options = pipeline.SummariseOptions.build(
        backend="moonshot", model=MODEL, base_url=base_url, concurrency=GENEROUS["concurrency"],
        rpm=GENEROUS["rpm"], tpm=GENEROUS["tpm"],
    )  # fmt: skip
    return await pipeline.asummarise(str(CORPUS / DOCS[doc]), options, api_key=api_key)


def measure(doc: str) -> dict[str, Any]:
    modes = server_modes(doc, "disobedient")
    text = load_document(CORPUS / DOCS[doc]).text
    with tempfile.TemporaryDirectory(prefix="bench-billing-") as tmp, serve(**GENEROUS, **modes) as server:
        tok = server.server.gateway.tokenizer
        doc_tokens = tok.count(text)
        started = time.perf_counter()
        summary = asyncio.run(run_tome(doc, server.base_url, server.api_key, Path(tmp)))
        wall = time.perf_counter() - started
        stats = server.server.stats()
        found = breakdown(Path(tmp) / "tome.db", tok)
    chat = [r for r in stats.log if r.endpoint == "chat"]
    usage = summary.usage
    return {
        "doc": doc, "doc_tokens": doc_tokens, "wall_s": round(wall, 2), **found,
        "calls": len(chat), "refused": sum(r.status == 400 for r in chat),
        "admitted": stats.tokens_admitted, "server_prompt": stats.prompt_tokens,
        "server_cached": stats.cached_tokens, "cut": sum(r.finish_reason == "length" for r in chat),
        "usage": {k: getattr(usage, k, None) for k in ("trimmed", "truncated", "retries", "splits", "continued", "refitted")},
        "final_tokens": tok.count(summary.final),
    }


def render(records: list[dict[str, Any]]) -> str:
    lines = [
        "# Where the billed prompt tokens go (`bench/bench_billing.py`)",
        "",
        "tome with default settings (carry-forward on) on the disobedient test server (moonshot-v1-8k; writes "
        "1.3-2× the length asked, tokenizer 15 % above tome's calibration), generous limits. Each cell: "
        "billed prompt tokens of that part / the document's tokens (server counts).",
        "",
        "| document | " + " | ".join(PARTS) + " | billed | cached at ¼ | admitted | calls | 400 | cut | trimmed |"
        " continued | level 0 / 1+ |",
        "|---|" + "---:|" * (len(PARTS) + 9),
    ]
    for r in records:
        d = r["doc_tokens"]
        cells = [f"{r['parts'].get(p, 0) / d:.3f}" for p in PARTS]
        lvl0 = r["by_level"].get(0, 0) + r["by_level"].get("0", 0)
        discounted = (r["server_prompt"] - 0.75 * r["server_cached"]) / d
        lines.append(
            f"| {TITLES[r['doc']]} | " + " | ".join(cells) + f" | {r['server_prompt'] / d:.3f}× | {discounted:.3f}× "
            f"| {r['admitted'] / d:.3f}× | {r['calls']} | {r['refused']} | {r['cut']} | {r['usage'].get('trimmed')} | "
            f"{r['usage'].get('continued', '—')} | {lvl0 / d:.3f} / {(r['server_prompt'] - lvl0) / d:.3f} |"
        )
    lines += ["", f"Recorded {time.strftime('%Y-%m-%d %H:%M')} UTC.", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="alice,pride")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not CORPUS.is_dir():
        print(f"skipped: {CORPUS} is absent")
        return 0
    records = [measure(doc) for doc in args.docs.split(",") if doc]
    for r in records:
        print(json.dumps({k: v for k, v in r.items()}, default=str), file=sys.stderr)
    text = render(records)
    print(text)
    if not args.no_write:
        RESULTS_MD.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
