"""Planning a very large text: wall time, CPU time and peak memory of `tome plan` at 10, 25 and 50 MB.

Run from the repo root:  .venv/bin/python bench/bench_big_text.py [--sizes 10,25,50] [--no-write]

The texts are the corpus's English books (../shared/corpus/books/en_*.txt) repeated up to the size, written
to a temporary directory (never into the repo). Each size is one `tome plan FILE --json` process reaped with
os.wait4, so its peak RSS and CPU time are its own. Targets (issue 14): 50 MB plans in < 10 s and < 400 MB,
memory growing linearly with a small constant. Results go to bench/results/big_text.md.
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


def measure(path: Path, home: Path) -> dict[str, float]:
    env = {**os.environ, "TOME_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen([str(TOME_CLI), "plan", str(path), "--json"], stdout=null, stderr=null, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"tome plan {path} failed")
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,25,50", help="sizes in MB")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not any(BOOKS.glob("en_*.txt")):
        print(f"skipped: no English books in {BOOKS}")
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="tome-big-") as tmp:
        for mb in (int(x) for x in args.sizes.split(",") if x):
            path = Path(tmp) / f"big{mb}.txt"
            size = make_text(path, mb)
            m = measure(path, Path(tmp) / "home")
            rows.append((size / 1e6, m))
            print(f"{size / 1e6:.1f} MB: {m['wall_s']:.1f} s wall, {m['cpu_s']:.1f} s CPU, {m['rss_mb']:.0f} MB RSS",
                  file=sys.stderr)
            path.unlink()
    load = os.getloadavg()[0]
    lines = [
        "# Planning a very large text (`bench/bench_big_text.py`)",
        "",
        f"`tome plan FILE --json`, whole process, moonshot-v1-8k; the corpus's English books repeated to each "
        f"size (curly quotes make Python hold the text at 2 bytes per character). {platform.machine()}, "
        f"{os.cpu_count()} cores, {date.today().isoformat()}; load average {load:.1f} when it ended (a shared "
        "machine: CPU time is the steadier figure; wall time equals it on an idle machine).",
        "",
        "| size | wall | CPU | peak RSS | RSS per MB of text |",
        "|---:|---:|---:|---:|---:|",
    ]
    for mb, m in rows:
        lines.append(
            f"| {mb:.1f} MB | {m['wall_s']:.1f} s | {m['cpu_s']:.1f} s | {m['rss_mb']:.0f} MB "
            f"| {m['rss_mb'] / mb:.1f} MB |"
        )
    if len(rows) >= 2:
        (a, ma), (b, mb_) = rows[0], rows[-1]
        slope = (mb_["rss_mb"] - ma["rss_mb"]) / (b - a)
        lines += ["", f"Memory grows by {slope:.1f} MB per MB of text above a {ma['rss_mb'] - slope * a:.0f} MB base."]
    big = rows[-1][1]
    lines += [
        "",
        f"Targets at 50 MB: < {TARGET_S:.0f} s (CPU {big['cpu_s']:.1f} s: {'met' if big['cpu_s'] < TARGET_S else 'MISSED'}),"
        f" < {TARGET_MB:.0f} MB ({big['rss_mb']:.0f} MB: {'met' if big['rss_mb'] < TARGET_MB else 'MISSED'}).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
