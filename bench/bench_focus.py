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
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.eval_runs import SQUALITY, ScoreTable, timed_evaluation, write_results  # noqa: E402

RESULTS = REPO / "bench" / "results" / "focus.md"


async def run_variant(dataset: Path, preset: str, *, focused: bool, limit: int | None, model: str):
    from pipeline.evaluation.dataset import PRESETS, load_dataset
    from pipeline.options import SummariseOptions

    items, _ = load_dataset(dataset, fields=PRESETS[preset], limit=limit)
    if not focused:
        items = [replace(item, focus="") for item in items]  # the same items and references, no question
    report, seconds = await timed_evaluation(
        items, SummariseOptions(backend="extractive", model=model), dataset=dataset,
        settings_record={"focused": focused, "model": model},
    )  # fmt: skip
    return report, seconds, len(items)


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
    ]
    table = ScoreTable(lines)
    for focused in (True, False):
        report, seconds, n = await run_variant(
            args.dataset, args.preset, focused=focused, limit=args.limit, model=args.model
        )
        name = "tome, `--focus` = the question" if focused else "tome, plain summary (no question)"
        table.variant(name, report, f"{seconds:.1f} s, {n} items")
    table.finish()
    write_results(RESULTS, lines, no_write=args.no_write)


if __name__ == "__main__":
    asyncio.run(main())
