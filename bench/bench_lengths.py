"""Lengths users ask for (`--length 300w`, `500字`), measured by counts independent of tome's own.

Run from the repo root:  .venv/bin/python bench/bench_lengths.py [--no-write]

Every document of data/ and the corpus (../shared/corpus, skipped when absent; a PDF and a Chinese book among
them) is summarised through the whole engine by the offline extractive backend and by the test server's model,
obedient and disobedient (writes 1.3-2x what it is asked for). Each final summary is counted the ways a reader
would: English words as ``len(text.split())``; Chinese as its CJK characters alone and with punctuation (every
character, a run of spaces as one), as tests/test_lengths.py counts them. Results go to bench/results/lengths.md.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPUS = REPO.parent / "shared" / "corpus"
ENGLISH = [
    REPO / "data" / "the_lighthouse_keeper.md",
    CORPUS / "books" / "en_alice_in_wonderland_pg11.txt",
    CORPUS / "pdfs" / "en_report_dmca_summary_us_copyright_office_1998.pdf",
    CORPUS / "pdfs" / "en_paper_dpr_2col_arxiv2004.04906.pdf",
]
CHINESE = [
    REPO / "data" / "zh_shanju_ji.txt",
    CORPUS / "books" / "zh_xiyouji_pg23962.txt",
    CORPUS / "pdfs" / "cjk_zh_elegantbook_manual_15p.pdf",
]
LENGTHS_EN = ["300w", "120w"]
LENGTHS_ZH = ["500字", "200c"]
RESULTS = REPO / "bench" / "results" / "lengths.md"
_HANZI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def independent(text: str, chinese: bool) -> tuple[int, int]:
    """(words by split, same) for English; (CJK characters, non-space characters) for Chinese."""
    if chinese:
        return len(_HANZI.findall(text)), len(" ".join(text.split()))  # every character, spaces runs as one
    words = len(text.split())
    return words, words


async def run(backend_name: str, path: Path, length: str, home: Path) -> tuple[str, int, int, int]:
    from pipeline.documents import load_document
    from pipeline.engine import SummaryEngine
    from pipeline.extractive import ExtractiveBackend
    from pipeline.lengths import measure, parse_length
    from pipeline.llm.client import MoonshotClient
    from pipeline.llm.retry import RetryPolicy
    from pipeline.settings import model_and_limits, resolve_settings
    from pipeline.store import Store
    from pipeline.testing import Latency, MoonshotTestServer, Obedience

    doc = load_document(path)
    settings = resolve_settings(length=length)
    model, _ = model_and_limits(settings)
    store = Store(f"sqlite:///{home / f'{backend_name}-{path.stem}-{length}.db'}")
    asked = parse_length(length)
    assert asked is not None
    if backend_name == "extractive":
        backend = ExtractiveBackend(language=doc.language)
        result = await SummaryEngine(backend=backend, store=store, settings=settings, model=model).summarise(doc)
    else:
        obedience = Obedience.disobedient() if backend_name == "disobedient" else Obedience()
        with MoonshotTestServer(latency=Latency.zero(), obedience=obedience) as server:
            client = MoonshotClient(
                base_url=server.base_url, api_key=server.api_key, retry=RetryPolicy(max_retries=2)
            )
            engine = SummaryEngine(backend=client, store=store, settings=settings, model=model)
            result = await engine.summarise(doc)
            await client.aclose()
    text = result.final
    a, b = independent(text, doc.language == "zh")
    return doc.language, measure(text, asked.unit), a, b


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--backends", default="extractive,obedient,disobedient")
    args = parser.parse_args()
    lines = [
        "# Lengths asked in words and characters, counted independently",
        "",
        f"Recorded {date.today().isoformat()} by `.venv/bin/python bench/bench_lengths.py`. Ratio = count / "
        "length asked. English: `len(text.split())`; Chinese: CJK characters alone / every character, a run of "
        "spaces as one (punctuation included). tome = `pipeline.lengths.measure`, the count `--length` checks.",
        "",
        "| backend | document | asked | tome | independent | ratio | with punctuation | ratio |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        for backend in args.backends.split(","):
            for paths, lengths in ((ENGLISH, LENGTHS_EN), (CHINESE, LENGTHS_ZH)):
                for path in (p for p in paths if p.is_file()):
                    for length in lengths:
                        _, ours, a, b = await run(backend, path, length, home)
                        n = int(re.match(r"\d+", length).group())  # type: ignore[union-attr]
                        line = (
                            f"| {backend} | {path.name} | {length} | {ours} | {a} | {a / n:.3f} | {b} | {b / n:.3f} |"
                        )
                        lines.append(line)
                        print(line, flush=True)
    if not args.no_write:
        RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
