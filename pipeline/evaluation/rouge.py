"""ROUGE-1/2/L F1 for English and Chinese: Google's rouge-score, with a tokenizer that also reads CJK.

rouge-score's own tokenizer drops every non-ASCII character, so Chinese text would score zero. Ours gives
the same tokens for English (lower-cased alphanumeric words, Porter-stemmed when longer than three letters)
and one token per CJK character, the unit Chinese ROUGE is usually reported in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from nltk.stem import porter
from rouge_score import rouge_scorer

from pipeline.scripts import HAN, KANA

METRICS = ("rouge1", "rouge2", "rougeL")
_TOKEN = re.compile(f"[{HAN}{KANA}]|[a-z0-9]+")


class RougeTokenizer:
    """rouge-score's tokenizer contract (``tokenize(text) -> list[str]``), CJK-aware, stemming English."""

    def __init__(self, *, stem: bool = True) -> None:
        self._stemmer = porter.PorterStemmer() if stem else None
        self._stem = lru_cache(maxsize=65536)(self._stem_word)

    def _stem_word(self, word: str) -> str:
        return self._stemmer.stem(word) if self._stemmer is not None and len(word) > 3 else word

    def tokenize(self, text: str) -> list[str]:
        return [self._stem(t) for t in _TOKEN.findall(text.lower())]


@dataclass(frozen=True)
class RougeScores:
    """F1 of ROUGE-1, ROUGE-2 and ROUGE-L (longest common subsequence), each in [0, 1]."""

    rouge1: float
    rouge2: float
    rougeL: float  # noqa: N815 - the metric's usual name

    def as_dict(self) -> dict[str, float]:
        return {"rouge1": self.rouge1, "rouge2": self.rouge2, "rougeL": self.rougeL}


class Rouge:
    """Scores a candidate against one or more references: per metric, the best reference's F1."""

    def __init__(self, *, stem: bool = True) -> None:
        self.tokenizer = RougeTokenizer(stem=stem)
        self._scorer = rouge_scorer.RougeScorer(list(METRICS), tokenizer=self.tokenizer)

    def score(self, candidate: str, references: str | list[str] | tuple[str, ...]) -> RougeScores:
        if isinstance(references, str):
            references = [references]
        if not references:
            raise ValueError("ROUGE needs at least one reference")
        best = dict.fromkeys(METRICS, 0.0)
        for reference in references:
            scores = self._scorer.score(reference, candidate)
            for metric in METRICS:
                best[metric] = max(best[metric], scores[metric].fmeasure)
        return RougeScores(**best)

    def length(self, text: str) -> int:
        """Length in ROUGE tokens: words for English, characters for Chinese."""
        return len(self.tokenizer.tokenize(text))
