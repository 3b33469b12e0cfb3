"""Transcripts in other renderings: does the offline backend read a meeting the same whatever its format?

Run from the repo root:  .venv/bin/python bench/transcript_formats.py [--dataset FILE ...] [--formats a,b1,...]

The dev meetings are all rendered "Name: text", one turn a line; held-out ones may come as subtitles, with
timestamps, or as a meeting app exports them. Each dev set's documents are re-rendered (a clock of 6 s a turn)
and scored through the whole engine (`tome eval`'s runner, a fresh TOME_HOME each run, the extractive backend)
beside format (a): the scores should match, and no timestamp or cue number should reach a summary. Default
sets: /work/devdata's meetings3_dev_en, meetings3_dev_b_en (and meetings_vcsum_zh for a few formats). Prints a
markdown table; figures go in bench/results/eval.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.eval_runs import timed_evaluation  # noqa: E402

DEVDATA = (
    REPO.parent.parent / "devdata" if (REPO.parent.parent / "devdata").is_dir() else REPO.parent / "devdata"
)
SECONDS_PER_TURN = 6
_LABEL = re.compile(r"^([^:：]{1,60}?)\s*[:：]\s*(.*)$")
# A summary line that still carries a clock or a cue: "00:01:23", "0:02", "-->", "[00:01".
LEAK = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{3})?|-->|<v\b")


def turns(document: str) -> list[tuple[str, str]]:
    """(speaker, text) per line of a "Name: text" transcript (a line without a label continues the last)."""
    out: list[tuple[str, str]] = []
    for line in document.splitlines():
        if not line.strip():
            continue
        m = _LABEL.match(line)
        if m:
            out.append((m.group(1).strip(), m.group(2).strip()))
        elif out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
    return out


def clock(k: int, *, millis: str = "", short: bool = False) -> str:
    s = k * SECONDS_PER_TURN
    h, m, sec = s // 3600, s // 60 % 60, s % 60
    if short:
        return f"{h * 60 + m}:{sec:02d}"
    return f"{h:02d}:{m:02d}:{sec:02d}{millis}"


def _numbered(ts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    ids: dict[str, int] = {}
    return [(f"Speaker {ids.setdefault(who, len(ids) + 1)}", text) for who, text in ts]


FORMATS: dict[str, tuple[str, Callable[[list[tuple[str, str]]], str]]] = {
    "a": ("Name: text", lambda ts: "\n".join(f"{w}: {t}" for w, t in ts)),
    "b1": (
        "[00:01:23] Name: text",
        lambda ts: "\n".join(f"[{clock(k)}] {w}: {t}" for k, (w, t) in enumerate(ts)),
    ),
    "b2": (
        "00:01:23 Name: text",
        lambda ts: "\n".join(f"{clock(k)} {w}: {t}" for k, (w, t) in enumerate(ts)),
    ),
    "c1": (
        "SRT cues, Name: text",
        lambda ts: "\n\n".join(
            f"{k + 1}\n{clock(k, millis=',000')} --> {clock(k + 1, millis=',000')}\n{w}: {t}"
            for k, (w, t) in enumerate(ts)
        ),
    ),
    "c2": (
        "WebVTT cues, <v Name>text",
        lambda ts: (
            "WEBVTT\n\n"
            + "\n\n".join(
                f"{clock(k, millis='.000')} --> {clock(k + 1, millis='.000')}\n<v {w}>{t}"
                for k, (w, t) in enumerate(ts)
            )
        ),
    ),
    "d1": (
        "Name  0:02 / text (Otter, Zoom)",
        lambda ts: "\n\n".join(f"{w}  {clock(k, short=True)}\n{t}" for k, (w, t) in enumerate(ts)),
    ),
    "d2": (
        "Name (00:01:23) / text (Teams)",
        lambda ts: "\n\n".join(f"{w} ({clock(k)})\n{t}" for k, (w, t) in enumerate(ts)),
    ),
    "e": ("NAME: text", lambda ts: "\n".join(f"{w.upper()}: {t}" for w, t in ts)),
    "f": ("Speaker 1: text", lambda ts: "\n".join(f"{w}: {t}" for w, t in _numbered(ts))),
    "g": ("Name: text, blank lines between", lambda ts: "\n\n".join(f"{w}: {t}" for w, t in ts)),
}
DEFAULT_SETS = {
    "meetings3_dev_en": list(FORMATS),
    "meetings3_dev_b_en": list(FORMATS),
    "meetings_vcsum_zh": ["a", "b1", "c1", "d2"],
}


async def score(path: Path, fmt: str) -> tuple[str, int]:
    """One row of the table: tome / lead / TextRank ROUGE-1/2/L, and how many summaries show a clock or cue."""
    from pipeline.evaluation.dataset import load_dataset
    from pipeline.options import SummariseOptions

    items, _ = load_dataset(path)
    render = FORMATS[fmt][1]
    items = [replace(it, document=render(turns(it.document))) for it in items]
    report, _ = await timed_evaluation(
        items, SummariseOptions(backend="extractive"), dataset=path, settings_record={"format": fmt}
    )
    leaks = sum(bool(LEAK.search(r.summary)) for r in report.results if r.system == "tome")
    cells = [
        " / ".join(f"{100 * getattr(s, m):.2f}" for m in ("rouge1", "rouge2", "rougeL"))
        for s in report.systems
    ]
    return " | ".join(cells), leaks


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, action="append", help="JSONL of 'Name: text' transcripts")
    parser.add_argument("--formats", help="comma-separated format keys (default: per set)")
    args = parser.parse_args()
    sets = (
        {p.stem: p for p in args.dataset}
        if args.dataset
        else {k: DEVDATA / f"{k}.jsonl" for k in DEFAULT_SETS}
    )
    print("| set | format | tome | lead | TextRank | summaries with a clock/cue |")
    print("|---|---|---|---|---|---:|")
    for name, path in sets.items():
        keys = args.formats.split(",") if args.formats else DEFAULT_SETS.get(name, list(FORMATS))
        for fmt in keys:
            cells, leaks = await score(path, fmt)
            print(f"| {name} | ({fmt}) {FORMATS[fmt][0]} | {cells} | {leaks} |", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
