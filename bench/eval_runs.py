"""What the quality benches (bench_eval.py, bench_focus.py) share: one timed `tome eval` run in a fresh TOME_HOME,
its rows of ROUGE scores (each variant of tome, then the baselines), and the results file."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SQUALITY = REPO.parent / "shared" / "corpus" / "eval" / "squality_v1-3_txt_dev.jsonl"


async def timed_evaluation(
    items: Sequence[Any], options: Any, *, dataset: Path, settings_record: dict[str, Any]
) -> tuple[Any, float]:
    """(report, seconds) of ``items`` evaluated through the whole engine, in a fresh TOME_HOME (no earlier cache)."""
    from pipeline.evaluation.records import EvalRecords
    from pipeline.evaluation.runner import Evaluation, evaluate
    from pipeline.runtime import build_runtime

    with tempfile.TemporaryDirectory() as home:
        os.environ["TOME_HOME"] = home
        runtime = build_runtime(options)
        try:
            ev = Evaluation(runtime.backend, runtime.store, runtime.settings, runtime.model, runtime.limits)
            started = time.perf_counter()
            report = await evaluate(
                items, ev, records=EvalRecords(runtime.store.engine), dataset=str(dataset), dataset_sha256="bench",
                fields={}, settings_record=settings_record,
            )  # fmt: skip
            return report, time.perf_counter() - started
        finally:
            await runtime.aclose()


class ScoreTable:
    """A markdown table of ROUGE F1 x 100 (tome's variants, then the baselines), printed as it grows."""

    def __init__(self, lines: list[str], *, calls: bool = False) -> None:
        self.lines, self.calls = lines, calls
        self.baselines: list[Any] = []
        calls_head, calls_rule = (" calls |", "---:|") if calls else ("", "")
        self._add(f"| system | ROUGE-1 | ROUGE-2 | ROUGE-L | length / reference |{calls_head} wall |")
        self._add(f"|---|---:|---:|---:|---:|{calls_rule}---:|")

    def variant(self, name: str, report: Any, extra: str) -> None:
        """tome's row of ``report`` (its first system); its baselines are kept for ``finish``."""
        systems = report.systems
        self._add(self._row(name, systems[0], extra))
        self.baselines = systems[1:]

    def finish(self) -> None:
        """The baselines' rows (the same in every variant: they do not run tome)."""
        for s in self.baselines:
            self._add(self._row(f"baseline: {s.system}", s, ""))

    def _row(self, name: str, s: Any, extra: str) -> str:
        calls = f" {s.calls if s.system == 'tome' else '-'} |" if self.calls else ""
        return (
            f"| {name} | {100 * s.rouge1:.2f} | {100 * s.rouge2:.2f} | {100 * s.rougeL:.2f} | "
            f"{s.length:.0f} / {s.reference_length:.0f} |{calls} {extra} |"
        )

    def _add(self, line: str) -> None:
        self.lines.append(line)
        if line.startswith("| ") and not line.startswith("| system "):
            print(line, flush=True)


def write_results(path: Path, lines: list[str], *, no_write: bool) -> None:
    if not no_write:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {path}")
