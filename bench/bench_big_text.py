"""A very large text: peak memory, wall and CPU time of `tome plan` and of a whole `tome summarise`, by size.

Run from the repo root:  .venv/bin/python bench/bench_big_text.py [--sizes 10,25,50] [--no-summarise] [--no-write]

The texts are the corpus's English books repeated up to each size, written to a temporary directory (never into
the repo); a 1 KB text gives the process's own start-up memory. Each measurement is one child process reaped
with os.wait4, so its peak RSS (the whole process's high-water mark) and CPU time are its own:
``tome plan FILE --json`` and ``tome summarise FILE --backend extractive --no-prefect -o DIR`` (the offline
backend: no server, every call made; a fresh TOME_HOME each, so nothing comes from the cache). Targets
(issue 14): a 50 MB text plans in < 10 s, plan and summary each stay under 400 MB, memory grows linearly with a
small constant. Results go to bench/results/big_text.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOOKS = REPO.parent / "shared" / "corpus" / "books"
RESULTS = REPO / "bench" / "results" / "big_text.md"
TOME_CLI = REPO / ".venv" / "bin" / "tome"
TARGET_S, TARGET_MB = 10.0, 400.0
# A many-call tree: the offline backend planning with an 8k window (as a model's), its outputs written like
# `summarise -o`; the child process runs the engine directly (the CLI plans the offline backend with its own window).
TREE_CHILD = """
import asyncio, sys
from dataclasses import replace
from pathlib import Path
from pipeline.memory import fix_mmap_threshold
from pipeline.documents.loader import load_document
from pipeline.engine import SummaryEngine
from pipeline.extractive import ExtractiveBackend
from pipeline.options import SummariseOptions
from pipeline.output_files import write_outputs
from pipeline.settings import model_and_limits, resolve_settings
from pipeline.store import Store

fix_mmap_threshold()
path, out, window = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
settings = resolve_settings()
model, _ = model_and_limits(settings)
engine = SummaryEngine(backend=ExtractiveBackend(), store=Store(f"sqlite:///{out / 'cache.db'}"), settings=settings,
                       model=replace(model, context_tokens=window))
