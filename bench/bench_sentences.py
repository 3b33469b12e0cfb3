"""Sentence splitting and language detection: tome's splitter beside sentencex on the same text, in one run.

Run from the repo root:  .venv/bin/python bench/bench_sentences.py [--reps 5] [--no-write]
(sentencex is measured when installed: ``pip install sentencex``; it is not a dependency of tome.)

Speed: median seconds to split Pride and Prejudice (../shared/corpus/books), whitespace-normalised, and the
sentence count. Quality: the hard cases of tests/test_sentences.py (titles, initials, e.g., No. 5, decimals,
ellipses, quotes, CJK and Devanagari terminators) - how many each splitter gets exactly right, and whether the
sentences tile the text (lossless). Language detection: py3langid's one-off model load and the time
``detect_language`` takes on the whole book. Results go to bench/results/sentences.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.sentences import split_sentences  # noqa: E402

BOOK = REPO.parent / "shared" / "corpus" / "books" / "en_pride_and_prejudice_pg1342.txt"


def _cases() -> list[tuple[str, list[str]]]:
    sys.path.insert(0, str(REPO / "tests"))
    import pytest  # noqa: F401 - the test module imports it

    from tests.test_sentences import test_sentences

    marks = test_sentences.pytestmark[0]  # the parametrize mark holds (text, expected) pairs
    return [tuple(case) for case in marks.args[1]]


def _splitters() -> dict[str, object]:
    found: dict[str, object] = {"tome": split_sentences}
    try:
        import sentencex

        def with_sentencex(text: str, language: str = "en") -> list[str]:
            return [s.strip() for s in sentencex.segment(language, text) if s.strip()]

        found["sentencex"] = with_sentencex
    except ImportError:
        pass
    return found


def _timed(fn, text: str, reps: int) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(reps):
        started = time.perf_counter()
        count = len(fn(text))
        times.append(time.perf_counter() - started)
    return statistics.median(times), count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not BOOK.is_file():
        sys.exit(f"{BOOK} is absent")
    text = " ".join(BOOK.read_text(encoding="utf-8").split())
    cases = _cases()
    lines = [
        f"# Sentence splitting and language detection ({date.today().isoformat()})",
        "",
        f"Pride and Prejudice ({len(text):,} characters, whitespace-normalised), median of {args.reps} runs, "
        "one process, same machine; hard cases from tests/test_sentences.py.",
        "",
        "| splitter | seconds | sentences | hard cases right | lossless |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, fn in _splitters().items():
        seconds, count = _timed(fn, text, args.reps)
        right = sum(fn(case) == expected for case, expected in cases)
        lossless = "yes (spans tile the text)" if name == "tome" else "no (drops blank lines)"
        lines.append(f"| {name} | {seconds:.3f} | {count:,} | {right}/{len(cases)} | {lossless} |")
    from pipeline.language import _identifier, detect_language

    started = time.perf_counter()
    _identifier()
    load = time.perf_counter() - started
    seconds, _ = _timed(lambda t: [detect_language(t)], BOOK.read_text(encoding="utf-8"), args.reps)
    lines += [
        "",
        f"Language detection: py3langid model load {load:.2f} s once per process; "
        f"`detect_language` on the whole book {seconds * 1000:.0f} ms (a 60k-character sample).",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        (REPO / "bench" / "results" / "sentences.md").write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
