"""Large texts: block-wise loading gives the single-pass result, holding the text at most about twice; chunk counts
reused without a recount are exact; a plan keeps no copy of the text."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import pytest

from pipeline.chunking import chunk_document
from pipeline.config import RateLimits, load_catalog
from pipeline.documents import load_document
from pipeline.documents import normalise as N
from pipeline.planning import plan_document
from pipeline.settings import resolve_settings
from pipeline.tokens import TiktokenCounter

MESSY = (
    "  Title line\r\n\r\nA para-\ngraph  with\u00a0 odd\tspacing \u3000\nand a wrapped line.\u2028Next\ufb01ne.\n\n"
    "\u3000\u3000中文段落，换行\n继续。\n\n# Heading\n\n1. item one\n2. item two\u200b   \n\n"
)


def test_blockwise_normalisation_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    text = MESSY * 400
    whole, markdown = N.normalise_text(text), N.normalise_text(text, markdown=True)
    monkeypatch.setattr(N, "_BLOCK_CHARS", 97)  # many blocks, each ending at a blank line
    assert N.normalise_text(text) == whole
    assert N.normalise_text(text, markdown=True) == markdown
    assert "\u200b" not in whole and "  " not in whole and "fine" in whole and "paragraph with odd spacing" in whole


def test_reused_unit_counts_equal_real_counts(corpus: Path) -> None:
    counter = TiktokenCounter()
    assert counter.additive_at_line_breaks
    for name in ("en_pride_and_prejudice_pg1342.txt", "zh_xiyouji_pg23962.txt"):
        doc = load_document(corpus / "books" / name)
        for limit in (700, 6000):
            chunks = chunk_document(doc, counter, limit)
            assert all(c.token_count == counter.count(c.text) <= limit for c in chunks)
            assert "".join(c.text for c in chunks) == doc.text


_BOOK = (
    "CHAPTER I.\n\nIt was a bright cold day in April, and the clocks were striking thirteen. The hall smelt of\n"
    "boiled cabbage and old rag mats.\n\n[Illustration: A caption\n\nthat runs over a blank line]\n\n"
    "A hyphen-\nated word and a wrapped\nline end here.\n\n[Illustration]\n\n"
)
_HEADER = "The Project Gutenberg eBook of Two Books\n\nTitle: Two Books\n\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n"
_FOOTER = "\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n\nSection 1. General Terms of Use\n" + "licence text\n" * 30


def test_loading_block_by_block_equals_one_pass_in_every_newline_convention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _HEADER + _BOOK * 40 + _FOOTER + _HEADER + _BOOK.replace("April", "May") * 40 + _FOOTER
    path = tmp_path / "two.txt"
    path.write_text(raw, encoding="utf-8")
    whole = load_document(path)
    assert "[Illustration" not in whole.text and "licence" not in whole.text and "START OF" not in whole.text
    assert "runs over a blank line" not in whole.text and "hyphenated word" in whole.text and "May" in whole.text
    body = tmp_path / "body.txt"
    body.write_text(_BOOK * 40, encoding="utf-8")
    whole_body = load_document(body)
    monkeypatch.setattr(N, "_BLOCK_CHARS", 61)  # blocks end at blank lines, never inside a caption
    for newline in ("\n", "\r\n"):
        path.write_text(raw.replace("\n", newline), encoding="utf-8", newline="")
        doc = load_document(path)
        assert doc.text == whole.text
        assert doc.sections == whole.sections and doc.title == whole.title == "Two Books"
    for newline in ("\n", "\r\n", "\r"):  # Gutenberg's markers are found on LF and CRLF lines only
        body.write_text((_BOOK * 40).replace("\n", newline), encoding="utf-8", newline="")
        doc = load_document(body)
        assert doc.text == whole_body.text and doc.sections == whole_body.sections


def test_loading_holds_the_text_at_most_about_twice(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Raw text plus normalised blocks, then blocks plus the joined text: no third copy (the raw text is freed
    # before the join; book spans, illustrations and newlines are handled block by block). Before: 3.1x.
    book = (corpus / "books" / "en_pride_and_prejudice_pg1342.txt").read_text(encoding="utf-8")
    path = tmp_path / "pp3.txt"
    path.write_text(book * 3, encoding="utf-8")
    monkeypatch.setattr(N, "_BLOCK_CHARS", 1 << 16)
    load_document(path)  # imports and caches first
    tracemalloc.start()
    try:
        doc = load_document(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * sys.getsizeof(doc.text)


def test_a_plan_keeps_no_copy_of_the_text(corpus: Path) -> None:
    # Chunks are spans of Document.text: a plan adds almost nothing to the document it plans (before: 1.0x).
    settings = resolve_settings(model="moonshot-v1-8k")
    model = load_catalog().model(settings.model)
    doc = load_document(corpus / "books" / "en_pride_and_prejudice_pg1342.txt")
    plan_document(load_document(corpus / "books" / "en_alice_in_wonderland_pg11.txt"), model, settings, RateLimits(concurrency=8))
    tracemalloc.start()
    try:
        plan = plan_document(doc, model, settings, RateLimits(concurrency=8))
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = sys.getsizeof(doc.text)
    assert len(plan.chunks) > 10 and "".join(c.text for c in plan.chunks) == doc.text
    assert kept < 0.1 * size and peak < 0.8 * size


def test_the_document_hash_is_the_sha256_of_the_whole_text_hashed_block_by_block() -> None:
    import hashlib

    from pipeline import store

    text = "Straße ’quoted’ 中文 😀 " * 100_000  # over one hash block, blocks ending anywhere in it
    assert len(text) > store._HASH_BLOCK_CHARS
    assert store.document_hash(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_cli_keeps_big_blocks_returnable_to_the_system(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    from pipeline.memory import fix_mmap_threshold

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert fix_mmap_threshold() is False  # the user's own setting wins
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    assert fix_mmap_threshold() is True


async def test_level_0_calls_hold_spans_until_they_start(corpus: Path, tmp_path: Path) -> None:
    from pipeline.engine import SummaryEngine
    from pipeline.extractive import ExtractiveBackend
    from pipeline.settings import model_and_limits
    from pipeline.store import Store

    settings = resolve_settings()
    model, _ = model_and_limits(settings)
    engine = SummaryEngine(
        backend=ExtractiveBackend(), store=Store(f"sqlite:///{tmp_path / 'x.db'}"), settings=settings, model=model
    )
    doc = load_document(corpus / "books" / "en_alice_in_wonderland_pg11.txt")
    state = engine.prepare(doc)
    calls = engine.scheduler.calls(state, 0)
    assert len(calls) == len(state.chunks) > 1
    for call, chunk in zip(calls, state.chunks, strict=True):
        assert call.text == "" and call.span == (chunk.start, chunk.end) and call.length == len(chunk.text)
        assert call.with_text(doc.text).text == chunk.text and call.with_text(doc.text).span is None
    while not state.done:
        await engine.run_level(state, state.next_level)
    assert [n.span for n in state.levels[0]] == [(c.start, c.end) for c in state.chunks]


def test_outputs_written_a_node_at_a_time_equal_the_whole_strings(corpus: Path, tmp_path: Path) -> None:
    import json

    import pipeline
    from pipeline.options import SummariseOptions
    from pipeline.output_files import options_fingerprint, write_outputs
    from pipeline.report import render_report

    doc = corpus / "books" / "en_alice_in_wonderland_pg11.txt"
    result = pipeline.summarise(doc, backend="extractive", length="short")
    assert len(result.levels) >= 2 and any(s.text for n in result.levels[0] for link in n.sentences for s in link.supports)
    options = SummariseOptions.build(backend="extractive")
    _, json_path, html_path = write_outputs(result, tmp_path, "alice", source=doc, source_sha256="0" * 64, options=options)
    payload = {
        "source": {
            "path": str(doc),
            "sha256": "0" * 64,
            "options": options.model_dump(exclude_none=True),
            "options_fingerprint": options_fingerprint(options),
        },
        **result.to_json_dict(),
    }
    assert json_path.read_text(encoding="utf-8") == json.dumps(payload, ensure_ascii=False, indent=2) + "\n"
    assert html_path.read_text(encoding="utf-8") == render_report(payload)
    assert json.loads(json_path.read_text(encoding="utf-8"))["tree"] == payload["tree"]
