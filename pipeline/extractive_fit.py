"""The last steps of fitting a stated length: landing every reading near it, and a meeting's tail.

The ranked choice (pipeline.extractive_select) fills a length by tome's count; the landing
(pipeline.length_landing) then moves sentences until every reading of the summary is near the length, and a
transcript's gap is filled with the head of the next best sentence (pipeline.extractive_meetings.fill_tail).
Landing first and filling after judged the choice before its tail: a meeting summary a few turns long and a
tenth short (hanzi alone 86 % of the length asked) had its best turns swapped for a low-value one of a better
size, when the head the tail adds would have brought every reading within the tolerance anyway. So a transcript
keeps its ranked choice whenever that choice with its tail lands within the tolerance (``TRIGGER``); only
otherwise is it landed (and the landed choice gets its own tail).
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline import extractive_meetings as meetings
from pipeline.length_landing import TRIGGER, land
from pipeline.lengths import counts, landing_error
from pipeline.tokens import TokenCounter


def fit(
    sentences: Sequence[str],
    chosen: set[int],
    order: Sequence[int],
    scores: Sequence[float],
    tokens: Sequence[int],
    feats: Sequence[frozenset[str]],
    *,
    unit: str | None,
    asked: int,
    max_tokens: int,
    cjk: bool,
    redundant: float,
    keep: bool,
    transcript: bool,
    language: str,
    counter: TokenCounter,
) -> tuple[set[int], tuple[int, str] | None]:
    """(sentences kept, the tail: index and head of the sentence whose head fills the gap, or None).

    ``chosen``: the ranked choice; the rest as pipeline.length_landing.land and extractive_meetings.fill_tail.
    """

    def tail(kept: set[int]) -> tuple[int, str] | None:
        if not (transcript and unit is not None and kept):
            return None
        return meetings.fill_tail(sentences, kept, order, feats, max_units=asked, unit=unit, language=language,
                                  max_tokens=max_tokens, counter=counter, redundant=redundant)  # fmt: skip

    ranked = tail(chosen)
    if ranked is not None and unit in ("words", "chars") and not keep and asked > 0:
        parts = [ranked[1] if i == ranked[0] else sentences[i] for i in sorted({*chosen, ranked[0]})]
        if landing_error(counts(("" if cjk else " ").join(parts)), unit, asked) <= TRIGGER:
            return chosen, ranked  # the head of the next best sentence lands it: no sentence is traded
    landed = land(sentences, chosen, order, scores, tokens, feats, unit=unit, asked=asked, max_tokens=max_tokens,
                  cjk=cjk, redundant=redundant, keep=keep)  # fmt: skip
    return landed, (ranked if landed == chosen else tail(landed))
