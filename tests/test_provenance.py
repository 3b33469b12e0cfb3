"""Provenance: every summary sentence traced through the tree to the document's text and pages."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.documents import load_document
from pipeline.documents.model import Document, Page
from pipeline.extractive import ExtractiveBackend
from pipeline.provenance import features, link_merge, node_sentences
from pipeline.store import Store
from tests.test_engine import MARKER, _client, _engine, chinese_document, generated_document, with_markers

REPO = Path(__file__).resolve().parents[1]


def _flat(text: str) -> str:
    return "".join(text.split())


def with_pages(doc: Document, size: int = 2500) -> Document:
    """``doc`` cut into pages of ``size`` characters (as a PDF's text layer would be)."""
    n = len(doc.text)
    pages = tuple(Page(i + 1, a, min(a + size, n)) for i, a in enumerate(range(0, n, size)))
    return replace(doc, pages=pages)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'tome.db'}")


def _assert_sources_hold_each_sentence(result, doc: Document) -> int:
    checked = 0
    for node in result.nodes:
        assert len(node.sentences) == len(node_sentences(node.text)) > 0
        for link in node.sentences:
            sentence = _flat(node.text[link.span[0] : link.span[1]])
            passages = "".join(_flat(doc.text[s.start : s.end]) for s in link.sources)
            assert sentence in passages, (node.level, node.index, sentence)
            for support in link.supports:
                if node.level == 0:
                    assert support.node is None and support.text == doc.text[slice(*support.span)]
                    assert support.pages == doc.pages_for(*support.span)
                else:
                    assert support.node in node.inputs
            checked += 1
    return checked


@pytest.mark.parametrize(
    "make", [lambda: with_pages(generated_document(chapters=30)), lambda: chinese_document(chapters=40)]
)
async def test_extractive_sentences_trace_to_the_text_they_were_extracted_from(store, make):
    doc = make()
    result = await _engine(ExtractiveBackend(language=doc.language), store, length="short").summarise(doc)
    assert len(result.levels) >= 2
    assert _assert_sources_hold_each_sentence(result, doc) >= 20
    if doc.pages:
        final = result.levels[-1][0]
        pages = {s.pages for link in final.sentences for s in link.sources}
        assert (
            None not in pages and pages
        )  # (a report's position prior may take them all from its first pages)
        mapped = {s.pages for node in result.levels[0] for link in node.sentences for s in link.sources}
        assert None not in mapped and len(mapped) >= 2


@pytest.mark.parametrize("name", ["the_lighthouse_keeper.md", "zh_shanju_ji.txt"])
async def test_extractive_provenance_on_the_sample_documents(store, name):
    doc = load_document(REPO / "data" / name)
    result = await _engine(ExtractiveBackend(language=doc.language), store, length="short").summarise(doc)
    assert _assert_sources_hold_each_sentence(result, doc) >= 5


@pytest.mark.corpus
async def test_extractive_provenance_on_a_pdf_names_its_pages(store, corpus):
    doc = load_document(corpus / "pdfs" / "en_report_dmca_summary_us_copyright_office_1998.pdf")
    result = await _engine(ExtractiveBackend(), store, length="short").summarise(doc)
    _assert_sources_hold_each_sentence(result, doc)
    final = result.levels[-1][0]
    assert all(s.pages for link in final.sentences for s in link.sources)


async def test_markers_in_the_source_reach_the_sentences_that_carry_them(moonshot_server, store, tmp_path):
    client = _client(moonshot_server)
    engine = _engine(client, store, length="short")
    doc, markers = with_markers(with_pages(generated_document(chapters=60)), engine)
    result = await engine.summarise(doc)
    await client.aclose()
    assert len(result.levels) >= 3
    final = result.levels[-1][0]
    seen = set()
    for link in final.sentences:
        sentence = final.text[link.span[0] : link.span[1]]
        for marker in MARKER.findall(sentence):
            holders = [s for s in link.sources if marker in doc.text[s.start : s.end]]
            assert holders, marker
            assert holders[0].pages == doc.pages_for(holders[0].start, holders[0].end) is not None
            seen.add(marker)
    assert seen == set(markers)
    # Every level on the way down names the node that carried the marker.
    data = json.loads(json.dumps(result.to_json_dict(), ensure_ascii=False))
    top = data["tree"][-1]
    assert top["sentences"] and all("supports" in s and "sources" in s for s in top["sentences"])


