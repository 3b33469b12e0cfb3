"""Large texts: block-wise normalisation gives the single-pass result; chunk counts reused without a recount are exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.chunking import chunk_document
from pipeline.documents import load_document
from pipeline.documents import normalise as N
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
