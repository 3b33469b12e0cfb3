"""ROUGE-1/2/L against hand-computed values (English words, Chinese characters) and rouge-score's own tokenizer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rouge_score.tokenizers import DefaultTokenizer

from pipeline.evaluation.rouge import METRICS, Rouge, RougeScores, RougeTokenizer

REPO = Path(__file__).resolve().parents[1]
_CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


@pytest.fixture(scope="module")
def rouge() -> Rouge:
    return Rouge()


def test_tokens_are_lower_cased_stemmed_words_without_punctuation() -> None:
    tok = RougeTokenizer()
    # "running"/"runs" -> "run" (Porter); words of <= 3 letters are never stemmed ("was", "the").
    assert tok.tokenize("The dog was RUNNING; it runs!") == ["the", "dog", "was", "run", "it", "run"]
    assert RougeTokenizer(stem=False).tokenize("The dog was RUNNING; it runs!") == [
        "the", "dog", "was", "running", "it", "runs",
    ]  # fmt: skip
    # One token per CJK character; ASCII words and digits inside Chinese stay whole.
    assert tok.tokenize("我喜欢Python，2024年。") == ["我", "喜", "欢", "python", "2024", "年"]


def test_english_pair_with_stemming(rouge: Rouge) -> None:
    # candidate "The cat is running."  -> the cat is run   (4 tokens)
    # reference "The cats run!"        -> the cat run      (3 tokens; "cats" -> "cat")
    # R1: overlap {the, cat, run} = 3 -> P = 3/4, R = 3/3, F = 6/7
    # R2: candidate bigrams (the cat)(cat is)(is run), reference (the cat)(cat run): 1 shared -> P 1/3, R 1/2, F 2/5
    # RL: LCS "the cat run" = 3 -> P 3/4, R 3/3, F 6/7
    s = rouge.score("The cat is running.", ["The cats run!"])
    assert s.rouge1 == pytest.approx(6 / 7)
    assert s.rouge2 == pytest.approx(2 / 5)
    assert s.rougeL == pytest.approx(6 / 7)


def test_runs_and_running_match_one_stem(rouge: Rouge) -> None:
    # "She runs home" vs "she running home": after stemming both are "she run home": all 1.
    assert rouge.score("She runs home", "she running home") == RougeScores(1.0, 1.0, 1.0)
    # Without the stemmer only "she" and "home" match: P = R = 2/3; no shared bigram; LCS "she home" = 2.
    s = Rouge(stem=False).score("She runs home", "she running home")
    assert (s.rouge1, s.rouge2, s.rougeL) == pytest.approx((2 / 3, 0.0, 2 / 3))


def test_case_and_punctuation_do_not_matter(rouge: Rouge) -> None:
    assert rouge.score("HELLO, World!!!", ["hello world"]) == RougeScores(1.0, 1.0, 1.0)
    assert rouge.score("«Hello» — (world)...", ["Hello world"]) == RougeScores(1.0, 1.0, 1.0)


def test_english_word_order_separates_rouge1_from_rouge2_and_l(rouge: Rouge) -> None:
    # candidate "a b c d" vs reference "d c b a": same words (R1 = 1), no shared bigram (R2 = 0),
    # LCS of length 1 -> P = R = 1/4, F = 1/4.
    s = rouge.score("a b c d", "d c b a")
    assert (s.rouge1, s.rouge2, s.rougeL) == pytest.approx((1.0, 0.0, 0.25))


def test_chinese_pair_one_token_per_character(rouge: Rouge) -> None:
    # candidate 猫坐在垫子上 (6 chars) vs reference 猫坐在地上 (5 chars)
    # R1: shared 猫 坐 在 上 = 4 -> P 4/6, R 4/5, F = 8/11
    # R2: 猫坐 坐在 在垫 垫子 子上 vs 猫坐 坐在 在地 地上 -> 2 shared, P 2/5, R 2/4, F = 4/9
    # RL: LCS 猫坐在上 = 4 -> 8/11
    s = rouge.score("猫坐在垫子上", ["猫坐在地上"])
    assert s.rouge1 == pytest.approx(8 / 11)
    assert s.rouge1 == pytest.approx(f1(4 / 6, 4 / 5))
    assert s.rouge2 == pytest.approx(4 / 9)
    assert s.rougeL == pytest.approx(8 / 11)


def test_chinese_punctuation_and_spaces_are_ignored(rouge: Rouge) -> None:
    assert rouge.score("猫 坐在，垫子上。", "「猫坐在垫子上」") == RougeScores(1.0, 1.0, 1.0)


def test_mixed_chinese_english(rouge: Rouge) -> None:
    # candidate 我喜欢Python编程 -> 我 喜 欢 python 编 程 (6); reference 我喜欢 python 语言 -> 我 喜 欢 python 语 言 (6)
    # R1: 4 shared -> P = R = 4/6, F = 2/3
    # R2: 我喜 喜欢 欢python python编 编程 vs 我喜 喜欢 欢python python语 语言: 3 shared -> P = R = 3/5
    # RL: LCS 我 喜 欢 python = 4 -> 2/3
    s = rouge.score("我喜欢Python编程", "我喜欢 python 语言")
    assert (s.rouge1, s.rouge2, s.rougeL) == pytest.approx((2 / 3, 3 / 5, 2 / 3))


def test_best_reference_is_chosen_per_metric_independently(rouge: Rouge) -> None:
    # candidate "a b c d"
    # ref1 "d c b a": R1 1.0, R2 0, RL 1/4
    # ref2 "a b x y": R1 2 shared -> 1/2; R2 (a b) shared -> P 1/3, R 1/3 -> 1/3; RL LCS "a b" -> 1/2
    # best per metric: R1 from ref1, R2 and RL from ref2 — no single reference gives all three.
    s = rouge.score("a b c d", ["d c b a", "a b x y"])
    assert (s.rouge1, s.rouge2, s.rougeL) == pytest.approx((1.0, 1 / 3, 0.5))
    assert rouge.score("a b c d", ("a b x y", "d c b a")) == s  # order of references does not matter
    assert s.as_dict() == {"rouge1": s.rouge1, "rouge2": s.rouge2, "rougeL": s.rougeL}
    assert tuple(s.as_dict()) == METRICS


def test_a_string_is_one_reference_not_its_characters(rouge: Rouge) -> None:
    # As characters, "the cat" would be references "t", "h", "e", ...: none shares a token with the candidate.
    assert rouge.score("the cat", "the cat") == RougeScores(1.0, 1.0, 1.0)
    assert rouge.score("The cat is running.", "The cats run!") == rouge.score("The cat is running.", ["The cats run!"])


def test_empty_candidate_scores_zero(rouge: Rouge) -> None:
    assert rouge.score("", ["the cat sat"]) == RougeScores(0.0, 0.0, 0.0)
    assert rouge.score("...", ["the cat sat"]) == RougeScores(0.0, 0.0, 0.0)


@pytest.mark.parametrize("references", [[], (), ""])
def test_no_references_is_an_error(rouge: Rouge, references: object) -> None:
    if references == "":
        # An empty string is one (empty) reference, so it scores 0 rather than raising.
        assert rouge.score("the cat", references) == RougeScores(0.0, 0.0, 0.0)  # type: ignore[arg-type]
        return
    with pytest.raises(ValueError, match="at least one reference"):
        rouge.score("the cat", references)  # type: ignore[arg-type]


def test_length_is_words_for_english_and_characters_for_chinese(rouge: Rouge) -> None:
    assert rouge.length("The cats, running home.") == 4
    assert rouge.length("猫坐在垫子上。") == 6
    assert rouge.length("我喜欢Python编程") == 6


# --- English tokens identical to rouge-score's DefaultTokenizer(use_stemmer=True) ---------------------------

_PARAGRAPHS = [
    "The dying man was lying about the skies; they said he had always been generous, and logically so.",
    "On Tuesday and Thursday the boys went away down the causeway, eyes grey with news of the survey.",
    "Running, runs, ran: the runner's 3 dogs (aged 10, 12 and 14) conditionally agreed to 2,500 meetings.",
    "Relational databases, e.g. SQLite 3.45, normalise tables; the optimizer's heuristics are hopefully sane.",
    "Naïve café owners in Zürich — “quoted” words, hyphen-ated terms & URLs like https://example.com/a_b?x=1.",
    "Caresses, ponies, ties, cats; feed, agreed, plastered, motoring, sing; happy, sky, flies, dies, mules.",
]


def _sample_markdown() -> list[Path]:
    return sorted((REPO / "data").glob("*.md"))


def _without_cjk(text: str) -> str:
    # data/README.md names the Chinese sample; rouge-score drops CJK by design, so compare the English only.
    return _CJK.sub(" ", text)


@pytest.mark.parametrize("text", _PARAGRAPHS, ids=[p[:20] for p in _PARAGRAPHS])
def test_tokens_equal_rouge_score_default_tokenizer_on_paragraphs(text: str) -> None:
    assert RougeTokenizer().tokenize(text) == DefaultTokenizer(use_stemmer=True).tokenize(text)


@pytest.mark.parametrize("text", _PARAGRAPHS, ids=[p[:20] for p in _PARAGRAPHS])
def test_unstemmed_tokens_equal_rouge_score_without_stemmer(text: str) -> None:
    assert RougeTokenizer(stem=False).tokenize(text) == DefaultTokenizer(use_stemmer=False).tokenize(text)


def test_tokens_equal_rouge_score_default_tokenizer_on_the_sample_story() -> None:
    paths = _sample_markdown()
    assert REPO / "data" / "the_lighthouse_keeper.md" in paths, "the English sample story is missing"
    ours, theirs = RougeTokenizer(), DefaultTokenizer(use_stemmer=True)
    for path in paths:
        text = _without_cjk(path.read_text(encoding="utf-8"))
        mine, google = ours.tokenize(text), theirs.tokenize(text)
        diffs = sorted({(g, m) for g, m in zip(google, mine, strict=False) if g != m})
        assert len(mine) == len(google), path.name
        assert not diffs, f"{path.name}: (rouge-score, ours) differ on {diffs[:10]}"


def test_english_scores_equal_rouge_score_with_its_default_tokenizer() -> None:
    from rouge_score import rouge_scorer

    google = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    # "dying"/"dies", "lying"/"lies" and "skies"/"sky" share a stem only under rouge-score's (NLTK) Porter rules.
    candidate = "The dying man was lying under grey skies, always generous."
    reference = "A man dies; he lies under the grey sky, generously and always."
    expected = google.score(reference, candidate)
    got = Rouge().score(candidate, [reference])
    assert got.as_dict() == pytest.approx({m: expected[m].fmeasure for m in METRICS})
