"""A book the offline backend reads in one call still gets its chapter summaries (JSON sections, HTML report)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.api import asummarise
from pipeline.documents import load_document
from pipeline.options import SummariseOptions
from pipeline.report import render_report
from pipeline.sentences import split_sentences

REPO = Path(__file__).resolve().parents[1]


def _flat(text: str) -> str:
    return "".join(text.split())


def _pieces(text: str, source: str) -> list[str] | None:
    """The sentences of ``source`` that ``text`` is made of, in order (whitespace aside); None if it is not."""
    rest, found = _flat(text), []
    for sentence in split_sentences(source):
        piece = _flat(sentence)
        if piece and rest.startswith(piece):
            rest = rest[len(piece) :]
            found.append(piece)
    return None if rest else found


async def _check_chapters(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOME_HOME", str(tmp_path / "home"))
    doc = load_document(path)
    result = await asummarise(doc, SummariseOptions(backend="extractive"))
    assert result.usage.calls == 1  # one call over the whole book, as before: the final's one-pass selection
    chapters, (final,) = result.levels
    titles = [s.title for s in doc.sections]
    shown = result.to_json_dict()["sections"]
    assert len(shown) >= 2 and [s["title"] for s in shown] == [
        t for t in titles if t in {s["title"] for s in shown}
    ]
    for node in chapters:  # a chapter's summary is sentences of that chapter, in order
        assert node.text and _pieces(node.text, doc.text[node.span[0] : node.span[1]])
    assert final.inputs == tuple(range(len(chapters)))
    for link in final.sentences:  # each final sentence is traced through the chapter(s) that hold it
        pieces = _pieces(final.text[link.span[0] : link.span[1]], doc.text)
        held = "".join(_flat(chapters[s.node].text) for s in link.supports)
        sources = "".join(_flat(doc.text[s.start : s.end]) for s in link.sources)
        assert pieces and all(p in held and p in sources for p in pieces)
    page = render_report(result.to_json_dict())
    cards = re.search(r'<section class="card" id="sections">(.*?)</section>', page, re.DOTALL)
    assert cards is not None and cards.group(1).count("<h3>") >= 2


@pytest.mark.parametrize("name", ["the_lighthouse_keeper.md", "zh_shanju_ji.txt"])
async def test_a_one_call_offline_run_has_chapter_summaries(name, tmp_path, monkeypatch):
    await _check_chapters(REPO / "data" / name, tmp_path, monkeypatch)


@pytest.mark.corpus
async def test_a_real_book_read_in_one_call_has_its_chapters_summarised(corpus, tmp_path, monkeypatch):
    await _check_chapters(corpus / "books" / "en_alice_in_wonderland_pg11.txt", tmp_path, monkeypatch)
