"""Fitting ranked sentences into a length: best first, no near-repeats, and never well short of a stated length.

When what is left after the best sentences only repeats them, a near-repeat is taken anyway; when long
sentences leave the summary short, one chosen sentence is swapped for a better-sized one (the smallest loss
of score). Lengths are given per sentence in the unit asked for, tokens as the local counter counts them.
"""

from __future__ import annotations

from collections.abc import Sequence

# A summary this much shorter than a stated length (words, characters) swaps a sentence for a better-sized one.
SLACK = 0.08
SWAP_POOL = 200  # best-ranked sentences tried in a swap


def choose(
    order: Sequence[int],
    scores: Sequence[float],
    sizes: Sequence[int],
    tokens: Sequence[int],
    feats: Sequence[frozenset[str]],
    *,
    max_units: int,
    max_tokens: int,
    stated: bool,
    redundant: float,
) -> set[int]:
    """Indices of the sentences to keep, taken in ``order`` within ``max_units`` and ``max_tokens``.

    ``stated``: the length was stated in words or characters (fill it); ``redundant``: a sentence sharing this
    share of its features with a kept one is a repeat.
    """
    chosen: set[int] = set()
    kept: list[frozenset[str]] = []
    units = used = 0
    for i in order:
        if units + sizes[i] > max_units or used + tokens[i] > max_tokens:
            continue
        mine = feats[i]
        # A sentence mostly made of what a kept one already says (meetings repeat themselves) adds nothing.
        if mine and any(len(mine & k) >= redundant * len(mine) for k in kept):
            continue
        kept.append(mine)
        chosen.add(i)
        units += sizes[i]
        used += tokens[i]
    low = (1 - SLACK) * max_units
    if stated and units < low:
        # Short of a stated length because what is left repeats what was kept: a near-repeat beats a summary
        # well short of the length asked for. The same sentence twice never does: a document that repeats
        # itself gets a short summary rather than the repeat.
        said = set(kept)
        for i in order:
            if units >= low:
                break
            if i in chosen or (feats[i] and feats[i] in said):
                continue
            if units + sizes[i] <= max_units and used + tokens[i] <= max_tokens:
                said.add(feats[i])
                chosen.add(i)
                units += sizes[i]
                used += tokens[i]
    if stated and units < low:
        # Still short (long sentences): swap one chosen sentence for a better-sized one, best scores first.
        best: tuple[float, int, int] | None = None
        taken = {feats[c] for c in chosen if feats[c]}
        pool = [j for j in order[:SWAP_POOL] if j not in chosen and feats[j] not in taken]
        for i in chosen:
            for j in pool:
                size = units - sizes[i] + sizes[j]
                if low <= size <= max_units and (best is None or scores[j] - scores[i] > best[0]):
                    best = (scores[j] - scores[i], i, j)
        if best is not None:
            _, i, j = best
            chosen.discard(i)
            chosen.add(j)
    return chosen
