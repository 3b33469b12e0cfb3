"""The report position prior, judged by leave-one-out and on held-out public reports never used to tune it.

Run from the repo root:  .venv/bin/python bench/bench_report_prior.py [--no-write] [--no-grid]

The offline backend weighs a report's opening by how salient it is (pipeline/extractive_reports.py: the prior's
full weight, the opening coverage at which it starts and at which it is full, the prior of headed sentences). Tuning
those on the items one then reports would flatter them, so every item here is summarised with the settings
that score best (mean ROUGE-1 + 2 + L, report sets weighted alike) on all the other items, and those held-out
scores are shown beside the shipped settings, the lead and TextRank (same scorer, the reference's length).
Items: the project's dev reports (bench/data), the two corpus PDFs without their abstract / summary (when
../shared/corpus is there), public dev reports in $TOME_DEVDATA or ../devdata (reports_*.jsonl). Held-out
public reports ($TOME_DEVDATA/heldout or ../devdata/heldout, reports_*.jsonl; README "Summary quality" says which)
are only ever scored with the shipped settings, beside lead and TextRank, and never enter the grid's choices.
Each item is one extractive call over the whole document, as a one-call run makes it (the engine makes one for
every report here). Results: bench/results/report_prior.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_eval import _DEVDATA_DIRS, PUBLIC_DEV, reports_dataset  # noqa: E402

import pipeline.extractive as extractive  # noqa: E402
import pipeline.extractive_reports as reports  # noqa: E402
from pipeline.documents.loader import document_from_text  # noqa: E402
from pipeline.evaluation.baselines import lead, textrank  # noqa: E402
from pipeline.evaluation.rouge import Rouge  # noqa: E402
from pipeline.tokens import TiktokenCounter  # noqa: E402

RESULTS = REPO / "bench" / "results" / "report_prior.md"
DEV = [REPO / "bench" / "data" / "eval_dev_en.jsonl", REPO / "bench" / "data" / "eval_dev_zh.jsonl"]
# (full weight of a factual report's prior, opening coverage where it starts, and where it is full, headed prior)
GRID = list(itertools.product((0.5, 0.75, 0.9), (0.0, 0.55, 0.62, 0.7), (0.05, 0.15), (0.1, 0.2)))


def load_sets() -> dict[str, list[dict]]:
    sets: dict[str, list[dict]] = {}
    for path in DEV:
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            if item.get("genre") == "report":
                sets.setdefault(f"project {path.stem[-2:]} reports", []).append(item)
    corpus = reports_dataset(Path(tempfile.mkdtemp(prefix="tome-report-prior-")))
    if corpus is not None:
        sets["corpus PDFs (no abstract)"] = [json.loads(x) for x in corpus.read_text().splitlines()]
    for path in PUBLIC_DEV:
        if path.name.startswith("reports_"):
            sets[f"public {path.stem}"] = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return sets


def load_held_out() -> dict[str, list[dict]]:
    """Public reports set aside before any tuning: scored with the shipped settings only."""
    found = sorted(path for folder in _DEVDATA_DIRS for path in (folder / "heldout").glob("reports_*.jsonl"))
    return {f"HELD OUT public {p.stem}": [json.loads(x) for x in p.read_text().splitlines() if x.strip()] for p in found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--no-grid", action="store_true", help="shipped settings and baselines only (no leave-one-out)")
    args = parser.parse_args()
    rouge, counter = Rouge(), TiktokenCounter()
    sets = load_sets()
    held_sets = load_held_out()
    tuned = sum(len(group) for group in sets.values())
    sets.update(held_sets)
    items = [(name, item) for name, group in sets.items() for item in group]
    prepared = []
    for _, item in items:
        doc = document_from_text(Path(f"{item['id']}.txt"), item["document"])
        size = round(statistics.fmean(rouge.length(r) for r in item["references"]))
        prepared.append((doc, item["references"], size))

    def scores(summary: str, refs: list[str]) -> tuple[float, float, float]:
        s = rouge.score(summary, refs)
        return 100 * s.rouge1, 100 * s.rouge2, 100 * s.rougeL

    def tome(cfg: tuple[float, float, float, float] | None) -> list[tuple[float, float, float]]:
        saved = (extractive._POSITION_WEIGHT, extractive._POSITION_WEIGHT_FACTUAL, reports.OPENING_LOW,
                 reports.OPENING_HIGH, reports.HEADED_WEIGHT)  # fmt: skip
        if cfg is not None:
            full, low, gap, headed = cfg
            extractive._POSITION_WEIGHT_FACTUAL = full
            reports.OPENING_LOW, reports.OPENING_HIGH, reports.HEADED_WEIGHT = low, low + gap, headed
        try:
            out = []
            for doc, refs, size in prepared:
                zh = doc.language == "zh"
                summary = extractive.extract(
                    doc.text, language=doc.language, max_units=size, max_tokens=10**6, counter=counter,
                    unit="chars" if zh else "words", where=(0.0, 1.0),
                )  # fmt: skip
                out.append(scores(summary, refs))
            return out
        finally:
            (extractive._POSITION_WEIGHT, extractive._POSITION_WEIGHT_FACTUAL, reports.OPENING_LOW,
             reports.OPENING_HIGH, reports.HEADED_WEIGHT) = saved  # fmt: skip

    names = [name for name, _ in items]
    grid = [] if args.no_grid else GRID
    # The grid only ever sees the tuning items (the first ``tuned``); held-out items are scored, never chosen on.
    results = {cfg: tome(cfg) for cfg in grid}

    def objective(cfg: tuple, keep: list[int]) -> float:
        by: dict[str, list[float]] = {}
        for i in keep:
            by.setdefault(names[i], []).append(sum(results[cfg][i]))
        return statistics.fmean(statistics.fmean(v) for v in by.values())

    held_out, in_set = [], []
    for i in range(tuned if grid else 0):
        others = [j for j in range(tuned) if j != i]
        held_out.append(results[max(grid, key=lambda c: objective(c, others))][i])
        # Chosen on the other items of its own set only (the closest to tuning for one kind of report).
        mates = [j for j in others if names[j] == names[i]] or others
        in_set.append(results[max(grid, key=lambda c: objective(c, mates))][i])
    shipped = tome(None)
    lead_rows = [scores(lead(d.text, n), r) for d, r, n in prepared]
    textrank_rows = [scores(textrank(d.text, n, rouge.tokenizer), r) for d, r, n in prepared]
    fitted = max(grid, key=lambda c: objective(c, list(range(tuned)))) if grid else None

    def mean(rows: list[tuple[float, float, float]], name: str) -> str:
        picked = [r for r, n in zip(rows, names[: len(rows)], strict=True) if n == name]
        if not picked:
            return "-"
        return " / ".join(f"{statistics.fmean(r[k] for r in picked):.2f}" for k in range(3))

    lines = [
        "# Report position prior: leave-one-out and held-out reports (`bench/bench_report_prior.py`)",
        "",
        f"Recorded {date.today().isoformat()}. ROUGE-1 / ROUGE-2 / ROUGE-L F1 x 100 at the reference's length, one "
        f"extractive call per document. Grid: {len(grid)} settings of (factual full weight, coverage start, coverage "
        f"full, headed prior), chosen on the tuning items only. Fitted on all tuning items: {fitted}; shipped: "
        f"({extractive._POSITION_WEIGHT_FACTUAL}, {reports.OPENING_LOW}, {reports.OPENING_HIGH}, "
        f"{reports.HEADED_WEIGHT}). HELD OUT rows: public reports set aside before any tuning, shipped settings only.",
        "",
        "| set (items) | held out (LOO, all sets) | held out (LOO, own set) | shipped | lead | TextRank |",
        "|---|---|---|---|---|---|",
    ]
    for name in sets:
        lines.append(
            f"| {name} ({len(sets[name])}) | {mean(held_out, name)} | {mean(in_set, name)} | {mean(shipped, name)} | "
            f"{mean(lead_rows, name)} | {mean(textrank_rows, name)} |"
        )
    print("\n".join(lines))
    if not args.no_write:
        RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
