"""Landing a stated length: every reading of the summary brought within the tolerance, at the least score lost.

The offline backend fills a length by tome's count (pipeline.lengths.measure: the middle of the readings). The
readings of what it kept may still spread apart (a run of dialogue is a quarter punctuation; a paragraph of
product names is half Latin letters), or land a little short: a few rounds of dropping, adding or swapping one
sentence bring the farthest reading within the tolerance, losing as little score as they can (of the moves that
get there, the one whose sentences out score least against those in). Never more than the length by tome's count
(it is an upper bound, as the fill's). A landing is moved only when a reading is off by ``TRIGGER`` or more, and
only until none is: it once went on to 5 %, trading a short summary's better sentences for readings a few points
nearer (bench/results/eval.md, "Landing within the tolerance"; a meeting's tail: pipeline.extractive_fit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pipeline.lengths import Counts, counts, landing_error

# A landing is moved only when a reading is 9 % off or more (at the edge of the tolerance), and only until every
# reading is within it, if it can be: nearer than that, the ranking decides.
TRIGGER = 0.09
ROUNDS = 4  # moves made one after another (each one drop, add or swap), more for longer summaries
MAX_ROUNDS = 16
SWAP_WHILE_OVER = 40  # a summary of more sentences gets below a reading over by drops alone (fast)
POOL = 120  # best-ranked sentences left out that may be added or swapped in


def land(
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
    keep: bool = False,
) -> set[int]:
    """``chosen`` moved, one sentence at a time, until every reading of the summary is nearest ``asked``.

    Only for a length stated in words or characters (``unit``) and no sentences forced in (``keep``). Added
    sentences are among the ``POOL`` best left out, repeat no kept one (``redundant``, as the fill) and keep
    the summary within ``max_tokens``.
    """
    if unit not in ("words", "chars") or keep or not chosen or asked <= 0:
        return chosen
    memo: dict[int, tuple[int, ...]] = {}

    def of(i: int) -> tuple[int, ...]:
        if i not in memo:
            memo[i] = counts(sentences[i]).astuple()
        return memo[i]

    gap = 0 if cjk else 1  # sentences are joined by a space unless CJK

    def error(total: tuple[int, ...], n: int) -> float:
        cjk_, letters, visible, spaced, words, split = total
        joined = Counts(cjk_, letters, visible, spaced + gap * (n - 1), words, split)
        low, high = joined.readings(unit)
        tome = words if unit == "words" else (low + high + 1) // 2
        return landing_error(joined, unit, asked) if tome <= asked else math.inf  # never more than asked

    def plus(a: tuple[int, ...], b: tuple[int, ...], sign: int = 1) -> tuple[int, ...]:
        return tuple(x + sign * y for x, y in zip(a, b, strict=True))

    current = set(chosen)
    total: tuple[int, ...] = (0,) * 6
    for i in current:
        total = plus(total, of(i))
    now = error(total, len(current))
    if now <= TRIGGER:
        return current
    rounds = min(MAX_ROUNDS, ROUNDS + len(current) // 8)
    while now > TRIGGER and len(current) > 1:
        over = now >= 1  # a reading over the tolerance: sentences are dropped (cheaply) until none is
        rounds -= 0 if over else 1
        if rounds < 0:
            break
        used = sum(tokens[i] for i in current)
        kept_feats = [feats[i] for i in current]
        pool = [j for j in order[:POOL] if j not in current and not _repeats(feats[j], kept_feats, redundant)]
        # Each move: (error, score lost, sentences out, sentences in); errors within TRIGGER are equally good.
        moves: list[tuple[float, float, tuple[int, ...], tuple[int, ...]]] = []
        n = len(current)
        for i in current:
            moves.append((error(plus(total, of(i), -1), n - 1), scores[i], (i,), ()))
        for j in pool if not over or n <= SWAP_WHILE_OVER else ():
            if used + tokens[j] <= max_tokens:
                moves.append((error(plus(total, of(j)), n + 1), -scores[j], (), (j,)))
            for i in current:
                if used - tokens[i] + tokens[j] <= max_tokens:
                    moves.append((error(plus(plus(total, of(j)), of(i), -1), n), scores[i] - scores[j], (i,), (j,)))
        if not moves:
            break
        best = min(moves, key=lambda m: (max(m[0], TRIGGER), m[1]))
        if best[0] >= now - 1e-9:
            break
        current.difference_update(best[2])
        current.update(best[3])
        for i in best[2]:
            total = plus(total, of(i), -1)
        for j in best[3]:
            total = plus(total, of(j))
        now = best[0]
    return current


def _repeats(mine: frozenset[str], kept: list[frozenset[str]], redundant: float) -> bool:
    return bool(mine) and any(len(mine & k) >= redundant * len(mine) for k in kept)
