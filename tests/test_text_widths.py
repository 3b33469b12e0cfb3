"""Texts of every width (ASCII, Latin-1, BMP, beyond U+FFFF): loading joins UTF-8 pieces into the same text with
character offsets for sections and pages; chunks are exact spans; token counts equal tiktoken's."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.chunking import chunk_document
from pipeline.documents import load_document
from pipeline.documents import loader as L
from pipeline.documents import normalise as N
from pipeline.documents.assemble import TextBuilder
from pipeline.tokens import TiktokenCounter, _encoding
from tests.fixtures.documents.make_pdfs import text_pdf
from tests.test_documents_pdf_epub import make_epub

WIDE = ["plain ascii", "café Straße", "“curly” — 中文", "emoji 😀 and 𠀀 beyond U+FFFF", "", "\u00ff\u0100"]


def test_the_builder_joins_pieces_of_every_width_with_character_offsets() -> None:
    joined = TextBuilder()
    offsets = []
    for piece in WIDE:
        offsets.append(joined.offset)
        joined.append(piece)
    text = joined.text()
    assert text == "".join(WIDE) and len(text) == joined.offset
    assert [text[a : a + len(p)] for a, p in zip(offsets, WIDE, strict=True)] == WIDE
    assert not TextBuilder() and TextBuilder().text() == ""


_CHAPTER = (
    "CHAPTER {n}.\n\nThe “lamp” — lit at dusk 😀 — burned\nall night, said Mara. 中文段落，换行\n继续。\n\n"
    "A second para-\ngraph with 𠀀 and café  spacing\u00a0here.\n\n"
)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", [False, True])
def test_wide_text_loads_the_same_in_blocks_with_any_newline_and_bom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: str, bom: bool
) -> None:
    raw = "".join(_CHAPTER.format(n=n) for n in range(1, 41))
    reference = N.normalise_text(raw)  # one pass over the whole text
    path = tmp_path / "wide.txt"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + raw.replace("\n", newline).encode("utf-8"))
    monkeypatch.setattr(N, "_BLOCK_CHARS", 53)  # many UTF-8 pieces, several wide characters in each
    doc = load_document(path)
    assert doc.text == reference and "\ufeff" not in doc.text and "\r" not in doc.text
    assert "paragraph with 𠀀 and café spacing here." in doc.text
    assert [s.title for s in doc.sections][:2] == ["CHAPTER 1", "CHAPTER 2"] and len(doc.sections) == 40
    for n, section in enumerate(doc.sections, start=1):  # offsets in characters, not UTF-8 bytes
        assert doc.text[section.start : section.end].startswith(f"CHAPTER {n}.\n\n")


def test_chunks_of_a_wide_text_are_exact_spans_with_exact_counts(tmp_path: Path) -> None:
    path = tmp_path / "wide.txt"
    path.write_text("".join(_CHAPTER.format(n=n) for n in range(1, 200)), encoding="utf-8")
    doc = load_document(path)
    counter = TiktokenCounter()
    for limit in (40, 300):
        chunks = chunk_document(doc, counter, limit)
        assert "".join(c.text for c in chunks) == doc.text
        assert all(a.end == b.start for a, b in zip(chunks, chunks[1:], strict=False))
        assert all(c.token_count == len(_encoding("cl100k_base").encode_ordinary(c.text)) <= limit for c in chunks)
        assert all(doc.text[c.start : c.end] == c.text for c in chunks)


def test_pdf_pages_are_character_spans_of_the_joined_text(tmp_path: Path) -> None:
    words = ["harbour", "lamp", "storm", "letter", "boat"]
    pages = [
        [f"The {w} café on quai {n}, déjà vu {'é' * n} and {w}s.", f"Its {n}th line ends {w}-wise, à la {w}."]
        for n, w in enumerate(words, start=1)
    ]
    path = tmp_path / "cafe.pdf"
    path.write_bytes(text_pdf(pages))
    doc = load_document(path)
    assert [p.number for p in doc.pages] == [1, 2, 3, 4, 5]
    for page, w in zip(doc.pages, words, strict=True):
        assert doc.text[page.start : page.end].startswith(f"The {w} café on quai {page.number}, déjà vu")
        assert doc.text[page.start : page.end].endswith(f"à la {w}.")
    assert all(doc.text[a.end : b.start] == "\n\n" for a, b in zip(doc.pages, doc.pages[1:], strict=False))


def test_epub_sections_are_character_spans_of_the_joined_text(tmp_path: Path) -> None:
    chapters = [(f"Chapter {n} 😀", f"C{n}", f"Émile’s 中文 line {n} 𠀀.\n\nAnother paragraph {n}.") for n in range(1, 5)]
    doc = load_document(make_epub(tmp_path / "wide.epub", chapters))
    assert [s.title for s in doc.sections] == [f"Chapter {n} 😀" for n in range(1, 5)]
    for n, section in enumerate(doc.sections, start=1):
        assert doc.text[section.start : section.end].startswith(f"Chapter {n} 😀\n\nÉmile’s 中文 line {n} 𠀀.\n\nAnother paragraph {n}.")
    assert doc.sections[-1].end == len(doc.text)


@pytest.mark.parametrize(
    "text",
    ["", "a <|endoftext|> b <|fim_prefix|>", "“curly” — 中文，换行。", "😀 𠀀 mixed café " * 50, "lone \ud800 surrogate"],
)
def test_counts_equal_tiktoken_encode_ordinary(text: str) -> None:
    assert TiktokenCounter().count(text) == len(_encoding("cl100k_base").encode_ordinary(text))


def test_counts_equal_on_the_corpus_books(corpus: Path) -> None:
    counter, encoding = TiktokenCounter(), _encoding("cl100k_base")
    for book in sorted((corpus / "books").glob("*.txt")):
        text = book.read_text(encoding="utf-8")[:200_000]
        assert counter.count(text) == len(encoding.encode_ordinary(text))


def test_loading_a_big_file_keeps_freed_blocks_returnable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.memory import fix_mmap_threshold_once

    fix_mmap_threshold_once.cache_clear()
    path = tmp_path / "small.txt"
    path.write_text("A small text.\n", encoding="utf-8")
    load_document(path)
    assert fix_mmap_threshold_once.cache_info().currsize == 0  # a small file leaves the allocator alone
    monkeypatch.setattr(L, "_BIG_FILE_BYTES", 8)
    load_document(path)
    assert fix_mmap_threshold_once.cache_info().currsize == 1


def test_paragraphs_counted_in_threads_give_the_chunks_counted_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.span_memo as C

    path = tmp_path / "wide.txt"
    path.write_text("".join(_CHAPTER.format(n=n) for n in range(1, 300)), encoding="utf-8")
    doc = load_document(path)
    counter = TiktokenCounter()
    monkeypatch.setattr(C, "_PARALLEL_MIN_SPANS", 10**9)
    lazy = C.SpanMemo(doc.text, counter)
    one_by_one = [chunk_document(doc, counter, limit, memo=lazy) for limit in (50, 400)]
    monkeypatch.setattr(C, "_PARALLEL_MIN_SPANS", 1)
    monkeypatch.setattr(C, "_COUNT_BATCH", 7)
    memo = C.SpanMemo(doc.text, counter)
    assert [chunk_document(doc, counter, limit, memo=memo) for limit in (50, 400)] == one_by_one
    stride = len(doc.text) + 1
    assert len(memo._counts) >= len(lazy._counts)
    assert all(n == counter.count(doc.text[k // stride : k % stride]) for k, n in memo._counts.items())
