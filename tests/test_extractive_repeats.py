"""The offline backend never gives the same sentence twice, even to fill a stated length."""

from __future__ import annotations

from pipeline.extractive import extract
from pipeline.extractive_select import choose
from pipeline.tokens import TiktokenCounter


def test_filling_a_stated_length_skips_exact_repeats():
    same = frozenset({"cafe", "cream"})
    other = frozenset({"harbour", "storm"})
    feats = [same, same, same, other]
    chosen = choose(
        [0, 1, 2, 3], [4.0, 3.0, 2.0, 1.0], [10, 10, 10, 10], [12, 12, 12, 12], feats,
        max_units=40, max_tokens=1000, stated=True, redundant=0.6,
    )
    assert chosen == {0, 3}


def test_a_document_that_repeats_itself_gets_each_sentence_once():
    source = " ".join(["The coffee is very good and so is the cream."] * 40 + ["A storm closed the harbour."])
    summary = extract(
        source, language="en", max_units=300, max_tokens=2000, counter=TiktokenCounter(), unit="words"
    )
    assert summary.count("The coffee is very good") == 1
    assert "storm closed the harbour" in summary


def test_pieces_without_a_full_stop_are_not_chosen_where_most_sentences_have_one():
    source = (
        "The need for a new exemption\n\n"
        + " ".join(f"Section {i} of the act permits one ephemeral recording of a broadcast." for i in range(12))
        + "\n\nThe following conditions must be met:\n\nThe recording is kept for six months."
    )
    summary = extract(source, language="en", max_units=60, max_tokens=2000, counter=TiktokenCounter(), unit="words")
    assert summary and "need for a new exemption" not in summary and "must be met" not in summary
