"""Speed of the offline extractive backend through the whole engine, by planning window, side by side.

Run from the repo root:  .venv/bin/python bench/bench_offline_speed.py [--windows 8192,131072] [--mb 50] [--no-write]

Documents: Pride and Prejudice (../shared/corpus/books, ~160k tokens, about a 400-page report's length) and
the corpus's English books repeated to ``--mb`` MB in a temporary file (never in the repo). Each run: a fresh
store, ``engine.summarise`` timed (wall and CPU of this process), calls counted. Results go to
bench/results/offline_speed.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BOOKS = REPO.parent / "shared" / "corpus" / "books"
RESULTS = REPO / "bench" / "results" / "offline_speed.md"


async def timed(path: Path, window: int) -> tuple[float, float, int]:
    from pipeline.documents.loader import load_document
    from pipeline.engine import SummaryEngine
    from pipeline.extractive import ExtractiveBackend
    from pipeline.settings import model_and_limits, resolve_settings
    from pipeline.store import Store

    settings = resolve_settings()
    model, _ = model_and_limits(settings)
    with tempfile.TemporaryDirectory() as tmp:
        engine = SummaryEngine(
            backend=ExtractiveBackend(),
            store=Store(f"sqlite:///{Path(tmp) / 'x.db'}"),
            settings=settings,
            model=replace(model, context_tokens=window),
        )
        wall, cpu = time.perf_counter(), time.process_time()
        result = await engine.summarise(load_document(path))
        return time.perf_counter() - wall, time.process_time() - cpu, result.usage.calls


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", default="8192,131072")
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tome-offline-speed-"))
    big = scratch / f"books_{args.mb}mb.txt"
    books = [p.read_text(encoding="utf-8") for p in sorted(BOOKS.glob("en_*.txt"))]
    with big.open("w", encoding="utf-8") as out:
        size, i = 0, 0
        while size < args.mb * 1_000_000:
            out.write(books[i % len(books)])
            size += len(books[i % len(books)].encode("utf-8"))
            i += 1
    docs = [BOOKS / "en_pride_and_prejudice_pg1342.txt", big]
    lines = [
        "# Offline backend speed by planning window (`bench/bench_offline_speed.py`)",
        "",
        f"Recorded {date.today().isoformat()}, 2-core shared machine; `engine.summarise` in one process, default "
        "length, fresh store each run (wall includes loading, planning and every call).",
        "",
        "| document | window | calls | wall | CPU |",
        "|---|---:|---:|---:|---:|",
    ]
    for doc in docs:
        for window in (int(w) for w in args.windows.split(",")):
            wall, cpu, calls = await timed(doc, window)
            lines.append(f"| {doc.name} | {window} | {calls} | {wall:.1f} s | {cpu:.1f} s |")
            print(lines[-1], flush=True)
    big.unlink()
    if not args.no_write:
        RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
