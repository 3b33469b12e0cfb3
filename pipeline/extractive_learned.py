"""English meetings: a turn's score is a linear blend of cheap features, its weights fitted on public dev meetings.

The weights are a table (configs/meeting_weights.toml) that bench/fit_meeting_weights.py refits, deterministic:
a logistic regression of "the sentence is in a greedy ROUGE oracle's summary" on the features, 43 public dev
meetings (QMSum and the project's; bench/results/eval.md, "Meetings, learned weights"). Leave one meeting out,
the 43's R-1 / R-2 / R-L under the cover of pipeline.extractive_coverage 30.65 / 6.28 / 16.80 (the hand-set
blend: words 0.4, pairs 0.4, TextRank 0.2) -> 30.93 / 6.96 / 17.14. Fitted and rejected there: a turn's size, place, question mark, figures, the meeting's top
words and named labels as features (the project's dev meetings lost), own-ROUGE labels, ridge fits.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import cache

from pipeline.config import config_dir
from pipeline.errors import ConfigError
from pipeline.extractive_meetings import named_label, phrases

WEIGHTS_FILE = "meeting_weights.toml"
# The features, in the order rows give them (names as the table spells them).
FEATURES = (
    "words",  # recurring content words held (peak 1), as pipeline.extractive scores them
    "pairs",  # recurring content-word pairs held (peak 1): a meeting's topics are phrases
    "central",  # TextRank centrality (peak 1)
    "opening",  # 1 at the meeting's start, falling to 0 at OPENING of it: the chair states the agenda there
    "chair",  # opens a turn of the speaker most named labels name (who leads the meeting)
)
OPENING = 0.1


def meeting_features(
    sentences: Sequence[str],
    words: Sequence[float],
    central: Sequence[float],
    where: Sequence[float],
    *,
    stopwords: frozenset[str],
    stem: Callable[[str], str],
) -> list[list[float]]:
    """One row of ``FEATURES`` per sentence; ``where``: each sentence's place in the material (0..1)."""
    pairs = phrases(sentences, stopwords=stopwords, stem=stem)
    labels = [named_label(s).strip() for s in sentences]
    chair = Counter(x for x in labels if x).most_common(1)
    return [
        [w, p, c, max(0.0, 1 - at / OPENING), float(bool(chair) and label == chair[0][0])]
        for w, p, c, at, label in zip(words, pairs, central, where, labels, strict=True)
    ]


def meeting_scores(
    sentences: Sequence[str],
    words: Sequence[float],
    central: Sequence[float],
    where: Sequence[float],
    *,
    stopwords: frozenset[str],
    stem: Callable[[str], str],
) -> list[float]:
    """Each sentence's score: its features weighted by the fitted table."""
    weights = meeting_weights()
    rows = meeting_features(sentences, words, central, where, stopwords=stopwords, stem=stem)
    return [sum(weights[name] * x for name, x in zip(FEATURES, row, strict=True)) for row in rows]


@cache
def meeting_weights() -> Mapping[str, float]:
    """The fitted weights by feature name, read once from configs/meeting_weights.toml."""
    path = config_dir() / WEIGHTS_FILE
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Config file {path} cannot be read as TOML: {exc}") from None
    weights = table.get("weights")
    if (
        not isinstance(weights, dict)
        or set(weights) != set(FEATURES)
        or not all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights.values())
    ):
        raise ConfigError(f"Config file {path}: [weights] must give a number for each of {', '.join(FEATURES)}.")
    return {name: float(weights[name]) for name in FEATURES}
