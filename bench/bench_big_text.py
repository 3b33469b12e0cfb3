"""A very large text: peak memory, wall and CPU time of `tome plan` and of a whole `tome summarise`, by size.

Run from the repo root:  .venv/bin/python bench/bench_big_text.py [--kinds ascii,typographic,emoji,zh,mixed] [--sizes 10,25,50]
    [--summarise-sizes 10,50] [--summarise-kinds emoji] [--no-summarise] [--tree-window 8192] [--no-write]

The texts are kinds of text (KINDS: ASCII, typographic English, English with emoji,
Chinese, English and Chinese with emoji) built from the
corpus's books repeated up to each size, written to a temporary directory (never into
the repo); a 1 KB text gives the process's own start-up memory. Each measurement is one child process reaped
with os.wait4, so its peak RSS (the whole process's high-water mark) and CPU time are its own:
``tome plan FILE --json`` and ``tome summarise FILE --backend extractive --no-prefect -o DIR`` (the offline
backend: no server, every call made; a fresh TOME_HOME each, so nothing comes from the cache). Targets
(issue 14): a 50 MB text plans in < 10 s, plan and summary each stay under 400 MB, memory grows linearly with a
small constant. Results go to bench/results/big_text.md.
"""

from __future__ import annotations

import argparse
import html
import os
import platform
import subprocess
import sys
import tempfile
import time
import unicodedata
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


# Kinds of text, because Python stores a str at the width of its widest character: 1 byte when every character is
# Latin-1, 2 with one curly quote or CJK character, 4 with one emoji or other character beyond U+FFFF; and
# tiktoken's speed differs by script. Each is built from the corpus's books, repeated up to the size.
KINDS = {
    "ascii": "the English books with their typographic quotes, dashes and accents made ASCII (1 byte a character)",
    "typographic": "the English books as they are: curly quotes and em dashes (2 bytes a character)",
    "zh": "西遊記 (traditional Chinese; 3 UTF-8 bytes and 2 bytes in Python a character)",
    "emoji": "the English books, an emoji or a CJK Extension B ideograph ending every 40th paragraph (4 bytes a "
             "character: the widest a text can be in Python)",
    "mixed": "the English books and 西遊記 in turn, with the same emoji and ideographs (4 bytes a character)",
    "epub": "the `typographic` text as an EPUB of ~1 MB chapters, a `<p>` a paragraph (the size is the text's)",
}
_ASCII = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "—": "--", "–": "-", "\u00a0": " "})
_ASTRAL = ("\U0001F600", "\U0001F4DA", "\U00020000", "\U0002A6B2", "\U0001F30D")


