"""The English meeting scorer's fitted weights: the table loads, it ranks as fitted, and the refit reproduces it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import config_dir
from pipeline.errors import ConfigError
from pipeline.extractive import _STOPWORDS, _stem, extract
from pipeline.extractive_learned import FEATURES, meeting_features, meeting_scores, meeting_weights
from pipeline.tokens import TiktokenCounter

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("fit_meeting_weights", ROOT / "bench" / "fit_meeting_weights.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_table_gives_every_feature_a_weight_and_favours_the_agenda():
    weights = meeting_weights()
    assert list(weights) == list(FEATURES)
    table = tomllib.loads((config_dir() / "meeting_weights.toml").read_text(encoding="utf-8"))
    assert table["weights"] == weights
    # What the fit found on the dev meetings: the chair's opening turns hold the agenda minutes retell.
    assert weights["opening"] > 0 and weights["chair"] > 0 and weights["pairs"] > 0


def test_the_same_turn_scores_higher_in_the_opening_and_from_the_chair():
    turn = "we need to decide the remote control design and the production cost of the battery today"
    sentences = [
        f"Project Manager: {turn}.",
        "Marketing: the market research says young people want a fancy remote control with speech recognition.",
        *[f"Project Manager: the remote control and the battery are on point number {i}." for i in range(20)],
        f"Marketing: {turn}.",
        f"Project Manager: {turn}.",
    ]
    n = len(sentences)
    where = [i / n for i in range(n)]
    flat = [0.5] * n
    scores = meeting_scores(sentences, flat, flat, where, stopwords=_STOPWORDS, stem=_stem)
    rows = meeting_features(sentences, flat, flat, where, stopwords=_STOPWORDS, stem=_stem)
    assert rows[0][FEATURES.index("opening")] == 1.0 and rows[-1][FEATURES.index("opening")] == 0.0
    assert [r[FEATURES.index("chair")] for r in rows[-2:]] == [0.0, 1.0]
    assert scores[0] > scores[-1] > scores[-2]  # the opening's turn first, then the chair's over another's


def _table(tmp_path: Path, weights: dict[str, float]) -> Path:
    folder = tmp_path / "_".join(f"{k}{v}" for k, v in weights.items())
    shutil.copytree(config_dir(), folder)
    body = "\n".join(f"{name} = {weights.get(name, 0.0)}" for name in FEATURES)
    (folder / "meeting_weights.toml").write_text(f"[weights]\n{body}\n", encoding="utf-8")
    return folder


def _summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights: dict[str, float], source: str) -> str:
    monkeypatch.setenv("TOME_CONFIG_DIR", str(_table(tmp_path, weights)))
    meeting_weights.cache_clear()
    try:
        return extract(source, language="en", max_units=25, max_tokens=400, counter=TiktokenCounter(), unit="words")
    finally:
        meeting_weights.cache_clear()


def test_the_table_steers_which_turns_an_english_meeting_summary_keeps(tmp_path, monkeypatch):
    agenda = "Project Manager: Today we pick the battery, then the case."
    topics = ["colour", "shape", "menu", "speech recognition", "button layout", "price", "logo", "scroll wheel"]
    talk = [
        f"{who}: I think the {topic} of the remote control matters for the production cost and the market."
        for topic in topics
        for who in ("Marketing", "Industrial Designer", "User Interface")
    ]
    source = "\n\n".join([agenda, *talk])
    by_opening = _summary(tmp_path, monkeypatch, {"opening": 1.0}, source)
    by_words = _summary(tmp_path, monkeypatch, {"words": 0.5, "pairs": 0.5}, source)
    # The selection covers the meeting's word pairs first (pipeline.extractive_coverage); the table's scores
    # decide between turns that cover alike: weighted by the opening, the turn said earliest.
    kept = [[t for t in talk if t in out] for out in (by_opening, by_words)]
    assert all(len(k) == 1 for k in kept), (by_opening, by_words)
    assert talk.index(kept[0][0]) < talk.index(kept[1][0])


def test_a_table_without_every_feature_is_a_config_error(tmp_path, monkeypatch):
    (tmp_path / "meeting_weights.toml").write_text("[weights]\nwords = 1.0\n", encoding="utf-8")
    monkeypatch.setenv("TOME_CONFIG_DIR", str(tmp_path))
    meeting_weights.cache_clear()
    try:
        with pytest.raises(ConfigError, match="opening"):
            meeting_weights()
    finally:
        meeting_weights.cache_clear()


def test_the_fit_is_deterministic_and_weighs_the_feature_that_predicts_the_label():
    fit_logistic = _bench().fit_logistic
    rng = np.random.default_rng(7)
    rows = [rng.random((40, 3)) for _ in range(5)]
    labels = [(x[:, 1] > 0.7).astype(float) for x in rows]  # only the second feature says what is kept
    w = fit_logistic(rows, labels, [1.0] * 5)
    assert np.array_equal(w, fit_logistic(rows, labels, [1.0] * 5))
    assert w[1] > 0.6 and abs(w).sum() == pytest.approx(1.0)


@pytest.mark.skipif(
    not os.environ.get("TOME_REFIT"), reason="refits on the public dev meetings (minutes); set TOME_REFIT=1"
)
def test_the_refit_reproduces_the_shipped_table(monkeypatch):
    bench = _bench()
    monkeypatch.setattr(sys, "argv", ["fit_meeting_weights.py", "--verify"])
    bench.main()  # exits non-zero when the table is not what the meetings refit to
