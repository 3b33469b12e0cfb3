"""Baselines: the lead (first N words, or characters for Chinese) and classic TextRank within a length budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.evaluation.baselines import cut_to_units, lead, sentences_of, textrank, textrank_scores
from pipeline.evaluation.rouge import Rouge, RougeTokenizer
from pipeline.lengths import measure

REPO = Path(__file__).resolve().parents[1]

# S3 shares a content word with every other sentence (apples, rivers, stars); S4 shares none.
CENTRAL_DOC = (
    "Apples grow in orchards near the town. Rivers flow quietly to the sea. "
    "Bright stars shine over the hills at night.\n"
    "Apples, rivers and stars appear in every season of the valley. Bread is baked on Mondays."
)
CENTRAL = "Apples, rivers and stars appear in every season of the valley."
ZH_DOC = "山里有一条小河。小河边住着一位老人。老人每天在小河边钓鱼，也在山里砍柴。山顶的云很白。"


@pytest.fixture(scope="module")
def rouge() -> Rouge:
    return Rouge()


# --- cut_to_units and lead -----------------------------------------------------------------------------------


def test_cut_to_units_keeps_the_first_words_and_cuts_right_after_the_last() -> None:
    text = "  One two, three-four five. Six"
    # Words as --length counts them (whitespace-separated, "three-four" one), each kept whole.
    assert cut_to_units(text, 1) == "One"
    assert cut_to_units(text, 3) == "One two, three-four"
    assert cut_to_units(text, 4) == "One two, three-four five."
    assert cut_to_units(text, 5) == "One two, three-four five. Six"
    assert cut_to_units(text, 100) == "One two, three-four five. Six"  # shorter than asked: all of it
    assert cut_to_units(text, 0) == ""
    assert cut_to_units(text, -3) == ""
    assert cut_to_units("", 5) == ""


def test_cut_to_units_counts_chinese_characters() -> None:
    assert cut_to_units("猫坐在垫子上。狗在跑。", 3) == "猫坐在"
    assert cut_to_units("猫坐在垫子上。狗在跑。", 7) == "猫坐在垫子上。狗"  # as words: punctuation is none
    assert cut_to_units("猫坐在垫子上。狗在跑。", 7, "chars") == "猫坐在垫子上。"  # as characters: half of one
    assert cut_to_units("我用Python写代码", 3) == "我用Python"  # an ASCII word is one word


def test_lead_is_exactly_the_first_n_words(rouge: Rouge) -> None:
    text = "The  keeper\nwalked   up the stairs.\n\nHe lit the lamp at dusk, as always."
    assert lead(text, 5) == "The keeper walked up the"  # whitespace runs become single spaces
    assert lead(text, 9) == "The keeper walked up the stairs. He lit the"
    for n in (1, 4, 9, 12):
        assert rouge.length(lead(text, n)) == n == measure(lead(text, n), "words")
    assert lead(text, 1000) == " ".join(text.split())


def test_lead_is_exactly_the_first_n_characters_of_chinese(rouge: Rouge) -> None:
    assert lead(ZH_DOC, 4) == "山里有一"
    assert lead(ZH_DOC, 8) == "山里有一条小河。小"
    assert lead(ZH_DOC, 8).replace("。", "") == ZH_DOC.replace("。", "")[:8]
    for n in (1, 7, 15, 20):
        assert rouge.length(lead(ZH_DOC, n)) == n


def test_lead_on_the_chinese_sample(rouge: Rouge) -> None:
    text = (REPO / "data" / "zh_shanju_ji.txt").read_text(encoding="utf-8")
    head = lead(text, 200)
    assert rouge.length(head) == 200
    assert text.lstrip().startswith(head)  # Chinese keeps the text as it is
    assert 199 <= measure(lead(text, 200, unit="chars"), "chars") <= 200


def test_lead_on_the_english_sample(rouge: Rouge) -> None:
    text = (REPO / "data" / "the_lighthouse_keeper.md").read_text(encoding="utf-8")
    head = lead(text, 150)
    assert measure(head, "words") == 150  # "#" and "##" are no words
    assert 150 <= len(head.split()) <= 155 and 150 <= rouge.length(head) <= 160
    assert " ".join(text.split()).startswith(head)


# --- TextRank ------------------------------------------------------------------------------------------------


def test_sentences_of_joins_broken_lines_within_a_paragraph() -> None:
    text = "First line\nstill the first sentence. Second one!\n\nNew paragraph without a full stop\n\n...\n"
    assert sentences_of(text) == [
        "First line still the first sentence.",
        "Second one!",
        "New paragraph without a full stop",
    ]


def test_textrank_picks_the_central_sentence() -> None:
    tok = RougeTokenizer()
    scores = textrank_scores(sentences_of(CENTRAL_DOC), tok)
    assert max(range(len(scores)), key=scores.__getitem__) == 3
    assert min(range(len(scores)), key=scores.__getitem__) == 4  # the unconnected sentence
    assert len(tok.tokenize(CENTRAL)) == 11
    assert textrank(CENTRAL_DOC, 11) == CENTRAL
    assert textrank(CENTRAL_DOC, 12) == CENTRAL


def test_textrank_returns_whole_sentences_in_document_order_within_the_budget() -> None:
    tok = RougeTokenizer()
    sentences = sentences_of(CENTRAL_DOC)
    # 11 (central) + 6 (the next best that fits) = 17; the chosen earlier sentence comes first.
    assert textrank(CENTRAL_DOC, 17) == "Rivers flow quietly to the sea. " + CENTRAL
    for budget in range(5, 45, 3):
        summary = textrank(CENTRAL_DOC, budget)
        chosen = [s for s in sentences if s in summary]
        assert " ".join(chosen) == summary, budget
        positions = [sentences.index(s) for s in chosen]
        assert positions == sorted(positions)
        assert len(tok.tokenize(summary)) <= budget
    assert textrank(CENTRAL_DOC, 1000) == " ".join(sentences)


def test_textrank_is_deterministic() -> None:
    text = (REPO / "data" / "the_lighthouse_keeper.md").read_text(encoding="utf-8")[:20000]
    first = textrank(text, 120)
    assert first
    assert all(textrank(text, 120) == first for _ in range(3))
    assert textrank(text, 120, RougeTokenizer()) == first
    assert measure(first, "words") <= 120


def test_textrank_on_chinese_joins_sentences_without_spaces() -> None:
    sentences = sentences_of(ZH_DOC)
    assert sentences == ["山里有一条小河。", "小河边住着一位老人。", "老人每天在小河边钓鱼，也在山里砍柴。", "山顶的云很白。"]
    summary = textrank(ZH_DOC, 30)
    assert " " not in summary
    assert len(RougeTokenizer().tokenize(summary)) <= 30
    chosen = [s for s in sentences if s in summary]
    assert "".join(chosen) == summary
    assert "老人每天在小河边钓鱼，也在山里砍柴。" in chosen  # it shares characters with every other sentence


def test_textrank_of_an_empty_text() -> None:
    assert textrank("", 50) == ""
    assert textrank("  \n\n \t", 50) == ""
    assert textrank("... !!! ---", 50) == ""
    assert textrank_scores([], RougeTokenizer()) == []


def test_textrank_when_every_sentence_is_longer_than_the_budget() -> None:
    # Nothing fits whole: the best sentence, cut to the budget.
    assert textrank(CENTRAL_DOC, 3) == "Apples, rivers and"
    assert textrank(CENTRAL_DOC, 4) == "Apples, rivers and stars"
    assert textrank("One long sentence with many words in it.", 2) == "One long"
    assert textrank(ZH_DOC, 3) == "老人每"
    assert textrank(CENTRAL_DOC, 0) == ""
