"""The sentence graph both TextRanks share (the extractive backend's and the evaluation baseline's)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

DAMPING = 0.85


def shared_features(features: Sequence[Collection[str]], *, max_members: int | None = None) -> list[dict[int, int]]:
    """For each sentence, how many features it shares with every other sentence that shares any.

    An inverted index keeps this near-linear on real text: only pairs with a common feature are visited.
    Features found in more than ``max_members`` sentences are skipped (they tell no sentence apart).
    """
    index: dict[str, list[int]] = {}
    for i, feats in enumerate(features):
        for feature in feats:
            index.setdefault(feature, []).append(i)
    shared: list[dict[int, int]] = [{} for _ in features]
    for members in index.values():
        if max_members is not None and len(members) > max_members:
            continue
        for a in members:
            row = shared[a]
            for b in members:
                if a != b:
                    row[b] = row.get(b, 0) + 1
    return shared


def pagerank(
    edges: Sequence[dict[int, float]], *, iterations: int, tolerance: float = 0.0, damping: float = DAMPING
) -> list[float]:
    """Weighted PageRank by power iteration: ``iterations`` rounds, or fewer once no score moves by ``tolerance``."""
    n = len(edges)
    out_weight = [sum(e.values()) for e in edges]
    scores = [1.0] * n
    for _ in range(iterations):
        new = [1.0 - damping] * n
        for a in range(n):
            if out_weight[a]:
                share = damping * scores[a] / out_weight[a]
                for b, w in edges[a].items():
                    new[b] += share * w
        delta = max((abs(x - y) for x, y in zip(new, scores, strict=True)), default=0.0)
        scores = new
        if delta <= tolerance:
            break
    return scores
