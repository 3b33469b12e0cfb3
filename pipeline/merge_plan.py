"""Shaping merge levels: per-level output budgets (top down) and the groups of summaries one call merges.

Pure functions shared by the plan (planned sizes) and the engine's level scheduler (actual sizes), so the plan
and the run take the same decisions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from pipeline.config import ModelSpec
from pipeline.errors import ChunkingError, DepthLimitError
from pipeline.packing import pack_groups
from pipeline.prompt_room import chunk_room
from pipeline.settings import RunSettings

# Below this, a non-final summary says too little to be worth a call: add a level instead.
MIN_CALL_OUTPUT_TOKENS = 64

InputBudget = Callable[[int], int]


def merge_input_budget(model: ModelSpec, settings: RunSettings) -> InputBudget:
    """``f(output_tokens) -> input tokens`` one call may take when it may write ``output_tokens``."""
    base = chunk_room(model, settings)
    return lambda output_tokens: base.with_output(output_tokens).input_tokens


def level_output_tokens(
    n_calls: int,
    *,
    target_tokens: int,
    max_output_tokens: int,
    input_budget: InputBudget,
    max_depth: int,
    source_tokens: int | None = None,
) -> list[int]:
    """Per-call output budget of every level of a tree whose bottom level has ``n_calls`` calls.

    Returns ``[o_0, o_1, ..., o_D]`` bottom to top; ``o_D`` belongs to the single final call. The depth D is
    the smallest for which every level below the final can write at least ``min(target, max_output_tokens)``
    per call (fan-in: the most children a call can take, at least 3, so groups of two or more always exist).
    Then, from the top down: ``o_D = target_tokens`` and
    ``o_l = min(max_output_tokens, input_budget(o_{l+1}) // fan_in_{l+1})``, so the next level's groups fit.
    Finally, from the bottom up, every level must shrink the total text:
    ``n_l * o_l < n_{l-1} * o_{l-1}`` (and ``n_0 * o_0 < source_tokens`` when given), lowering ``o_l`` if not.

    Args:
        n_calls: calls at the bottom level (one per chunk at level 0).
        target_tokens: length of the final summary.
        max_output_tokens: cap on any non-final call's output (settings.chunk_output_tokens).
        input_budget: input tokens one call may take when it may write ``o`` tokens.
        max_depth: most levels allowed above the bottom one.
        source_tokens: total input of the bottom level, to keep level 0 from writing more than it reads.

    Raises:
        DepthLimitError: no tree of at most ``max_depth`` merge levels fits the budgets.
    """
    if n_calls < 1:
        raise ValueError("level_output_tokens needs at least one call")
    cap = max(1, max_output_tokens)
    if n_calls == 1:
        return [shrunk_output(target_tokens, source_tokens, 1)]
    floor = min(target_tokens, cap)
    least = min(MIN_CALL_OUTPUT_TOKENS, floor)
    # Score each depth: the final call must not be starved (its inputs should total at least the target),
    # and non-final calls should write at least ``floor``. Take the shallowest depth meeting both, else the
    # best-scoring one.
    best: tuple[bool, int, int] | None = None  # (fed, uniform output, -depth)
    for depth in range(1, max_depth + 1):
        o = _largest_fitting_output(n_calls, depth, cap, target_tokens, input_budget)
        if o < least:
            continue
        shape = _shape(n_calls, depth, o, target_tokens, input_budget)
        assert shape is not None
        below_final = shape[depth - 1]
        fed = below_final * min(cap, input_budget(target_tokens) // below_final) >= target_tokens
        score = (fed, o, -depth)
        if best is None or score > best:
            best = score
        if fed and o >= floor:
            break
    if best is None:
        raise DepthLimitError(
            f"{n_calls} chunk summaries cannot be merged into one within {max_depth} levels; "
            "use a model with a larger context window or raise max_depth."
        )
    _, o, depth = best
    depth = -depth
    shape = _shape(n_calls, depth, o, target_tokens, input_budget)
    assert shape is not None
    outs = [0] * (depth + 1)
    outs[depth] = target_tokens
    for level in range(depth - 1, -1, -1):
        fan_in = _fan_in_needed(shape[level], shape[level + 1])
        outs[level] = max(1, min(cap, input_budget(outs[level + 1]) // fan_in))
    outs[0] = shrunk_output(outs[0], source_tokens, shape[0])
    for level in range(1, depth + 1):
        outs[level] = shrunk_output(outs[level], shape[level - 1] * outs[level - 1], shape[level])
    return outs


def shrunk_output(output: int, total_in: int | None, calls: int) -> int:
    """``output`` lowered so that ``calls`` calls write less than they read in total."""
    if total_in is None:
        return output
    return max(1, min(output, (total_in - 1) // calls))


def _fan_in_needed(n_below: int, n_level: int) -> int:
    fan_in = math.ceil(n_below / n_level)
    # Room for three children keeps groups of two or more possible whatever the count (an odd count and a
    # fan-in of exactly two would force a group of one).
    return max(fan_in, 3) if n_below >= 3 and n_level > 1 else fan_in


def _group_count(n: int, size: int, budget: int) -> int | None:
    """Fewest merge calls for ``n`` items of ``size`` tokens, or None when they cannot be grouped."""
    fan_in = budget // size if size > 0 else n
    if fan_in < (3 if n >= 3 else 2):
        return None
    return math.ceil(n / fan_in)


def _shape(n_calls: int, depth: int, o: int, target: int, input_budget: InputBudget) -> list[int] | None:
    """Calls per level when every level below the final writes ``o``; None if the final call cannot fit."""
    shape = [n_calls]
    n = n_calls
    for _ in range(1, depth):
        k = _group_count(n, o, input_budget(o))
        if k is None:
            return None
        n = k
        shape.append(n)
    if n * o > input_budget(target):
        return None
    shape.append(1)
    return shape


def _largest_fitting_output(
    n_calls: int, depth: int, cap: int, target: int, input_budget: InputBudget
) -> int:
    """The largest uniform output (<= cap) for which ``depth`` merge levels suffice; 0 if none does."""
    lo, hi = 0, cap  # fits(lo) holds (0 is the sentinel), fits(hi + 1) fails
    if _shape(n_calls, depth, 1, target, input_budget) is None:
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _shape(n_calls, depth, mid, target, input_budget) is not None:
            lo = mid
        else:
            hi = mid - 1
    return lo


def plan_merge(
    sizes: Sequence[int],
    *,
    target_tokens: int,
    max_output_tokens: int,
    input_budget: InputBudget,
    max_depth: int,
) -> tuple[int, list[list[int]]]:
    """The next level over existing summaries: (per-call output budget, groups of summary indexes).

    One group means the final call. ``sizes`` are the summaries' tokens (actual, or planned maxima); there must
    be at least two. Output targets are lowered when items are too big to pair, and never let a level grow
    the total; a group of one appears only if even tiny outputs cannot pair two items.
    """
    if len(sizes) < 2:
        raise ValueError("plan_merge needs at least two summaries")
    total = sum(sizes)
    final = shrunk_output(target_tokens, total, 1)
    if total <= input_budget(final):
        return final, [list(range(len(sizes)))]
    outs = level_output_tokens(
        len(sizes),
        target_tokens=target_tokens,
        max_output_tokens=max_output_tokens,
        input_budget=input_budget,
        max_depth=max_depth,
    )
    # outs[0] is what these summaries were expected to be; outs[1] is the next level's output. If the schedule
    # expected the final call next, the summaries came out larger than planned: shrink them to the expected size.
    output = outs[1] if len(outs) > 2 else outs[0]
    while True:
        try:
            groups = pack_groups(sizes, input_budget(output))
            break
        except ChunkingError:
            if output <= 16:
                groups = pack_groups(sizes, input_budget(output), min_group=1)
                break
            output //= 2
    if len(groups) == 1 and output < final:
        # The final call after all (the smaller output left room to pack everything in one): write as close
        # to the target as the input leaves room for, not a lower level's size.
        fitting = final
        while fitting > output and total > input_budget(fitting):
            fitting = max(output, fitting * 9 // 10)
        output = fitting
    output = shrunk_output(output, total, len(groups))
    return output, groups


def prefix_groups(sizes: Sequence[int], cap: int, total: int | None, *, share: int | None = None) -> list[list[int]]:
    """Groups of consecutive summaries decided from the first ``len(sizes)`` of ``total`` alone (closed ones).

    A group closes when the next summary would take it over ``share`` (an even share of the expected total,
    within ``cap``) or ``cap`` tokens, so a group is known as soon as its summaries and the one after it exist (a
    merge can start while later summaries are still being written); with every size given, the open group at the
    end is returned too. A group never leaves one summary alone at the end when moving its last member there
    keeps both within the limit. ``total`` None: not known yet (then no summary given is the last). Same sizes,
    same groups.
    """
    limit = min(cap, share) if share else cap
    groups: list[list[int]] = []
    start, held = 0, 0
    for j, size in enumerate(sizes):
        if j > start and held + size > limit:
            last_alone = total is not None and total - j == 1
            if last_alone and j - start >= 3 and sizes[j - 1] + size <= limit:
                groups.append(list(range(start, j - 1)))
                start, held = j - 1, sizes[j - 1] + size
                continue
            groups.append(list(range(start, j)))
            start, held = j, 0
        held += size
    if total is not None and len(sizes) == total and start < total:
        groups.append(list(range(start, total)))
    return groups


def even_share(first: int, total: int, cap: int, *, slack: float = 1.1) -> int:
    """A group's share when ``total`` summaries of about ``first`` tokens go into as few groups as ``cap``
    allows (``slack`` over the even split, so that summaries a little longer than expected still fit k groups)."""
    expected = total * max(1, first)
    groups = max(1, math.ceil(expected / cap))
    return min(cap, math.ceil(expected / groups * slack))
