"""Summary quality: `tome eval` with the offline extractive backend, beside its baselines and its own ablations.

Run from the repo root:  .venv/bin/python bench/bench_eval.py [--dataset FILE] [--windows 8192,131072] [--no-write]

Datasets: SQuALITY dev (plot question; ../shared/corpus, skipped when absent), two report-like PDFs of the
corpus with their own abstract / SUMMARY paragraph as the reference (built on the fly, never copied), the
project's sample stories (data/eval_sample.jsonl), its development sets of meetings and reports in English
and Chinese (bench/data/eval_dev_*.jsonl, written for the project) and public dev items kept outside the repo
($TOME_DEVDATA or ../devdata/*.jsonl: QMSum and VCSum meetings, CRS and GAO reports; skipped when absent). Every variant runs in one process against
the same items, side by side: the shipped extractive backend and ablations of it, each through the whole
engine (chunk, map, reduce) at the reference length, beside the lead and TextRank baselines. A fresh TOME_HOME
per run, so nothing comes from an earlier cache. Results go to bench/results/eval.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.eval_runs import SQUALITY, ScoreTable, timed_evaluation, write_results  # noqa: E402

SAMPLE = REPO / "data" / "eval_sample.jsonl"
DEV = [REPO / "bench" / "data" / "eval_dev_en.jsonl", REPO / "bench" / "data" / "eval_dev_zh.jsonl"]
# Public dev items (QMSum and VCSum meetings, CRS and GAO reports) converted to JSONL outside the repo, never shipped:
# used when present (README, "Summary quality", says which items and from where). $TOME_DEVDATA names the
# folder; otherwise ../devdata or ../shared/devdata beside the checkout.
_DEVDATA_DIRS = [Path(os.environ["TOME_DEVDATA"])] if os.environ.get("TOME_DEVDATA") else [
    REPO.parent / "devdata", REPO.parent / "shared" / "devdata"]
PUBLIC_DEV = sorted(path for folder in _DEVDATA_DIRS for path in folder.glob("*.jsonl"))
PDFS = REPO.parent / "shared" / "corpus" / "pdfs"
# (file, where the reference starts, where it ends): the paper's abstract, the rule's SUMMARY paragraph.
REPORTS = [
    ("en_paper_dpr_2col_arxiv2004.04906.pdf", "Abstract", "1 Introduction"),
    ("en_report_federal_register_2020-17221_3col.pdf", "SUMMARY:", "DATES:"),
]
RESULTS = REPO / "bench" / "results" / "eval.md"

# name -> (Chinese length damping, centrality share, repeat threshold, position prior weights), None = as shipped;
# the first is shipped.
VARIANTS = {
    "tome extractive (shipped)": None,
    "no position prior": (None, None, None, 0.0, 0.0),
    "TextRank centrality only": (None, 1.0, None, None, None),
    "recurring content only": (None, 0.0, None, None, None),
    "no repeat removal": (None, None, 1.01, None, None),
    "no length damping for Chinese": (0.0, None, None, None, None),
}
KNOBS = ("_LENGTH_DAMPING_CJK", "_CENTRALITY", "_REDUNDANT", "_POSITION_WEIGHT", "_POSITION_WEIGHT_FACTUAL")


def by_genre(dataset: Path, folder: Path) -> list[Path]:
    """A dataset whose items name their ``genre`` as one dataset per genre (meetings and reports apart)."""
    import json

    groups: dict[str, list[str]] = {}
    for line in dataset.read_text(encoding="utf-8").splitlines():
        if line.strip():
            groups.setdefault(json.loads(line).get("genre", "all"), []).append(line)
    if len(groups) < 2:
        return [dataset]
    paths = []
    for genre, lines in sorted(groups.items()):
        path = folder / f"{dataset.stem}_{genre}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def reports_dataset(folder: Path) -> Path | None:
    """A JSONL of the corpus PDFs with their abstract / summary cut out as the reference (None without them)."""
    import json

    from pipeline.documents.loader import load_document

    records = []
    for name, start, end in REPORTS:
        if not (PDFS / name).is_file():
            return None
        text = load_document(PDFS / name).text
        a, b = text.find(start), text.find(end)
        reference = text[a + len(start) : b].strip()
        document = text[b:] if name.startswith("en_paper") else text[:a] + text[b:]
        records.append({"id": name.split("_")[2], "document": document, "references": [reference]})
    path = folder / "corpus_reports.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


async def run_variant(dataset: Path, window: int, knobs: tuple | None, tag: str, limit: int | None) -> tuple:
    import pipeline.extractive as extractive
    from pipeline.evaluation.dataset import load_dataset
    from pipeline.options import SummariseOptions

    shipped = [getattr(extractive, k) for k in KNOBS]
    for name, value in zip(KNOBS, knobs or (None,) * len(KNOBS), strict=True):
        if value is not None:
            setattr(extractive, name, value)
    namespace = extractive.ExtractiveBackend.cache_namespace
    extractive.ExtractiveBackend.cache_namespace = f"{namespace}-{tag}"
    shipped_window = extractive.ExtractiveBackend.planning_window
    extractive.ExtractiveBackend.planning_window = window
    try:
        items, _ = load_dataset(dataset, limit=limit)
        return await timed_evaluation(
            items, SummariseOptions(backend="extractive"), dataset=dataset,
            settings_record={"variant": tag, "window": window},
        )  # fmt: skip
    finally:
        for name, value in zip(KNOBS, shipped, strict=True):
            setattr(extractive, name, value)
        extractive.ExtractiveBackend.cache_namespace = namespace
        extractive.ExtractiveBackend.planning_window = shipped_window


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, action="append", help="JSONL dataset (repeatable)")
    parser.add_argument(
        "--windows",
        help="the offline backend's planning windows to compare (tokens, comma-separated); default: shipped",
    )
    parser.add_argument("--limit", type=int)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--shipped-only", action="store_true", help="only the shipped backend beside the baselines"
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tome-bench-eval-"))
    reports = reports_dataset(scratch)
    found = (SQUALITY, reports, SAMPLE, *DEV, *PUBLIC_DEV)
    datasets = args.dataset or [p for p in found if p is not None and p.is_file()]
    # The dev sets mix meetings and reports: one table each.
    datasets = [part for d in datasets for part in by_genre(d, scratch)]
    variants = dict(list(VARIANTS.items())[:1]) if args.shipped_only else VARIANTS
    from pipeline.extractive import ExtractiveBackend

    shipped = ExtractiveBackend.planning_window or 8192
    windows = [int(w) for w in args.windows.split(",")] if args.windows else [shipped]
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
        for window in windows:
            lines += [
                f"## {dataset.name}, {window // 1024}k-token window",
                "",
            ]
            table = ScoreTable(lines, calls=True)
            for i, (name, knobs) in enumerate(variants.items()):
                report, seconds = await run_variant(dataset, window, knobs, f"v{i}", args.limit)
                table.variant(name, report, f"{seconds:.1f} s")
            table.finish()
            lines.append("")
    write_results(RESULTS, lines, no_write=args.no_write)


if __name__ == "__main__":
    asyncio.run(main())
