"""Whole reports in other shapes: does the offline backend stay above the lead when a report is laid out otherwise?

Run from the repo root:  .venv/bin/python bench/bench_report_robustness.py [--no-write]

Held-out government reports may not look like the dev sets: appendices and agency letters left in, a contents
list up front, paragraphs run into one line. Each public dev report set ($TOME_DEVDATA or ../devdata,
reports_*.jsonl at the top level only: never heldout/ or heldout2/) is scored as it is and reshaped four ways:
"appendix" (the next report of the set appended under "Appendix I: Additional Information"), "appendix x2" (two
appended), "contents" (its headings listed first under "Contents"), "flat" (the whole text on one line). One
extractive call per document, as a one-call run makes it, at the reference's length in words (as `tome eval`
asks it); lead and TextRank at the same length. Results: bench/results/report_robustness.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_eval import PUBLIC_DEV  # noqa: E402

from pipeline.documents.loader import document_from_text  # noqa: E402
from pipeline.evaluation.baselines import lead, textrank  # noqa: E402
from pipeline.evaluation.rouge import Rouge  # noqa: E402
from pipeline.extractive import extract  # noqa: E402
from pipeline.lengths import measure  # noqa: E402
from pipeline.tokens import TiktokenCounter  # noqa: E402

RESULTS = REPO / "bench" / "results" / "report_robustness.md"


def reshape(mode: str, items: list[dict], k: int) -> str:
    text = items[k]["document"]
    after = [items[(k + j) % len(items)]["document"] for j in (1, 2)]
    if mode == "appendix":
        return f"{text}\n\nAppendix I: Additional Information\n\n{after[0]}"
    if mode == "appendix x2":
        return f"{text}\n\nAppendix I: Additional Information\n\n{after[0]}\n\nAppendix II: More\n\n{after[1]}"
    if mode == "contents":
        headings = [line for line in text.splitlines() if 0 < len(line) < 90 and not line.endswith(".")]
        return "Contents\n\n" + "\n".join(headings) + "\n\n" + text
    if mode == "flat":
        return " ".join(text.split())
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rouge, counter = Rouge(), TiktokenCounter()
    sets = {p.stem: [json.loads(x) for x in p.read_text().splitlines() if x.strip()] for p in PUBLIC_DEV
            if p.name.startswith("reports_")}  # fmt: skip
    lines = [
        "# Whole reports in other shapes (`bench/bench_report_robustness.py`)",
        "",
        f"Recorded {date.today().isoformat()}. ROUGE-1 / ROUGE-2 / ROUGE-L F1 x 100 at the reference's length in words, "
        "one extractive call per document; lead and TextRank at the same length. Reshaped copies of the public dev "
        "reports (never a held-out set); see the script's docstring.",
        "",
        "| set (items) | shape | tome | lead | TextRank |",
        "|---|---|---|---|---|",
    ]
    for name, items in sets.items():
        for mode in ("as is", "appendix", "appendix x2", "contents", "flat"):
            rows = []
            for k, item in enumerate(items):
                doc = document_from_text(Path(f"{item['id']}.txt"), reshape(mode, items, k))
                size = max(20, round(statistics.fmean(measure(r, "words") for r in item["references"])))
                summary = extract(
                    doc.text, language="en", max_units=size, max_tokens=10**6, counter=counter, unit="words",
                    where=(0.0, 1.0),
                )  # fmt: skip
                rows.append(
                    [rouge.score(s, item["references"]) for s in
                     (summary, lead(doc.text, size), textrank(doc.text, size, rouge.tokenizer))]
                )  # fmt: skip

            def cell(j: int, rows: list = rows) -> str:
                return " / ".join(
                    f"{100 * statistics.fmean(getattr(r[j], m) for r in rows):.2f}" for m in ("rouge1", "rouge2", "rougeL")
                )

            lines.append(f"| {name} ({len(items)}) | {mode} | {cell(0)} | {cell(1)} | {cell(2)} |")
            print(lines[-1], flush=True)
    if not args.no_write:
        RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