def _book_texts(kind: str) -> list[str]:
    """The books one ``kind`` of text repeats, each as it goes into the file."""
    english = [p.read_text(encoding="utf-8") for p in sorted(BOOKS.glob("en_*.txt"))]
    chinese = [p.read_text(encoding="utf-8") for p in sorted(BOOKS.glob("zh_*.txt"))]
    if kind == "ascii":
        return [
            unicodedata.normalize("NFKD", t.translate(_ASCII)).encode("ascii", "ignore").decode("ascii")
            for t in english
        ]
    if kind in ("typographic", "epub"):
        return english
    if kind == "zh":
        return chinese
    if kind in ("emoji", "mixed"):
        mixed = []
        books = english if kind == "emoji" else [t for pair in zip(english, [*chinese] * len(english), strict=True) for t in pair]
        for text in books:
            paragraphs = text.split("\n\n")
            for i in range(39, len(paragraphs), 40):
                paragraphs[i] = paragraphs[i].rstrip() + " " + _ASTRAL[(i // 40) % len(_ASTRAL)]
            mixed.append("\n\n".join(paragraphs))
        return mixed
    raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")


def available(kind: str) -> bool:
    """Whether the corpus has the books ``kind`` needs."""
    english, chinese = any(BOOKS.glob("en_*.txt")), any(BOOKS.glob("zh_*.txt"))
    return {"ascii": english, "typographic": english, "emoji": english, "epub": english, "zh": chinese, "mixed": english and chinese}[kind]


def make_text(path: Path, kind: str, megabytes: int) -> tuple[int, float]:
    """Write ``kind``'s books, repeated, until ``megabytes`` MB of UTF-8 text; returns the text's size in bytes and
    what Python holds for it in MB (its characters times the widest one's width: 1, 2 or 4 bytes)."""
    books = _book_texts(kind)
    size = chars = widest = i = 0
    while size < megabytes * 1_000_000:
        text = books[i % len(books)]
        size += len(text.encode("utf-8"))
        chars += len(text)
        widest = max(widest, ord(max(text)))
        if kind != "epub":
            with path.open("a", encoding="utf-8", newline="") as out:
                out.write(text)
        i += 1
    if kind == "epub":  # in a child: this process never holds a big text (see measure)
        subprocess.run([sys.executable, __file__, "--write-epub", str(path), str(megabytes)], check=True, cwd=REPO)
    return size, chars * (1 if widest < 256 else 2 if widest < 65536 else 4) / 1e6


def _write_epub(path: Path, megabytes: int) -> None:
    """An EPUB of the English books' paragraphs, repeated to ``megabytes`` MB, in chapters of about 1 MB."""
    from ebooklib import epub

    books = _book_texts("epub")
    texts, size = [], 0
    while size < megabytes * 1_000_000:
        texts.append(books[len(texts) % len(books)])
        size += len(texts[-1].encode("utf-8"))

    book = epub.EpubBook()
    book.set_identifier("tome-bench-big")
    book.set_title("A big book")
    book.set_language("en")
    chapters: list[list[str]] = [[]]
    held = 0
    for text in texts:
        for paragraph in text.split("\n\n"):
            if paragraph.strip():
                chapters[-1].append(f"<p>{html.escape(' '.join(paragraph.split()))}</p>")
                held += len(paragraph)
                if held >= 1_000_000:
                    chapters.append([])
                    held = 0
    items = []
    for n, paragraphs in enumerate((c for c in chapters if c), start=1):
        item = epub.EpubHtml(title=f"Part {n}", file_name=f"part{n}.xhtml", lang="en")
        item.content = f"<html><head><title>Part {n}</title></head><body><h1>Part {n}</h1>{''.join(paragraphs)}</body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)


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


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope and intercept of (x, y) points."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return slope, my - slope * mx


Row = tuple[str, float, float, dict[str, float], "dict[str, float] | None", float]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"kinds of text ({', '.join(KINDS)})")
    ap.add_argument("--sizes", default="10,25,50", help="sizes in MB")
    ap.add_argument("--no-summarise", action="store_true", help="measure planning only")
    ap.add_argument("--summarise-sizes", default="", help="summarise only at these sizes in MB (default: every size)")
    ap.add_argument("--summarise-kinds", default="", help="summarise only these kinds (default: every kind)")
    ap.add_argument("--tree-window", type=int, default=0,
                    help="also summarise each kind's largest text in this window's many-call tree (e.g. 8192)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--write-epub", nargs=2, metavar=("PATH", "MB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write_epub:
        _write_epub(Path(args.write_epub[0]), int(args.write_epub[1]))
        return 0
    kinds = [k for k in args.kinds.split(",") if k]
    for kind in kinds:
        if kind not in KINDS:
            ap.error(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    kinds = [k for k in kinds if available(k)]
    if not kinds:
        print(f"skipped: no books in {BOOKS}")
        return 0
    sizes = [int(x) for x in args.sizes.split(",") if x]
    summarise = not args.no_summarise
    summarise_sizes = {int(x) for x in args.summarise_sizes.split(",") if x} or set(sizes)
    summarise_kinds = {k for k in args.summarise_kinds.split(",") if k} or set(kinds)
    rows: list[Row] = []
    trees: list[tuple[str, float, int, dict[str, float], float]] = []
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
        n = 0
        for kind in kinds:
            for mb in sizes:
                n += 1
                path = tmp / f"big-{kind}-{mb}.{'epub' if kind == 'epub' else 'txt'}"
                size, in_memory = make_text(path, kind, mb)
                plan = measure(["plan", str(path), "--json"], tmp / f"home-plan-{n}")
                summary = None
                out_mb = 0.0
                if summarise and mb in summarise_sizes and kind in summarise_kinds:
                    out = tmp / f"out-{n}"
                    summary = measure(
                        ["summarise", str(path), "--backend", "extractive", "--no-prefect", "--no-progress", "-o", str(out)],
                        tmp / f"home-sum-{n}",
                    )
                    out_mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
                rows.append((kind, size / 1e6, in_memory, plan, summary, out_mb))
                if summarise and args.tree_window and mb == max(summarise_sizes) and kind in summarise_kinds:
                    out = tmp / f"out-tree-{n}"
                    out.mkdir()
                    tree = measure(["python", "-c", TREE_CHILD, str(path), str(out), str(args.tree_window)], tmp / f"home-tree-{n}")
                    tree_out = sum(p.stat().st_size for p in out.glob("big.summary.*")) / 1e6
                    trees.append((kind, size / 1e6, args.tree_window, tree, tree_out))
                    print(f"{kind} tree {args.tree_window}: {tree['wall_s']:.0f} s, {tree['rss_mb']:.0f} MB, "
                          f"outputs {tree_out:.1f} MB", file=sys.stderr)
                print(
                    f"{kind} {size / 1e6:.1f} MB ({in_memory:.0f} MB in memory): plan {plan['wall_s']:.1f} s wall, "
                    f"{plan['cpu_s']:.1f} s CPU, {plan['rss_mb']:.0f} MB"
                    + (f"; summarise {summary['wall_s']:.0f} s, {summary['rss_mb']:.0f} MB" if summary else ""),
                    file=sys.stderr,
                )
                path.unlink()
                if not args.no_write:  # what is measured so far (a long run on a busy machine may be cut short)
                    RESULTS.write_text(report(rows, base_plan, base_sum, trees), encoding="utf-8")
    text = report(rows, base_plan, base_sum, trees)
    print(text)
    if not args.no_write:
        RESULTS.write_text(text, encoding="utf-8")
    return 0


def report(
    rows: list[Row],
    base_plan: dict[str, float],
    base_sum: dict[str, float] | None,
    trees: list[tuple[str, float, int, dict[str, float], float]],
) -> str:
    load = os.getloadavg()[0]
    kinds = list(dict.fromkeys(kind for kind, *_ in rows))
    lines = [
        "# A very large text: memory and time (`bench/bench_big_text.py`)",
        "",
        "Whole processes, one run each, reaped with `os.wait4` (peak RSS = the process's high-water mark): "
        "`tome plan FILE --json` (moonshot-v1-8k) and `tome summarise FILE --backend extractive --no-prefect -o DIR` "
        "(the offline backend with its own 131k planning window: every call made, nothing cached; the .md, .json "
        "and .html written). Kinds of text, each the corpus's books repeated to the size (\"text in memory\": what a "
        "Python str of it takes, at the width of its widest character):",
        "",
        *[f"- `{kind}`: {KINDS[kind]};" for kind in kinds],
        "",
        f"{platform.machine()}, {os.cpu_count()} cores, {date.today().isoformat()}; load average {load:.1f} when it "
        "ended (a shared machine: CPU time is the steadier figure).",
        "",
        "| kind | file | text in memory | plan: wall | plan: CPU | plan: peak RSS | summarise: wall | summarise: CPU "
        "| summarise: peak RSS | outputs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    tiny_sum = (
        f"{base_sum['wall_s']:.1f} s | {base_sum['cpu_s']:.1f} s | {base_sum['rss_mb']:.0f} MB | -"
        if base_sum else "- | - | - | -"
    )
    lines.append(
        f"| start-up | 1 KB | - | {base_plan['wall_s']:.1f} s | {base_plan['cpu_s']:.1f} s | "
        f"{base_plan['rss_mb']:.0f} MB | {tiny_sum} |"
    )
    for kind, mb, in_memory, plan, summary, out_mb in rows:
        s = (
            f"{summary['wall_s']:.0f} s | {summary['cpu_s']:.0f} s | {summary['rss_mb']:.0f} MB | {out_mb:.1f} MB"
            if summary else "- | - | - | -"
        )
        lines.append(
            f"| {kind} | {mb:.1f} MB | {in_memory:.0f} MB | {plan['wall_s']:.1f} s | {plan['cpu_s']:.1f} s | "
            f"{plan['rss_mb']:.0f} MB | {s} |"
        )
    lines += [
        "",
        "Growth: peak RSS by the file's size (least squares over the sizes of each kind; the slope is MB of memory "
        "per MB of file, and per MB of the text as Python holds it).",
        "",
        "| kind | plan: peak RSS | per MB in memory | summarise: peak RSS | per MB in memory |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in kinds:
        mine = [r for r in rows if r[0] == kind]
        if len(mine) < 2:
            continue
        width = mine[-1][2] / mine[-1][1]  # MB in memory per MB of file
        slope, icpt = fit([(mb, p["rss_mb"]) for _, mb, _, p, _, _ in mine])
        cells = [f"{icpt:.0f} MB + {slope:.2f} × MB", f"{slope / width:.2f}"]
        if sum(1 for *_, s, _ in mine if s) >= 2:
            slope, icpt = fit([(mb, s["rss_mb"]) for _, mb, _, _, s, _ in mine if s])
            cells += [f"{icpt:.0f} MB + {slope:.2f} × MB", f"{slope / width:.2f}"]
        else:
            cells += ["-", "-"]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    for kind, mb, window, tree, tree_out in trees:
        lines += [
            "",
            f"A many-call tree: the {mb:.1f} MB `{kind}` text summarised by the offline backend planning with a "
            f"{window:,}-token window (as a model's; engine and `write_outputs` in one child process): "
            f"{tree['wall_s']:.0f} s wall, {tree['cpu_s']:.0f} s CPU, peak RSS **{tree['rss_mb']:.0f} MB**, outputs "
            f"{tree_out:.1f} MB (.md, .json, .html: every summary sentence with its quoted sources).",
        ]
    lines += ["", "Targets (issue 14): a 50 MB text plans in < 10 s and stays under 400 MB planning and summarising.", ""]
    for kind in kinds:
        _, mb, _, plan, summary, _ = [r for r in rows if r[0] == kind][-1]
        verdict = [
            f"plan {plan['wall_s']:.1f} s wall, {plan['cpu_s']:.1f} s CPU "
            f"({'met' if max(plan['wall_s'], plan['cpu_s']) < TARGET_S else 'MISSED'})",
            f"plan {plan['rss_mb']:.0f} MB ({'met' if plan['rss_mb'] < TARGET_MB else 'MISSED'})",
        ]
        if summary:
            verdict.append(
                f"summarise {summary['rss_mb']:.0f} MB ({'met' if summary['rss_mb'] < TARGET_MB else 'MISSED'})"
            )
        lines.append(f"- `{kind}` at {mb:.0f} MB: " + ", ".join(verdict) + ".")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
