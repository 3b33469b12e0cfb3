"""Carry-forward context: sources, lag, sentence-boundary cuts (English and CJK)."""

from __future__ import annotations

from pipeline.context import (
    bounded_context,
    context_source,
    effective_lag,
    tail_sentences,
)
from pipeline.sentences import sentence_spans
from pipeline.tokens import TiktokenCounter

COUNTER = TiktokenCounter()


def test_lagged_sources():
    assert not context_source(0, strategy="lagged", lag=3).carries
    assert context_source(1, strategy="lagged", lag=3).tail_of == 0
    assert context_source(2, strategy="lagged", lag=3).tail_of == 1
    src = context_source(3, strategy="lagged", lag=3)
    assert src.summary_of == 0 and src.tail_of is None
    assert context_source(7, strategy="lagged", lag=3).summary_of == 4
    assert context_source(2, strategy="lagged", lag=3).summary_of is None
    assert all(not context_source(i, strategy="none", lag=3).carries for i in range(10))


def test_effective_lag_never_below_concurrency():
    assert effective_lag(4, 8) == 8
    assert effective_lag(4, 1) == 4
    assert effective_lag(0, 0) == 1


def test_sentence_spans_tile_text_english_and_cjk():
    text = 'He said "Stop!" Then he left. Mr. Darcy\n\nNew para'
    spans = sentence_spans(text)
    assert "".join(text[a:b] for a, b in spans) == text
    zh = "話說天下大勢，分久必合。合久必分！周末七國分爭？並入於秦。"
    parts = [zh[a:b] for a, b in sentence_spans(zh)]
    assert parts == ["話說天下大勢，分久必合。", "合久必分！", "周末七國分爭？", "並入於秦。"]


def test_tail_cut_at_sentence_boundary_and_within_budget():
    text = " ".join(f"Sentence number {i} is here." for i in range(50))
    tail = tail_sentences(text, 40, COUNTER)
    assert COUNTER.count(tail) <= 40
    assert tail.startswith("Sentence number") and tail.endswith("49 is here.")
    assert len(tail) > 60  # takes as many whole sentences as fit
    assert tail_sentences("short.", 40, COUNTER) == "short."
    assert tail_sentences(text, 0, COUNTER) == ""


def test_tail_cut_cjk():
    zh = "".join(f"第{i}句話在這裡。" for i in range(60))
    tail = tail_sentences(zh, 30, COUNTER)
    assert COUNTER.count(tail) <= 30 and tail.startswith("第") and tail.endswith("。")


def test_overlong_last_sentence_cut_at_word_boundary():
    text = "word " * 200 + "end."
    tail = tail_sentences(text, 20, COUNTER)
    assert 0 < COUNTER.count(tail) <= 20 and tail.endswith("end.") and tail.startswith("word")


def test_bounded_context_picks_summary_or_tail():
    summaries = {0: "Summary zero. Second sentence."}
    inputs = {0: "Raw zero.", 1: "Raw one. Raw one end."}
    lagged = context_source(2, strategy="lagged", lag=2)
    assert bounded_context(lagged, summaries=summaries, inputs=inputs, max_tokens=100, counter=COUNTER) == (
        "Summary zero. Second sentence."
    )
    early = context_source(2, strategy="lagged", lag=4)
    assert bounded_context(early, summaries=summaries, inputs=inputs, max_tokens=100, counter=COUNTER) == (
        "Raw one. Raw one end."
    )
