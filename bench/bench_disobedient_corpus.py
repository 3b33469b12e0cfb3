"""tome on the disobedient test server beyond Alice and Pride and Prejudice: does issue 14's behaviour generalise?

Run from the repo root:

    .venv/bin/python bench/bench_disobedient_corpus.py [--only DOC,DOC] [--models 8k,32k,128k] [--no-write]

Documents: the other corpus books, PDFs and the EPUB (../shared/corpus), the project's data/ samples, a
SQuALITY story, and texts cut from the books for edge cases: a very short one (one call), one just above one
8k window and one just above one 32k window, and one with no paragraph break at all. Server: the disobedient
model (writes 1.3-2x the length asked, cut at max_tokens) with its tokenizer +15 % or -15 % off tome's
calibration for the document's language (bench_disobedient's scale, computed per document), prefix caching on;
generous limits. Variants: moonshot-v1-8k/32k/128k, carry-forward context on and ``--context none``, and a
gateway without the token-count endpoint (tome then counts locally and learns from usage only).

Per cell, from the server's log: admitted and billed prompt tokens over the document's tokens (the server's
count), prompts sent twice, answers cut at max_tokens, summaries kept truncated (tome's usage), 400s after the
first answer reported its usage, 429s. Results: bench/results/disobedient_corpus.md (+ .json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_disobedient import BENCH, GENEROUS, TIGHT, TOME_PY, log, recorded_line  # noqa: E402
from bench.peers.serve import LATENCY, serve  # noqa: E402
from pipeline.config import load_catalog  # noqa: E402
from pipeline.documents import detect_language, load_document  # noqa: E402
from pipeline.testing import Latency, Obedience, ServerTokenizer  # noqa: E402
from pipeline.tokens import TiktokenCounter  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus"
RESULTS_MD = BENCH / "results" / "disobedient_corpus.md"
RESULTS_JSON = BENCH / "results" / "disobedient_corpus.json"
MODELS = {"8k": "moonshot-v1-8k", "32k": "moonshot-v1-32k", "128k": "moonshot-v1-128k"}
ADMITTED_MAX, BILLED_MAX = 1.3, 1.15  # the targets, times the document's tokens


@dataclass(frozen=True)
class Doc:
    """A bench document: a corpus/data file, or a text cut from one (``cut`` builds it from the source's text)."""

    key: str
    title: str
    path: Path
    cut: str | None = None  # short | above-8k | above-32k | no-breaks


DOCS = [
    Doc("alice", "Alice in Wonderland", CORPUS / "books" / "en_alice_in_wonderland_pg11.txt"),
    Doc("pride", "Pride and Prejudice", CORPUS / "books" / "en_pride_and_prejudice_pg1342.txt"),
    Doc("lighthouse", "data/the_lighthouse_keeper.md", REPO / "data" / "the_lighthouse_keeper.md"),
    Doc("shanju", "data/zh_shanju_ji.txt (ZH)", REPO / "data" / "zh_shanju_ji.txt"),
    Doc("xiyouji", "西遊記 (ZH book)", CORPUS / "books" / "zh_xiyouji_pg23962.txt"),
    Doc("fedreg", "Federal Register PDF (3 col)", CORPUS / "pdfs" / "en_report_federal_register_2020-17221_3col.pdf"),
    Doc("dmca", "DMCA report PDF", CORPUS / "pdfs" / "en_report_dmca_summary_us_copyright_office_1998.pdf"),
    Doc("dpr", "DPR paper PDF (2 col)", CORPUS / "pdfs" / "en_paper_dpr_2col_arxiv2004.04906.pdf"),
    Doc("cjkpdf", "ElegantBook manual PDF (ZH)", CORPUS / "pdfs" / "cjk_zh_elegantbook_manual_15p.pdf"),
    Doc("epub", "EPUB 3 spec", CORPUS / "epub" / "epub30_spec_idpf_sample.epub"),
    Doc("squality", "SQuALITY story (longest dev)", CORPUS / "eval" / "squality_v1-3_txt_dev.jsonl"),
    Doc("short", "short (1,500 chars of Alice)", CORPUS / "books" / "en_alice_in_wonderland_pg11.txt", "short"),
    Doc("above8k", "just above one 8k window (Alice)", CORPUS / "books" / "en_alice_in_wonderland_pg11.txt",
        "above-8k"),
    Doc("above32k", "just above one 32k window (P&P)", CORPUS / "books" / "en_pride_and_prejudice_pg1342.txt",
        "above-32k"),
    Doc("wide", "P&P re-chaptered: chapters of ~1.15 chunks (8k)",
        CORPUS / "books" / "en_pride_and_prejudice_pg1342.txt", "wide-chapters"),
    Doc("nobreaks", "P&P, first 40 %, no paragraph breaks", CORPUS / "books" / "en_pride_and_prejudice_pg1342.txt",
        "no-breaks"),
]


def source_text(doc: Doc) -> str:
    if doc.path.suffix == ".jsonl":  # SQuALITY: its longest dev story
        stories = [json.loads(line)["document"] for line in doc.path.read_text(encoding="utf-8").splitlines() if line]
        return max(stories, key=len)
    return load_document(doc.path).text


def materialise(doc: Doc, into: Path) -> Path:
    """The file tome reads for ``doc`` (corpus files as they are; cut texts written to ``into``)."""
    if doc.cut is None and doc.path.suffix != ".jsonl":
        return doc.path
    text = source_text(doc)
    tokens = ServerTokenizer()
    if doc.cut == "short":
        text = text[text.find("CHAPTER I") :][:1_500]
    elif doc.cut in ("above-8k", "above-32k"):
        target = 8_800 if doc.cut == "above-8k" else 34_000  # server tokens: a bit over one window
        start = text.find("CHAPTER I")
        lo, hi = start, len(text)
        while lo < hi:  # the shortest slice from ``start`` reaching the target
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if tokens.count(text[start:mid]) < target else (lo, mid)
        text = text[start:lo]
    elif doc.cut == "wide-chapters":  # each chapter a little over one 8k chunk: split in two halves
        body = re.sub(r"\n+Chapter [IVXLC]+\.?\s*\n+", "\n\n", text[text.find("Chapter I") :])
        paragraphs, chapters, size = body.split("\n\n"), [[]], 0
        for para in paragraphs:
            chapters[-1].append(para)
            size += tokens.count(para)
            if size > 7_500:
                chapters.append([])
                size = 0
        text = "\n\n".join(f"CHAPTER {n + 1}\n\n" + "\n\n".join(c) for n, c in enumerate(chapters) if c)
    elif doc.cut == "no-breaks":
        text = re.sub(r"\s+", " ", text[: int(len(text) * 0.4)])
    path = into / f"{doc.key}.txt"
    path.write_text(text, encoding="utf-8")
    return path


def token_scale(text: str, model: str, off: float) -> float:
    """bench_disobedient's scale: the server counts ``off`` x what tome's calibration for the language expects."""
    spec = load_catalog().model(model).for_language(detect_language(text))
    expected = TiktokenCounter().count(text) * spec.calibration
    return round(off * expected / ServerTokenizer().count(text), 4)


def run_cell(
    doc: Doc, path: Path, model: str, off: float, context: str, count_endpoint: bool, log: Any,
    limits: dict[str, int] = GENEROUS,
) -> dict[str, Any]:
    text = load_document(path).text
    modes = {"obedience": Obedience.disobedient(), "token_scale": token_scale(text, model, off), "prefix_cache": True,
             "count_endpoint": count_endpoint}
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, "TOME_HOME": str(Path(tmp) / "home"), "PREFECT_HOME": str(Path(tmp) / "prefect"),
               "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        with serve(**limits, **modes) as server:
            env["BENCH_API_KEY"] = server.api_key
            doc_tokens = server.server.tokenizer.count(text)
            cmd = [str(TOME_PY), str(BENCH / "peers" / "tome_driver.py"), "--base-url", server.base_url,
                   "--model", model, "--doc", str(path), "--concurrency", str(limits["concurrency"]),
                   "--out", str(out), "--rpm", str(limits["rpm"]), "--tpm", str(limits["tpm"]),
                   *(["--context-strategy", context] if context != "carry" else [])]
            proc = subprocess.run(cmd, cwd=BENCH / "peers", env=env, capture_output=True, text=True, timeout=1800)
            stats = server.server.stats()
        peer = json.loads(out.read_text()) if out.exists() else {}
    chat = [r for r in stats.log if r.endpoint == "chat"]
    ok = [r for r in chat if r.status == 200]
    latency = Latency(**LATENCY)
    first_usage = min((r.t + latency.total(r.completion_tokens) for r in ok), default=float("inf"))
    usage = (peer.get("extra") or {}).get("usage") or {}
    record = {
        "doc": doc.key, "title": doc.title, "model": model, "tpm": limits["tpm"], "off": off, "context": context,
        "count_endpoint": count_endpoint, "scale": modes["token_scale"], "finished": bool(peer.get("finished")),
        "error": peer.get("error"), "wall_s": peer.get("elapsed_s"), "doc_tokens": doc_tokens, "calls": len(chat),
        "levels": (peer.get("extra") or {}).get("calls_per_level"),
        "planned": (peer.get("extra") or {}).get("planned_calls"),
        "status": {str(k): v for k, v in stats.by_status.items()}, "admitted": stats.tokens_admitted,
        "billed": stats.prompt_tokens, "cached": stats.cached_tokens,
        "cut": sum(r.finish_reason == "length" for r in ok),
        "resent": len(ok) - len({r.messages_hash for r in ok}),  # answered twice: billed twice
        "late_400": sum(r.status == 400 and r.t > first_usage for r in chat),
        "r400": sum(r.status == 400 for r in chat), "r429": sum(r.status == 429 for r in chat),
        "truncated": usage.get("truncated"), "trimmed": usage.get("trimmed"), "retries": usage.get("retries"),
        "splits": usage.get("splits"), "stderr_tail": (proc.stderr or "")[-800:],
        # Every chat request as the server saw it: (s from the first, status, prompt, max_tokens, written, finish).
        "timeline": [[round(r.t - chat[0].t, 2), r.status, r.prompt_tokens, r.max_tokens, r.completion_tokens,
                      r.finish_reason] for r in chat],
    }
    record["fails"] = failures(record)
    log(f"{doc.key} {model} tpm {limits['tpm']} {off:+.2f} {context} count={'on' if count_endpoint else 'off'}: "
        f"{'ok' if record['finished'] else 'FAILED ' + str(record['error'])[:160]} {record['wall_s']} s, "
        f"{record['calls']} calls, admitted {record['admitted'] / doc_tokens:.2f}x, "
        f"billed {record['billed'] / doc_tokens:.2f}x, cut {record['cut']}, resent {record['resent']}, "
        f"400 {record['r400']} (late {record['late_400']}), truncated {record['truncated']} "
        f"{'; '.join(record['fails'])}")
    return record


def failures(r: dict[str, Any]) -> list[str]:
    """What misses the issue's done-when figures (token ratios only where the document takes more than one call)."""
    out = []
    if not r["finished"]:
        out.append("not finished")
    several = r["calls"] > 1
    if several and r["admitted"] > ADMITTED_MAX * r["doc_tokens"]:
        out.append("admitted")
    if several and r["billed"] > BILLED_MAX * r["doc_tokens"]:
        out.append("billed")
    for key, name in (("resent", "resent"), ("late_400", "400"), ("r429", "429"), ("truncated", "truncated")):
        if r.get(key):
            out.append(name)
    return out


def render(records: list[dict[str, Any]]) -> str:
    lines = [
        "# Disobedient server beyond Alice and Pride and Prejudice (`bench/bench_disobedient_corpus.py`)",
        "",
        "The test server's disobedient model (writes 1.3-2× the length asked, cut at max_tokens; latency 0.5 s + "
        "5 ms per output token; prefix caching on; concurrency 50, RPM 200, TPM 2M), its tokenizer *off* from "
        "tome's calibration for the document's language by +15 % or -15 %. Ratios are to the document's tokens as "
        "that server counts them. *count*: the gateway's token-count endpoint (off = 404, tome counts locally). "
        "*cut* = answers stopped at max_tokens; *resent* = answered requests whose messages repeat an earlier answered one's (billed twice); "
        "*late 400* = 400s sent after the first answer had reported its usage; *kept cut* = summaries kept "
        "truncated. *misses*: against admitted ≤ 1.3×, billed ≤ 1.15× (documents of more than one call), no resent "
        "prompt, no late 400, no 429, nothing kept truncated.",
        "",
        "| document | doc tokens | model | TPM | off | context | count | wall | calls (per level) | admitted | billed | "
        "cut | resent | 400 (late) | 429 | kept cut | misses |",
        "|---|---:|---|---:|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['title']} | {r['doc_tokens']:,} | {r['model'].removeprefix('moonshot-v1-')} | "
            f"{'20k' if r.get('tpm') == TIGHT['tpm'] else '2M'} | {r['off'] - 1:+.0%} | "
            f"{r['context']} | {'on' if r['count_endpoint'] else 'off'} | "
            f"{str(r['wall_s']) + ' s' if r['finished'] else 'failed'} | {r['calls']} ({r['levels']}) | "
            f"{r['admitted'] / r['doc_tokens']:.2f}× | {r['billed'] / r['doc_tokens']:.2f}× | {r['cut']} | "
            f"{r['resent']} | {r['r400']} ({r['late_400']}) | {r['r429']} | {r['truncated']} | "
            f"{', '.join(r['fails']) or '—'} |"
        )
    missed = [r for r in records if r["fails"]]
    lines += ["", f"{len(records)} cells, {len(records) - len(missed)} within every figure.", "", recorded_line(), ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="document keys, comma-separated (default: all)")
    ap.add_argument("--models", default="8k,32k,128k")
    ap.add_argument("--offs", default="1.15,0.85", help="tokenizer off the calibration (1.15 = +15 %%)")
    ap.add_argument("--contexts", default="carry,none")
    ap.add_argument("--count-off", default="8k", help="models also run against a gateway without the count endpoint")
    ap.add_argument("--tight", default="", help="documents run under TPM 20,000 (concurrency 8, RPM 120; 8k, "
                    "+15 %%, count endpoint on and off) instead of the generous matrix")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--merge", action="store_true", help="merge these cells into the recorded results")
    args = ap.parse_args()
    if not CORPUS.is_dir():
        print(f"skipped: {CORPUS} is absent")
        return 0

    keys = set(args.only.split(",")) if args.only else {d.key for d in DOCS} - {"alice", "pride"}  # bench_disobedient's
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-corpus-docs-") as tmp:
        for doc in (d for d in DOCS if d.key in set(args.tight.split(","))):
            for count in (True, False):
                records.append(run_cell(doc, materialise(doc, Path(tmp)), MODELS["8k"], 1.15, "carry", count, log,
                                        TIGHT))
        if args.tight:
            keys = set()
        for doc in (d for d in DOCS if d.key in keys):
            path = materialise(doc, Path(tmp))
            for size in args.models.split(","):
                if (doc.cut == "above-32k" and size == "8k") or (doc.cut == "above-8k" and size != "8k"):
                    continue  # the edge is one model's window
                for off in (float(o) for o in args.offs.split(",")):
                    for context in args.contexts.split(","):
                        records.append(run_cell(doc, path, MODELS[size], off, context, True, log))
                    if size in args.count_off.split(","):
                        records.append(run_cell(doc, path, MODELS[size], off, "carry", False, log))
    if args.merge and RESULTS_JSON.exists():
        def key(r: dict[str, Any]) -> tuple[Any, ...]:
            return r["doc"], r["model"], r["off"], r["context"], r["count_endpoint"], r.get("tpm")

        redone = {key(r) for r in records}
        records = [r for r in json.loads(RESULTS_JSON.read_text()) if key(r) not in redone] + records
    text = render(records)
    print(text)
    if not args.no_write:
        RESULTS_MD.write_text(text, encoding="utf-8")
        RESULTS_JSON.write_text(json.dumps(records, indent=1, default=str, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