result = asyncio.run(engine.summarise(load_document(path)))
write_outputs(result, out, "big", source=path, source_sha256="", options=SummariseOptions.build(backend="extractive"))
print(result.usage.calls)
"""
TINY = "A short note.\n\nIt has two paragraphs, and this is the second one.\n" * 12


def make_text(path: Path, megabytes: int) -> int:
    """Write the English books, repeated, until ``megabytes`` MB; returns the byte size."""
    books = [p.read_text(encoding="utf-8") for p in sorted(BOOKS.glob("en_*.txt"))]
    size, i = 0, 0
    with path.open("w", encoding="utf-8") as out:
        while size < megabytes * 1_000_000:
            text = books[i % len(books)]
            out.write(text)
            size += len(text.encode("utf-8"))
            i += 1
    return size


def measure(args: list[str], home: Path) -> dict[str, float]:
    """Wall, CPU and peak RSS of one ``tome`` child process (``python`` first: a Python child instead)."""
    env = {**os.environ, "TOME_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    command = [sys.executable, *args[1:]] if args[0] == "python" else [str(TOME_CLI), *args]
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(command, stdout=null, stderr=subprocess.PIPE, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"tome {' '.join(args)} failed: {err.strip()[-500:]}")
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
    }


def text_in_memory_mb(path: Path) -> float:
    """What Python holds for the file's text: characters times the widest character's width (1, 2 or 4 bytes).

    Read a block at a time: a child's peak RSS (``ru_maxrss``) starts from this process's own high-water mark
    (Linux spawns it with vfork), so this process never holds a big text.
    """
    chars, widest = 0, 0
    with path.open(encoding="utf-8") as f:
        while block := f.read(1 << 20):
            chars += len(block)
            widest = max(widest, ord(max(block)))
    return chars * (1 if widest < 256 else 2 if widest < 65536 else 4) / 1e6


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope and intercept of (x, y) points."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return slope, my - slope * mx


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,25,50", help="sizes in MB")
    ap.add_argument("--no-summarise", action="store_true", help="measure planning only")
    ap.add_argument("--tree-window", type=int, default=8192,
                    help="also summarise the largest text in this window's many-call tree (0: not)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not any(BOOKS.glob("en_*.txt")):
        print(f"skipped: no English books in {BOOKS}")
        return 0
    summarise = not args.no_summarise
    rows: list[tuple[float, float, dict[str, float], dict[str, float] | None, float]] = []
    trees: list[tuple[float, int, dict[str, float], float]] = []
    with tempfile.TemporaryDirectory(prefix="tome-big-") as tmp_name:
        tmp = Path(tmp_name)
        tiny = tmp / "tiny.txt"
        tiny.write_text(TINY, encoding="utf-8")
        base_plan = measure(["plan", str(tiny), "--json"], tmp / "home-tiny")
        base_sum = measure(
            ["summarise", str(tiny), "--backend", "extractive", "--no-prefect", "--no-progress", "-o", str(tmp / "out")],
            tmp / "home-tiny",
        ) if summarise else None
        print(f"start-up: plan {base_plan['rss_mb']:.0f} MB" + (f", summarise {base_sum['rss_mb']:.0f} MB" if base_sum else ""),
              file=sys.stderr)
        for n, mb in enumerate(int(x) for x in args.sizes.split(",") if x):
            path = tmp / f"big{mb}.txt"
            size = make_text(path, mb)
            in_memory = text_in_memory_mb(path)
            plan = measure(["plan", str(path), "--json"], tmp / f"home-plan-{n}")
            summary = None
            out_mb = 0.0
            if summarise:
                out = tmp / f"out-{n}"
                summary = measure(
                    ["summarise", str(path), "--backend", "extractive", "--no-prefect", "--no-progress", "-o", str(out)],
                    tmp / f"home-sum-{n}",
                )
                out_mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
            rows.append((size / 1e6, in_memory, plan, summary, out_mb))
            if summarise and args.tree_window and n == len(args.sizes.split(",")) - 1:
                out = tmp / "out-tree"
                out.mkdir()
                tree = measure(["python", "-c", TREE_CHILD, str(path), str(out), str(args.tree_window)], tmp / "home-tree")
                tree_out = sum(p.stat().st_size for p in out.glob("big.summary.*")) / 1e6
                trees.append((size / 1e6, args.tree_window, tree, tree_out))
                print(f"tree {args.tree_window}: {tree['wall_s']:.0f} s, {tree['rss_mb']:.0f} MB, outputs {tree_out:.1f} MB",
                      file=sys.stderr)
            print(
                f"{size / 1e6:.1f} MB: plan {plan['wall_s']:.1f} s wall, {plan['cpu_s']:.1f} s CPU, {plan['rss_mb']:.0f} MB"
                + (f"; summarise {summary['wall_s']:.0f} s, {summary['rss_mb']:.0f} MB" if summary else ""),
                file=sys.stderr,
            )
            path.unlink()
    text = report(rows, base_plan, base_sum, trees)
    print(text)
    if not args.no_write:
        RESULTS.write_text(text, encoding="utf-8")
    return 0


def report(
    rows: list[tuple[float, float, dict[str, float], dict[str, float] | None, float]],
    base_plan: dict[str, float],
    base_sum: dict[str, float] | None,
    trees: list[tuple[float, int, dict[str, float], float]],
) -> str:
    load = os.getloadavg()[0]
    lines = [
        "# A very large text: memory and time (`bench/bench_big_text.py`)",
        "",
        "Whole processes, one run each, reaped with `os.wait4` (peak RSS = the process's high-water mark): "
        "`tome plan FILE --json` (moonshot-v1-8k) and `tome summarise FILE --backend extractive --no-prefect -o DIR` "
        "(the offline backend with its own 131k planning window: every call made, nothing cached; the .md, .json "
        "and .html written). The text is the corpus's English books repeated to each size; its curly quotes make "
        "Python hold it at 2 bytes per character (\"text in memory\"). "
        f"{platform.machine()}, {os.cpu_count()} cores, {date.today().isoformat()}; load average {load:.1f} when it "
        "ended (a shared machine: CPU time is the steadier figure).",
        "",
        "| text | text in memory | plan: wall | plan: CPU | plan: peak RSS | summarise: wall | summarise: CPU "
        "| summarise: peak RSS | outputs |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    tiny_sum = (
        f"{base_sum['wall_s']:.1f} s | {base_sum['cpu_s']:.1f} s | {base_sum['rss_mb']:.0f} MB | -"
        if base_sum else "- | - | - | -"
    )
    lines.append(
        f"| 1 KB (start-up) | - | {base_plan['wall_s']:.1f} s | {base_plan['cpu_s']:.1f} s | "
        f"{base_plan['rss_mb']:.0f} MB | {tiny_sum} |"
    )
    for mb, in_memory, plan, summary, out_mb in rows:
        s = (
            f"{summary['wall_s']:.0f} s | {summary['cpu_s']:.0f} s | {summary['rss_mb']:.0f} MB | {out_mb:.1f} MB"
            if summary else "- | - | - | -"
        )
        lines.append(
            f"| {mb:.1f} MB | {in_memory:.0f} MB | {plan['wall_s']:.1f} s | {plan['cpu_s']:.1f} s | "
            f"{plan['rss_mb']:.0f} MB | {s} |"
        )
    lines += [
        "",
        "Ratios: memory above the process's start-up, per MB of the file and per MB of the text Python holds.",
        "",
        "| text | plan: (peak - start-up) / file | plan: / text in memory | summarise: / file | summarise: / text in memory |",
        "|---:|---:|---:|---:|---:|",
    ]
    for mb, in_memory, plan, summary, _ in rows:
        above = plan["rss_mb"] - base_plan["rss_mb"]
        s_above = summary["rss_mb"] - base_sum["rss_mb"] if summary and base_sum else None
        s = f"{s_above / mb:.2f} | {s_above / in_memory:.2f}" if s_above is not None else "- | -"
        lines.append(f"| {mb:.1f} MB | {above / mb:.2f} | {above / in_memory:.2f} | {s} |")
    if len(rows) >= 2:
        slope, icpt = fit([(mb, p["rss_mb"]) for mb, _, p, _, _ in rows])
        lines += ["", f"Planning: peak RSS ≈ {icpt:.0f} MB + {slope:.2f} × the file's MB (least squares over the sizes)."]
        if all(s for _, _, _, s, _ in rows):
            slope, icpt = fit([(mb, s["rss_mb"]) for mb, _, _, s, _ in rows if s])
            lines.append(f"Summarising: peak RSS ≈ {icpt:.0f} MB + {slope:.2f} × the file's MB.")
    for mb, window, tree, tree_out in trees:
        lines += [
            "",
            f"A many-call tree: the {mb:.1f} MB text summarised by the offline backend planning with a {window:,}-token "
            f"window (as a model's; engine and `write_outputs` in one child process): {tree['wall_s']:.0f} s wall, "
            f"{tree['cpu_s']:.0f} s CPU, peak RSS **{tree['rss_mb']:.0f} MB**, outputs {tree_out:.1f} MB (.md, .json, "
            ".html: every summary sentence with its quoted sources).",
        ]
    _, _, big_plan, big_sum, _ = rows[-1]
    verdict = [
        f"plan in < {TARGET_S:.0f} s (CPU {big_plan['cpu_s']:.1f} s: {'met' if big_plan['cpu_s'] < TARGET_S else 'MISSED'})",
        f"plan < {TARGET_MB:.0f} MB ({big_plan['rss_mb']:.0f} MB: {'met' if big_plan['rss_mb'] < TARGET_MB else 'MISSED'})",
    ]
    if big_sum:
        verdict.append(
            f"summarise < {TARGET_MB:.0f} MB ({big_sum['rss_mb']:.0f} MB: "
            f"{'met' if big_sum['rss_mb'] < TARGET_MB else 'MISSED'})"
        )
    lines += ["", f"Targets at {rows[-1][0]:.0f} MB: " + ", ".join(verdict) + ".", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