def test_citations_the_model_wrote_are_kept():
    doc = Document(
        path=Path("x.txt"), text="Alpha beta gamma.\n\nDelta epsilon zeta.", title="x", language="en"
    )
    from pipeline.provenance import link_level0

    a = ("Alpha beta gamma.", link_level0("Alpha beta gamma.", doc.text[:17], 0, doc))
    b = ("Delta epsilon zeta.", link_level0("Delta epsilon zeta.", doc.text[19:], 19, doc))
    links = link_merge(
        "Something else entirely [2]. Alpha beta gamma again.",
        [(0, a[0], a[1]), (1, b[0], b[1])],
        doc,
    )
    assert [s.node for s in links[0].supports] == [1] and links[0].supports[0].cited
    assert [(s.start, s.end) for s in links[0].sources] == [(19, 38)]
    assert [s.node for s in links[1].supports] == [0] and not links[1].supports[0].cited


def test_features_keep_markers_numbers_and_chinese_bigrams():
    feats = features("⟦C0001⟧ The 2019 budgets rose; 预算增加了。")
    assert {"⟦C0001⟧", "2019", "budget", "预算"} <= feats and "the" not in feats
    assert re.fullmatch(r"\w+", "rose")


async def test_cite_asks_merges_for_citations_and_they_reach_the_provenance(moonshot_server, store):
    # --cite: merge prompts ask for [n]; the test server cites the <summary n> each sentence comes from. The
    # citations become supports of the node they name, the final summary leaves them out, and the answers are
    # cached apart from the plain run's (another prompt version).
    client = _client(moonshot_server)
    doc = generated_document(chapters=60)
    plain = await _engine(client, store, length="short").summarise(doc)
    cited = await _engine(client, store, length="short", cite=True).summarise(doc)
    await client.aclose()
    assert len(cited.levels) >= 2 and cited.usage.cached_calls == len(cited.levels[0])  # the maps are shared
    assert not re.search(r"\[\d+\]", cited.final) and not re.search(r"\[\d+\]", plain.final)
    final = cited.levels[-1][0]
    assert re.search(r"\[\d+\]", final.text)
    named = 0
    for link in final.sentences:
        sentence = final.text[link.span[0] : link.span[1]]
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
        chosen = {s.node for s in link.supports if s.cited}
        assert chosen == {final.inputs[n - 1] for n in numbers if n <= len(final.inputs)}
        named += bool(chosen)
    assert named >= 2
    from pipeline.settings import resolve_settings

    versions = resolve_settings(cite=True)
    assert versions.prompt_version("reduce").endswith("+cite-v1") and "cite" not in versions.prompt_version(
        "map"
    )


def _doc(text: str, language: str = "en") -> Document:
    return Document(path=Path("x.txt"), text=text, title="x", language=language)


def test_an_extract_that_runs_sentences_together_is_traced_to_each_of_them():
    # Headings, contents lines and references end without a full stop: an extract joining them reads as one
    # sentence. Each piece is its own support, in order (of a repeated line, a copy in that order), the sources
    # hold every piece, and pieces with only whitespace between them are one source.
    doc = _doc(
        "Contents\n\nThe Rabbit Sends in a Little Bill\n\nAdvice from a Caterpillar\n\n"
        "[Text] CSS Text Level 3. Elika J. Etemad, et al.\n\n"
        "[Text-2011] CSS Text Level 3 (2011). Elika J. Etemad, et al. 12 April 2011.\n\n"
        "[Modes] CSS Writing Modes. Elika J. Etemad, et al.\n\n"
        "[Modes-2011] CSS Writing Modes (2011). Elika J. Etemad, et al. 28 April 2011.\n"
    )
    summary = (
        "The Rabbit Sends in a Little Bill Advice from a Caterpillar "
        "Elika J. Etemad, et al. Elika J. Etemad, et al. 28 April 2011."
    )
    from pipeline.provenance import link_level0

    links = link_level0(summary, doc.text, 0, doc)
    assert len(links) == 1
    texts = [s.text for s in links[0].supports]
    assert texts == [
        "The Rabbit Sends in a Little Bill",
        "Advice from a Caterpillar",
        "Elika J. Etemad, et al.",
        "Elika J. Etemad, et al. 28 April 2011.",
    ]
    assert [s.span for s in links[0].supports] == sorted(s.span for s in links[0].supports)  # in order
    assert len(links[0].sources) == 3  # the two headings are one passage
    held = "".join(_flat(doc.text[s.start : s.end]) for s in links[0].sources)
    assert all(_flat(t) in held for t in texts)


