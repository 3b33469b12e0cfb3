"""The shared sentence graph: feature overlaps through an inverted index, and weighted PageRank."""

from __future__ import annotations

import pytest

from pipeline.sentence_graph import pagerank, shared_features


def test_shared_features_counts_common_features_per_pair():
    feats = [{"cat", "mat"}, {"cat", "dog"}, {"bird"}, {"cat", "mat", "dog"}]
    shared = shared_features(feats)
    assert shared[0] == {1: 1, 3: 2}
    assert shared[2] == {}
    assert shared[3] == {0: 2, 1: 2}
    # "cat" is in 3 of 4 sentences: skipped when at most 2 may share a feature.
    assert shared_features(feats, max_members=2)[0] == {3: 1}


def test_pagerank_ranks_the_hub_of_a_star_first_and_sums_to_n():
    # Sentence 0 is linked to every other; the others only to 0.
    edges = [{1: 1.0, 2: 1.0, 3: 1.0}, {0: 1.0}, {0: 1.0}, {0: 1.0}]
    scores = pagerank(edges, iterations=200, tolerance=1e-12)
    assert scores[0] > scores[1] == pytest.approx(scores[2]) == pytest.approx(scores[3])
    assert sum(scores) == pytest.approx(4.0)
    # Hand-computed fixed point: s0 = 0.15 + 0.85 * 3 * s1 and s1 = 0.15 + 0.85 * s0 / 3.
    s1 = (0.15 + 0.85 * 0.15 / 3) / (1 - 0.85 * 0.85)
    assert scores[1] == pytest.approx(s1) and scores[0] == pytest.approx(0.15 + 0.85 * 3 * s1)


def test_pagerank_stops_once_scores_settle_and_isolated_nodes_keep_the_floor():
    edges = [{1: 1.0}, {0: 1.0}, {}]
    assert pagerank(edges, iterations=1000, tolerance=1e-9) == pytest.approx([1.0, 1.0, 0.15])
    assert pagerank([], iterations=5) == []
