"""Summary quality: `tome eval` on SQuALITY (plot question) and the project's sample set, extractive backend.

Run from the repo root:  .venv/bin/python bench/bench_eval.py [--dataset FILE] [--models m1,m2] [--no-write]

Every variant runs in one process against the same items, side by side: the tuned extractive backend, and
ablations of it (TextRank centrality only, the recurring-content score only, no repeat removal), each through
the whole engine (chunk, map, reduce) at the reference length, beside the lead and TextRank baselines. A
fresh TOME_HOME per run, so nothing comes from an earlier cache. Results go to bench/results/eval.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SQUALITY = REPO.parent / "shared" / "corpus" / "eval" / "squality_v1-3_txt_dev.jsonl"
SAMPLE = REPO / "data" / "eval_sample.jsonl"
RESULTS = REPO / "bench" / "results" / "eval.md"

# name -> (length damping, centrality share, repeat threshold); the first is the shipped setting.
VARIANTS = {
    "tome extractive (shipped)": None,
    "TextRank centrality only": (0.0, 1.0, 1.01),
    "recurring content only": (0.0, 0.0, 0.6),
    "no repeat removal": (None, None, 1.01),
}


async def run_variant(dataset: Path, model: str, knobs: tuple | None, tag: str, limit: int | None) -> tuple:
    import pipeline.extractive as extractive
    from flows.options import SummariseOptions
    from flows.runner import open_runtime
    from pipeline.evaluation.dataset import load_dataset
    from pipeline.evaluation.records import EvalRecords
    from pipeline.evaluation.runner import Evaluation, evaluate

    shipped = (extractive._LENGTH_DAMPING, extractive._CENTRALITY, extractive._REDUNDANT)
    if knobs is not None:
        values = [s if k is None else k for k, s in zip(knobs, shipped, strict=True)]
        extractive._LENGTH_DAMPING, extractive._CENTRALITY, extractive._REDUNDANT = values
    namespace = extractive.ExtractiveBackend.cache_namespace
    extractive.ExtractiveBackend.cache_namespace = f"{namespace}-{tag}"
    try:
        items, _ = load_dataset(dataset, limit=limit)
        runtime = open_runtime(SummariseOptions(backend="extractive", model=model))
        ev = Evaluation(runtime.backend, runtime.store, runtime.settings, runtime.model, runtime.limits)
        started = time.perf_counter()
        report = await evaluate(
            items, ev, records=EvalRecords(runtime.store.engine), dataset=str(dataset), dataset_sha256="bench",
            fields={}, settings_record={"variant": tag, "model": model},
        )  # fmt: skip
        seconds = time.perf_counter() - started
        await runtime.aclose()
        return report, seconds
    finally:
        extractive._LENGTH_DAMPING, extractive._CENTRALITY, extractive._REDUNDANT = shipped
        extractive.ExtractiveBackend.cache_namespace = namespace


def row(name: str, s, extra: str = "") -> str:
    return (
        f"| {name} | {100 * s.rouge1:.2f} | {100 * s.rouge2:.2f} | {100 * s.rougeL:.2f} | "
        f"{s.length:.0f} / {s.reference_length:.0f} | {s.calls if s.system == 'tome' else '-'} | {extra} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, action="append", help="JSONL dataset (repeatable)")
    parser.add_argument("--models", default="moonshot-v1-8k,moonshot-v1-32k")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    datasets = args.dataset or [p for p in (SQUALITY, SAMPLE) if p.is_file()]
    lines = [
        "# Summary quality (`tome eval`, offline extractive backend)",
        "",
        f"Recorded {date.today().isoformat()} by `.venv/bin/python bench/bench_eval.py` "
        "(2-core machine). ROUGE F1 x 100 (rouge-score with tome's CJK-aware tokenizer, Porter stemming; best "
        "reference per item, averaged). Every system is held to each item's mean reference length: tome through "
        "its whole engine (`--length reference`), the baselines by construction.",
        "",
    ]
    for dataset in datasets:
        for model in args.models.split(","):
            lines += [
                f"## {dataset.name}, {model}",
                "",
                "| system | ROUGE-1 | ROUGE-2 | ROUGE-L | length / reference | calls | wall |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            baselines = []
            for i, (name, knobs) in enumerate(VARIANTS.items()):
                with tempfile.TemporaryDirectory() as home:
                    os.environ["TOME_HOME"] = home
                    report, seconds = await run_variant(dataset, model, knobs, f"v{i}", args.limit)
                systems = report.systems
                lines.append(row(name, systems[0], f"{seconds:.1f} s"))
                baselines = systems[1:]
                print(lines[-1], flush=True)
            for s in baselines:
                lines.append(row(f"baseline: {s.system}", s))
                print(lines[-1], flush=True)
            lines.append("")
    if not args.no_write:
        RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