def test_a_sentence_without_content_words_still_reaches_its_source():
    # "Soon." as a line of dialogue, a lone initial: nothing for the word cover, but the text is in the source.
    doc = _doc("他问：“还要多久？”\n\n“快了。”\n\n他们继续赶路，天色渐渐暗了下来。", language="zh")
    from pipeline.provenance import link_level0

    links = link_level0("“快了。”他们继续赶路。", doc.text, 0, doc)
    assert [s.text for s in links[0].supports] == ["“快了。”"]
    assert links[1].supports and "继续赶路" in links[1].supports[0].text
    english = _doc("Who wrote it? In this house, nobody.\n\nThe letters were burnt in the spring.")
    links = link_level0("In this.", english.text, 0, english)
    assert [s.text for s in links[0].supports] == ["In this house, nobody."]


def test_a_sentence_that_gathers_many_markers_reaches_each_of_them():
    # A summary may put all of its chunk's markers in one sentence: each reaches the passage that holds it,
    # past the usual number of supports.
    text = "".join(f"⟦C{k:04d}⟧ The keeper climbed stair number {k} at dusk.\n\n" for k in range(1, 8))
    doc = _doc(
        text + "The ships had lamps. The ropes held gulls. The waves brought storms. The bells rang for nets."
    )
    from pipeline.provenance import MAX_SUPPORTS, link_level0

    summary = (
        " ".join(f"⟦C{k:04d}⟧" for k in range(1, 8))
        + " Ships, lamps, ropes, gulls, waves, storms, bells, nets."
    )
    (link,) = link_level0(summary, doc.text, 0, doc)
    assert len(link.supports) > MAX_SUPPORTS
    for k in range(1, 8):
        marker = f"⟦C{k:04d}⟧"
        assert any(marker in doc.text[s.start : s.end] for s in link.sources), marker


def test_a_source_passage_names_its_own_section():
    from pipeline.documents.model import Section
    from pipeline.provenance import link_level0

    text = "Chapter 1\n\nThe harbour froze in January.\n\nChapter 2\n\nThe ferry stopped running in March."
    second = text.index("Chapter 2")
    doc = replace(
        _doc(text),
        sections=(Section("Chapter 1", 0, second, 1), Section("Chapter 2", second, len(text), 1)),
    )
    links = link_level0("The ferry stopped in March. The harbour froze.", doc.text, 0, doc)
    assert [s.section for link in links for s in link.supports] == ["Chapter 2", "Chapter 1"]
    assert links[0].as_dict()["supports"][0]["section"] == "Chapter 2"


def test_a_sentence_a_page_break_cuts_is_one_passage_on_both_pages():
    # A PDF's text layer ends a page mid-sentence; the pages are joined by a blank line, which alone would end
    # the sentence. The passage is the whole sentence, on both pages; a page that ends a sentence stays apart.
    first = "The board met in May. The proposal would add erroneous readings as a"
    second = "potential cause of the failure. Inspections follow.\n\nChapter 2 begins here."
    text = f"{first}\n\n{second}"
    doc = replace(_doc(text), pages=(Page(1, 0, len(first)), Page(2, len(first) + 2, len(text))))
    from pipeline.provenance import link_level0

    links = link_level0(
        "Erroneous readings are a potential cause of the failure. Inspections follow.", doc.text, 0, doc
    )
    (cause,) = links[0].supports
    assert cause.pages == (1, 2) and " ".join(cause.text.split()) == (
        "The proposal would add erroneous readings as a potential cause of the failure."
    )
    assert [s.pages for s in links[1].supports] == [(2, 2)]
    chinese = "董事会五月开会，会上提出把错误读数列为"
    rest = "故障的可能原因之一。随后进行检查。"
    zh = replace(
        _doc(f"{chinese}\n\n{rest}", language="zh"),
        pages=(Page(1, 0, len(chinese)), Page(2, len(chinese) + 2, len(chinese) + 2 + len(rest))),
    )
    (link, _) = link_level0("错误读数是故障的可能原因。随后检查。", zh.text, 0, zh)
    assert [s.pages for s in link.supports] == [(1, 2)]
