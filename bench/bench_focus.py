"""Query-focused summaries: `--focus QUESTION` against a plain summary of the same length, scored on the answers.

Run from the repo root:  .venv/bin/python bench/bench_focus.py [--dataset FILE --preset P] [--limit N] [--no-write]

Default data: SQuALITY dev's non-plot questions ("What is the relationship between ...?", four human answers
each; ../shared/corpus, skipped when absent) through the `squality-questions` preset; a QMSum file works the
same with `--preset qmsum-specific`. Both variants run in one process on the same items at each item's
reference length, with the offline extractive backend through the whole engine, beside the lead and TextRank
baselines (which do not read the question). A fresh TOME_HOME per variant. Results: bench/results/focus.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SQUALITY = REPO.parent / "shared" / "corpus" / "eval" / "squality_v1-3_txt_dev.jsonl"
RESULTS = REPO / "bench" / "results" / "focus.md"


async def run_variant(dataset: Path, preset: str, *, focused: bool, limit: int | None, model: str):
    from pipeline.evaluation.dataset import PRESETS, load_dataset
    from pipeline.evaluation.records import EvalRecords
    from pipeline.evaluation.runner import Evaluation, evaluate
    from pipeline.options import SummariseOptions
    from pipeline.runtime import build_runtime

    items, _ = load_dataset(dataset, fields=PRESETS[preset], limit=limit)
    if not focused:
        items = [replace(item, focus="") for item in items]  # the same items and references, no question
    runtime = build_runtime(SummariseOptions(backend="extractive", model=model))
    ev = Evaluation(runtime.backend, runtime.store, runtime.settings, runtime.model, runtime.limits)
    started = time.perf_counter()
    report = await evaluate(
        items, ev, records=EvalRecords(runtime.store.engine), dataset=str(dataset), dataset_sha256="bench",
        fields={}, settings_record={"focused": focused, "model": model},
    )  # fmt: skip
    seconds = time.perf_counter() - started
    await runtime.aclose()
    return report, seconds, len(items)


def row(name: str, s, extra: str = "") -> str:
    return (
        f"| {name} | {100 * s.rouge1:.2f} | {100 * s.rouge2:.2f} | {100 * s.rougeL:.2f} | "
        f"{s.length:.0f} / {s.reference_length:.0f} | {extra} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SQUALITY)
    parser.add_argument("--preset", default="squality-questions")
    parser.add_argument("--limit", type=int, default=60, help="items (questions), not stories")
    parser.add_argument("--model", default="moonshot-v1-8k")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not args.dataset.is_file():
        sys.exit(f"{args.dataset} is absent (the SQuALITY dev file lives in ../shared/corpus/eval)")
    lines = [
        "# Query-focused summaries (`--focus`, offline extractive backend)",
        "",
        f"Recorded {date.today().isoformat()} by `.venv/bin/python bench/bench_focus.py --preset {args.preset} "
        f"--limit {args.limit}` (2-core machine). ROUGE F1 x 100 against each question's human answers (best per "
        "item, averaged); every system held to the answers' mean length.",
        "",
        f"## {args.dataset.name}, preset {args.preset}, {args.model}",
        "",
        "| system | ROUGE-1 | ROUGE-2 | ROUGE-L | length / reference | wall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    baselines = []
    for focused in (True, False):
        with tempfile.TemporaryDirectory() as home:
            os.environ["TOME_HOME"] = home
            report, seconds, n = await run_variant(
                args.dataset, args.preset, focused=focused, limit=args.limit, model=args.model
            )
        systems = report.systems
        name = "tome, `--focus` = the question" if focused else "tome, plain summary (no question)"
        lines.append(row(name, systems[0], f"{seconds:.1f} s, {n} items"))
        baselines = systems[1:]
        print(lines[-1], flush=True)
    for s in baselines:
        lines.append(row(f"baseline: {s.system}", s))
        print(lines[-1], flush=True)
    if not args.no_write:
        RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
