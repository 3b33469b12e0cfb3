"""Chunking guarantees: round trip, budget, split preference, balance, sections, pages; and on real books."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from pipeline.chunking import Chunk, SpanMemo, chunk_document
from pipeline.config import ModelSpec, load_catalog
from pipeline.documents.model import Document, Page, Section
from pipeline.errors import ChunkingError, ConfigError, EmptyDocumentError
from pipeline.prompt_room import PromptRoom, chunk_room
from pipeline.settings import resolve_settings
from pipeline.tokens import TiktokenCounter, calibrated


@dataclass(frozen=True)
class CharCounter:
    """One token per character: makes budgets exact in tiny examples."""

    additive_at_line_breaks = False  # JoinCostCounter below is not additive anywhere

    def count(self, text: str) -> int:
        return len(text)

    def encode(self, text: str) -> list[int]:
        return [ord(ch) for ch in text]

    def decode(self, tokens: list[int]) -> str:
        return "".join(chr(t) for t in tokens)


@dataclass(frozen=True)
class JoinCostCounter(CharCounter):
    """Characters, plus ``penalty`` for any text over 30 characters: joined units count more than their parts."""

    penalty: int = 10

    def count(self, text: str) -> int:
        return len(text) + (self.penalty if len(text) > 30 else 0)


def make_doc(
    text: str, sections: list[tuple[str, int, int]] = (), pages: list[tuple[int, int, int]] = ()
) -> Document:
    return Document(
        path=Path("test.txt"),
        text=text,
        title="Test",
        language="en",
        sections=tuple(Section(t, a, b) for t, a, b in sections),
        pages=tuple(Page(n, a, b) for n, a, b in pages),
    )


def check_guarantees(doc: Document, chunks: list[Chunk], counter, limit: int) -> None:
    assert "".join(c.text for c in chunks) == doc.text
    assert chunks[0].start == 0 and chunks[-1].end == len(doc.text)
    for i, c in enumerate(chunks):
        assert c.index == i
        assert c.text == doc.text[c.start : c.end]
        assert c.token_count == counter.count(c.text)
        assert c.token_count <= limit
        if i:
            assert chunks[i - 1].end == c.start


def sectioned(*bodies: str) -> Document:
    """A document whose sections are the given texts, titled A, B, C, ..."""
    text = "".join(bodies)
    spans, pos = [], 0
    for i, body in enumerate(bodies):
        spans.append((chr(ord("A") + i), pos, pos + len(body)))
        pos += len(body)
    return make_doc(text, spans)


# --- the budget -----------------------------------------------------------------------------------------


def test_budget_for_moonshot_8k_defaults_is_derived_from_the_model():
    settings = resolve_settings(model="moonshot-v1-8k", context_strategy="lagged")
    model = load_catalog().model("moonshot-v1-8k")
    budget = chunk_room(model, settings)
    assert budget.available_tokens == 8192 - 220 - 600 - 256 == 7116
    # One carried summary (asked for 600 / PRIOR_HEADROOM = 200 tokens) fits under the 20 % cap (1423).
    assert budget.carried_context_tokens == min(int(0.20 * 7116), 600 // 3) == 200
    assert budget.input_tokens == 7116 - 200 == 6916
    assert budget.max_local_tokens == 6287  # 6916 / 1.10, rounded down
    small = chunk_room(load_catalog().model("moonshot-v1-8k"), replace(settings, chunk_output_tokens=3000))
    assert small.carried_context_tokens == int(0.20 * small.available_tokens)  # the share caps it
    assert calibrated(model, budget.max_local_tokens) <= budget.input_tokens
    assert calibrated(model, budget.max_local_tokens + 1) > budget.input_tokens


def test_budget_without_context_keeps_no_room_for_it():
    settings = resolve_settings(model="moonshot-v1-32k", context_strategy="none")
    budget = chunk_room(load_catalog().model("moonshot-v1-32k"), settings)
    assert budget.carried_context_tokens == 0
    assert budget.input_tokens == 32768 - 220 - 600 - 512


@pytest.mark.parametrize("calibration", [1.0, 1.05, 1.1, 1.15, 1.333])
def test_local_budget_uses_the_same_rounding_as_calibrated(calibration):
    model = ModelSpec(name="m", provider="p", context_tokens=9000, calibration=calibration)
    settings = resolve_settings()
    budget = chunk_room(model, settings)
    assert (
        calibrated(model, budget.max_local_tokens)
        <= budget.input_tokens
        < calibrated(model, budget.max_local_tokens + 1)
    )


def test_budget_with_output_recomputes_the_input():
    budget = chunk_room(load_catalog().model("moonshot-v1-8k"), resolve_settings(context_strategy="none"))
    assert budget.with_output(1500).input_tokens == budget.input_tokens - 900


def test_a_context_too_small_for_overhead_and_output_is_a_config_error():
    tiny = ModelSpec(name="tiny", provider="local", context_tokens=1024, safety_margin_tokens=256)
    with pytest.raises(ConfigError, match="tiny"):
        chunk_room(tiny, resolve_settings())


# --- tiny exact examples --------------------------------------------------------------------------------


def test_sections_that_fit_stay_whole_and_keep_their_titles():
    doc = sectioned("a" * 39 + "\n", "b" * 39 + "\n", "c" * 39 + "\n")
    chunks = chunk_document(doc, CharCounter(), 50)
    check_guarantees(doc, chunks, CharCounter(), 50)
    assert [c.text for c in chunks] == ["a" * 39 + "\n", "b" * 39 + "\n", "c" * 39 + "\n"]
    assert [c.section_title for c in chunks] == ["A", "B", "C"]
    assert [c.section_index for c in chunks] == [0, 1, 2]


def test_small_sections_are_packed_evenly_and_titled_first_to_last():
    doc = sectioned(*[f"{i}" * 9 + "\n" for i in range(4)])  # four 10-token sections
    chunks = chunk_document(doc, CharCounter(), 25)
    check_guarantees(doc, chunks, CharCounter(), 25)
    assert [c.token_count for c in chunks] == [20, 20]  # not 20 + 20 would be the same; never 25 + 15
    assert [c.section_title for c in chunks] == ["A … B", "C … D"]
    assert [c.section_index for c in chunks] == [0, 2]


def test_packing_prefers_even_chunks_over_a_tiny_tail():
    doc = sectioned(*["x" * 9 + "\n"] * 5)  # 5 x 10 tokens, budget 40: 2 chunks, 30 + 20 (not 40 + 10)
    chunks = chunk_document(doc, CharCounter(), 40)
    assert sorted(c.token_count for c in chunks) == [20, 30]


def test_text_outside_sections_is_untitled():
    text = "Preface words.\n\n" + "Chapter body.\n"
    doc = make_doc(text, [("Chapter 1", 16, len(text))])
    chunks = chunk_document(doc, CharCounter(), 16)
    check_guarantees(doc, chunks, CharCounter(), 16)
    assert [(c.section_title, c.section_index) for c in chunks] == [("", -1), ("Chapter 1", 0)]


def test_a_document_without_sections_is_one_untitled_part():
    doc = make_doc("One.\n\nTwo.\n")
    (chunk,) = chunk_document(doc, CharCounter(), 100)
    assert (chunk.section_title, chunk.section_index, chunk.text) == ("", -1, doc.text)


def test_a_long_section_is_cut_at_paragraphs_into_even_pieces():
    paragraphs = [f"Paragraph {i} says a thing.\n\n" for i in range(12)]  # 28 or 29 chars each
    doc = sectioned("".join(paragraphs))
    total = len(doc.text)
    chunks = chunk_document(doc, CharCounter(), 150)
    check_guarantees(doc, chunks, CharCounter(), 150)
    assert len(chunks) == math.ceil(total / 150) == 3
    assert all(c.text.endswith("\n\n") for c in chunks)  # every cut at a paragraph boundary
    assert max(c.token_count for c in chunks) - min(c.token_count for c in chunks) <= 30  # one paragraph
    assert all(c.section_title == "A" for c in chunks)


def test_no_tiny_tail_when_a_section_is_just_over_two_budgets():
    paragraphs = ["w" * 9 + "\n" for _ in range(21)]  # 210 tokens in 10-token paragraphs, budget 100
    doc = sectioned("".join(paragraphs))
    chunks = chunk_document(doc, CharCounter(), 100)
    check_guarantees(doc, chunks, CharCounter(), 100)
    assert [c.token_count for c in chunks] == [70, 70, 70]


def test_long_paragraphs_are_cut_at_english_sentence_ends():
    sentences = [f"Sentence number {i} ends here. " for i in range(10)]  # 30-31 chars each
    doc = sectioned("".join(sentences).rstrip() + "\n")
    chunks = chunk_document(doc, CharCounter(), 120)
    check_guarantees(doc, chunks, CharCounter(), 120)
    assert len(chunks) == 3
    for c in chunks[:-1]:
        assert c.text.endswith("here. ")


def test_titles_and_initials_are_not_sentence_ends():
    text = "I saw Mr. Darcy and J. Smith today. " * 6
    doc = sectioned(text)
    chunks = chunk_document(doc, CharCounter(), 80)
    check_guarantees(doc, chunks, CharCounter(), 80)
    for c in chunks[:-1]:
        assert c.text.endswith("today. ")


def test_cjk_sentences_are_cut_after_full_stops_and_closing_quotes():
    sentence = "他說：「我們明天去山上看花。」"  # 15 chars, ends with 。」
    other = "天氣很好；大家都很高興！"
    doc = sectioned((sentence + other) * 6 + "\n")
    chunks = chunk_document(doc, CharCounter(), 60)
    check_guarantees(doc, chunks, CharCounter(), 60)
    assert len(chunks) >= 3
    for c in chunks[:-1]:
        assert c.text[-1] in "」；！", c.text


def test_an_over_long_sentence_is_hard_cut_and_nothing_else_is():
    words = " ".join(f"word{i}" for i in range(60))  # ~400 characters, no sentence end
    doc = sectioned("Short one. " + words + ". Another short one.\n")
    chunks = chunk_document(doc, CharCounter(), 100)
    check_guarantees(doc, chunks, CharCounter(), 100)
    assert len(chunks) == math.ceil(len(doc.text) / 100)
    # Hard cuts land after a space, not inside a word.
    for c in chunks[:-1]:
        assert c.text[-1] == " "


def test_an_over_long_sentence_of_lines_is_cut_at_line_breaks():
    doc = sectioned(
        "".join(f"line {i:02d} of a verse\n" for i in range(20))
    )  # 20 x 19 chars, no sentence end
    chunks = chunk_document(doc, CharCounter(), 100)
    check_guarantees(doc, chunks, CharCounter(), 100)
    assert len(chunks) == 4
    assert all(c.text.endswith("verse\n") for c in chunks)


def test_hard_cut_of_unbroken_cjk_text_with_tiktoken():
    counter = TiktokenCounter()
    doc = sectioned("山" * 3000)
    chunks = chunk_document(doc, counter, 450)
    check_guarantees(doc, chunks, counter, 450)
    assert len(chunks) == math.ceil(counter.count(doc.text) / 450) == 7
    assert min(c.token_count for c in chunks) >= 0.8 * 3000 / 7


def test_pages_are_recorded_for_each_chunk():
    pages = [(1, 0, 100), (2, 100, 200), (3, 200, 300)]
    doc = make_doc(("x" * 48 + "\n\n") * 6, pages=pages)  # 300 chars in 50-char paragraphs
    chunks = chunk_document(doc, CharCounter(), 150)
    check_guarantees(doc, chunks, CharCounter(), 150)
    assert [c.pages for c in chunks] == [(1, 2), (2, 3)]


def test_chunks_whose_real_count_overflows_are_split_again():
    counter = JoinCostCounter()  # units up to 30 chars count exactly; joined text costs 10 more
    doc = sectioned("".join(f"P{i:02d} " + "z" * 20 + "\n\n" for i in range(10)))  # 10 x 26-char paragraphs
    chunks = chunk_document(doc, counter, 60)
    check_guarantees(doc, chunks, counter, 60)
    # Two paragraphs (52 chars) would fit by their sum but count 62 joined: every chunk is one paragraph.
    assert len(chunks) == 10


def test_overflow_resplit_copes_with_a_unit_near_the_budget():
    counter = JoinCostCounter(penalty=40)  # the shrunk budget would be smaller than the 30-token unit
    doc = sectioned("a" * 28 + "\n\n", "b" * 9 + "\n\n", "c" * 9 + "\n\n")  # 30 + 11 + 11 chars
    chunks = chunk_document(doc, counter, 45)
    check_guarantees(doc, chunks, counter, 45)
    assert [c.section_title for c in chunks] == ["A", "B … C"]


def test_a_token_budget_may_be_passed_instead_of_a_number():
    settings = resolve_settings()
    budget = chunk_room(load_catalog().model(settings.model), settings)
    doc = sectioned("Hello there. " * 50)
    (chunk,) = chunk_document(doc, TiktokenCounter(), budget)
    assert chunk.token_count <= budget.max_local_tokens


def test_realistic_english_with_tiktoken_stays_within_budget():
    counter = TiktokenCounter()
    paragraph = "It is a truth universally acknowledged, that a single man in possession of a good fortune. "
    bodies = [f"Chapter {i}\n\n" + (paragraph * (3 + i % 5) + "\n\n") * (4 + i % 7) for i in range(20)]
    doc = sectioned(*bodies)
    chunks = chunk_document(doc, counter, 700)
    check_guarantees(doc, chunks, counter, 700)
    assert min(c.token_count for c in chunks) > 700 * 0.25


def test_empty_document_and_impossible_budget_are_errors():
    with pytest.raises(EmptyDocumentError):
        chunk_document(make_doc(" \n\n "), CharCounter(), 100)
    with pytest.raises(ChunkingError):
        chunk_document(make_doc("text"), CharCounter(), 0)


def test_chunk_as_dict_omits_text_unless_asked():
    (chunk,) = chunk_document(make_doc("Hello.\n", pages=[(4, 0, 7)]), CharCounter(), 10)
    assert chunk.as_dict() == {
        "index": 0,
        "start": 0,
        "end": 7,
        "token_count": 7,
        "section_title": "",
        "section_index": -1,
        "pages": [4, 4],
    }
    assert chunk.as_dict(with_text=True)["text"] == "Hello.\n"


def test_token_budget_as_dict_shows_the_derivation():
    data = PromptRoom(
        context_tokens=1000,
        prompt_overhead_tokens=100,
        max_output_tokens=200,
        safety_margin_tokens=50,
        context_share=0.5,
        calibration=1.0,
    ).as_dict()
    # The share would allow 325; one carried summary is asked for 200 / PRIOR_HEADROOM = 66 tokens.
    assert (data["available_tokens"], data["carried_context_tokens"], data["input_tokens"]) == (650, 66, 584)
    assert data["max_local_tokens"] == 584


# --- the real corpus ------------------------------------------------------------------------------------

BOOKS = ["en_alice_in_wonderland_pg11.txt", "en_pride_and_prejudice_pg1342.txt", "zh_xiyouji_pg23962.txt"]
OTHERS = [
    "pdfs/en_report_federal_register_2020-17221_3col.pdf",
    "pdfs/en_report_dmca_summary_us_copyright_office_1998.pdf",
    "pdfs/en_paper_dpr_2col_arxiv2004.04906.pdf",
    "pdfs/cjk_zh_elegantbook_manual_15p.pdf",
    "epub/epub30_spec_idpf_sample.epub",
]


@pytest.mark.corpus
@pytest.mark.parametrize("name", [f"books/{b}" for b in BOOKS] + OTHERS)
def test_corpus_documents_round_trip_within_budget(corpus, name):
    from pipeline.documents import load_document

    doc = load_document(corpus / name)
    settings = resolve_settings()
    model = load_catalog().model(settings.model)
    budget = chunk_room(model, settings)
    counter = TiktokenCounter(model.encoding)
    chunks = chunk_document(doc, counter, budget)
    limit = budget.max_local_tokens
    check_guarantees(doc, chunks, counter, limit)
    if doc.pages:
        assert all(c.pages is not None for c in chunks)
    if len(chunks) > 2:
        # Balanced: no chunk is a sliver of the budget, and the typical chunk is well filled.
        sizes = [c.token_count for c in chunks]
        assert min(sizes) >= 0.2 * limit or len(doc.sections) > len(chunks) / 2
        assert statistics.median(sizes) >= 0.5 * limit


@pytest.mark.corpus
def test_corpus_pdf_chunks_record_page_ranges(corpus):
    from pipeline.documents import load_document

    doc = load_document(corpus / "pdfs/en_report_federal_register_2020-17221_3col.pdf")
    chunks = chunk_document(doc, TiktokenCounter(), 2000)
    assert chunks[0].pages[0] == 1 and chunks[-1].pages[1] == len(doc.pages)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.pages[1] <= b.pages[0] + 1 and a.pages[0] <= b.pages[0]


@pytest.mark.corpus
def test_xiyouji_splits_each_chapter_evenly(corpus):
    from pipeline.documents import load_document

    doc = load_document(corpus / "books/zh_xiyouji_pg23962.txt")
    settings = replace(resolve_settings(), context_strategy="none")
    budget = chunk_room(load_catalog().model(settings.model), settings)
    chunks = chunk_document(doc, TiktokenCounter(), budget)
    by_section: dict[int, list[int]] = {}
    for c in chunks:
        by_section.setdefault(c.section_index, []).append(c.token_count)
    for sizes in by_section.values():
        if len(sizes) > 1:
            assert max(sizes) - min(sizes) <= 0.35 * budget.max_local_tokens, sizes


@dataclass(frozen=True)
class TallyCounter(CharCounter):
    """Characters, remembering every text it was asked to count."""

    asked: list[str] = field(default_factory=list)

    def count(self, text: str) -> int:
        self.asked.append(text)
        return len(text)


def test_budgets_tried_on_one_document_share_its_counts_and_its_text() -> None:
    text = "".join(f"Sentence {i} is here. And one more. Then a third one.\n\n" for i in range(40))
    doc = make_doc(text, sections=[("A", 0, len(text) // 2), ("B", len(text) // 2, len(text))])
    counter = TallyCounter()
    memo = SpanMemo(doc.text, counter)
    full = chunk_document(doc, counter, 200, memo=memo)
    asked = len(counter.asked)
    again = chunk_document(doc, counter, 200, memo=memo)
    assert len(counter.asked) == asked  # the same budget again counts nothing new
    assert again == full
    assert all(c.source is doc.text for c in again)  # spans of the one text: no copy per chunk or per budget
    check_guarantees(doc, full, counter, 200)
    smaller = chunk_document(doc, counter, 120, memo=memo)
    assert [c.token_count for c in smaller] == [c.end - c.start for c in smaller]
    with pytest.raises(ValueError, match="another text"):
        chunk_document(make_doc("Other text."), counter, 200, memo=memo)
