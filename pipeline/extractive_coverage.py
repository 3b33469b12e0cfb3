"""Meetings: summary sentences chosen to cover the points a meeting's opening raises, each point counted once.

Concept coverage (Gillick & Favre 2009): a concept is a word pair said in two turns or more, worth one less than
the turns that say it, and ``OPENING_BONUS`` times more when the meeting's opening (its first ``OPENING`` of
sentences, at most ``OPENING_WORDS`` words) says it first: minutes retell the agenda the chair opens with, and
what the meeting said about it.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Sequence

# The first tenth of a meeting's sentences is its opening; a pair it says first weighs 21 times a later one.
# 43 English dev meetings (bench/results/eval.md, "Meetings, covering the opening's points"): opening 0.05 / 0.1
# gain on all of ROUGE-1/2/L, 0.2 loses ROUGE-L; a bonus of 5 or 20 and shares 0.6-1.0 alike.
OPENING = 0.1
OPENING_BONUS = 20.0
# A long hearing's tenth is thousands of words: its opening is the chair's, naming the committee, the witnesses and
# the items. 11 committee dev meetings 31.14 / 7.17 / 17.40 -> 32.08 / 8.29 / 17.62 (lead 27.84 / 9.57 / 16.98);
# the other 32 English dev meetings within 0.02 (their tenth is shorter); 300 words gained the committees more
# but lost up to 0.4 elsewhere (bench/results/eval.md, "An opening of at most 800 words").
OPENING_WORDS = 800
# Share of a sentence's value that is the concepts it newly covers (peak 1); the rest is its score (peak 1).
COVER_SHARE = 0.8


def opening_length(words: Sequence[int], share: float = OPENING) -> int:
    """How many of the first sentences (``words``: each one's words) are the opening: ``share`` of them, and no
    more than ``OPENING_WORDS`` words (at least one sentence)."""
    cap = math.ceil(share * len(words))
    total = 0
    for k, size in enumerate(words[:cap]):
        total += size
        if total >= OPENING_WORDS:
            return k + 1
    return cap


def covering_order(
    pairs: Sequence[frozenset[str]],
    scores: Sequence[float],
    sizes: Sequence[int],
    *,
    budget: int,
    words: Sequence[int] | None = None,
    first: Sequence[int] = (),
) -> list[int]:
    """Sentence indices: those a greedy cover of the recurring ``pairs`` takes within ``budget`` (``sizes``
    summed), in the order taken, then the rest by what they would add; ties go to the earlier sentence.
    ``words``: each sentence's words, when ``sizes`` counts another unit; ``first``: taken before the cover,
    their pairs covered (a hearing's opening)."""
    n = len(pairs)
    said = Counter(p for ps in pairs for p in ps)
    opening = frozenset().union(*pairs[: opening_length(sizes if words is None else words)])
    weight = {p: (k - 1) * (1 + OPENING_BONUS * (p in opening)) for p, k in said.items() if k > 1}
    top = max((sum(weight.get(p, 0.0) for p in ps) for ps in pairs), default=0.0) or 1.0
    covered: set[str] = set().union(*(pairs[i] for i in first))

    def value(i: int) -> float:
        new = sum(weight.get(p, 0.0) for p in pairs[i] if p not in covered)
        return COVER_SHARE * new / top + (1 - COVER_SHARE) * scores[i]

    # Lazy greedy: a sentence's value only falls as concepts get covered, so a stale value is an upper bound.
    taken = list(dict.fromkeys(first))
    skip = set(taken)
    heap = [(-value(i), i) for i in range(n) if i not in skip]
    heapq.heapify(heap)
    left = budget - sum(sizes[i] for i in taken)
    while heap:
        _, i = heapq.heappop(heap)
        if sizes[i] > left:
            continue  # the budget only shrinks: it never fits again
        now = value(i)
        if heap and (-now, i) > heap[0]:
            heapq.heappush(heap, (-now, i))
            continue
        taken.append(i)
        covered |= pairs[i]
        left -= sizes[i]
    chosen = set(taken)
    return taken + sorted((i for i in range(n) if i not in chosen), key=lambda i: (-round(value(i), 9), i))
