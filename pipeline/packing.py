"""Balanced contiguous grouping: split a sequence of sizes into the fewest groups that fit, evened out."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import ChunkingError

# Above this many (end, start) pairs the exact dynamic programme would take seconds; fall back to a greedy pass.
_MAX_DP_WORK = 3_000_000


def pack_groups(sizes: Sequence[int], max_input_tokens: int, *, min_group: int = 2) -> list[list[int]]:
    """Contiguous groups of item indexes; each group's sizes sum to at most ``max_input_tokens``.

    Uses the fewest groups possible, then makes their sums as even as possible (least squared deviation
    from the mean), so there is no tiny last group. Every group has at least ``min_group`` items, unless
    only one item exists.

    Args:
        sizes: token size of each item, in order.
        max_input_tokens: what one group may hold.
        min_group: smallest allowed group (2 for merge calls: a group of one would only re-summarise).

    Returns:
        Lists of indexes into ``sizes``; concatenated they are ``0..len(sizes)-1``.

    Raises:
        ChunkingError: an item is larger than ``max_input_tokens``, or items are too big to group at least
            ``min_group`` at a time (the caller should lower the per-call output target).
    """
    n = len(sizes)
    if n == 0:
        return []
    for i, size in enumerate(sizes):
        if size > max_input_tokens:
            raise ChunkingError(
                f"Item {i} ({size} tokens) is larger than the {max_input_tokens}-token input budget."
            )
    if n == 1:
        return [[0]]
    need = max(1, min_group)
    prefix = [0] * (n + 1)
    for i, size in enumerate(sizes):
        prefix[i + 1] = prefix[i] + size
    # first[i]: the earliest start j such that items j..i-1 fit in one group (two pointers, O(n)).
    first = [0] * (n + 1)
    j = 0
    work = 0
    for i in range(1, n + 1):
        while prefix[i] - prefix[j] > max_input_tokens:
            j += 1
        first[i] = j
        work += max(0, i - need - j + 1)
    if need == 1 and work > _MAX_DP_WORK:
        return _greedy_groups(prefix, max_input_tokens)
    groups = _balanced_groups(prefix, first, need, max_input_tokens)
    if groups is None:
        raise ChunkingError(
            f"{n} items cannot be grouped {need} or more at a time within {max_input_tokens} tokens; "
            "lower the per-call output target."
        )
    return groups


def _balanced_groups(prefix: list[int], first: list[int], need: int, cap: int) -> list[list[int]] | None:
    n = len(prefix) - 1
    inf = n + 1
    # Pass 1: the fewest groups for each prefix.
    fewest = [inf] * (n + 1)
    fewest[0] = 0
    for i in range(1, n + 1):
        best = inf
        for j in range(first[i], i - need + 1):
            if fewest[j] < best:
                best = fewest[j]
        fewest[i] = best + 1 if best < inf else inf
    k = fewest[n]
    if k >= inf:
        return None
    mean = prefix[n] / k
    # Pass 2: lexicographic minimum of (groups, squared deviation from the mean). Both parts add up over
    # groups, so optimal prefixes compose into the optimal whole.
    count = [inf] * (n + 1)
    cost = [0.0] * (n + 1)
    back = [0] * (n + 1)
    count[0] = 0
    for i in range(1, n + 1):
        best_c, best_v, best_j = inf, 0.0, -1
        p_i = prefix[i]
        for j in range(first[i], i - need + 1):
            c = count[j]
            if c >= inf:
                continue
            d = p_i - prefix[j] - mean
            v = cost[j] + d * d
            if c + 1 < best_c or (c + 1 == best_c and v < best_v):
                best_c, best_v, best_j = c + 1, v, j
        if best_j >= 0:
            count[i], cost[i], back[i] = best_c, best_v, best_j
    groups: list[list[int]] = []
    i = n
    while i > 0:
        j = back[i]
        groups.append(list(range(j, i)))
        i = j
    groups.reverse()
    return groups


def _greedy_groups(prefix: list[int], cap: int) -> list[list[int]]:
    """Fallback for very many items: cut near even multiples of the mean, never over ``cap``."""
    n = len(prefix) - 1
    k = 0
    start = 0
    for i in range(1, n + 1):
        if prefix[i] - prefix[start] > cap:
            k += 1
            start = i - 1
    k += 1
    mean = prefix[n] / k
    groups: list[list[int]] = []
    start = 0
    for i in range(1, n + 1):
        overflow = i < n and prefix[i + 1] - prefix[start] > cap
        reached = prefix[i] >= mean * (len(groups) + 1)
        if i == n or overflow or reached:
            groups.append(list(range(start, i)))
            start = i
    return groups
