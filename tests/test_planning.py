"""The plan: grouping, per-level output budgets, the tree, cost arithmetic and the least wall time."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.chunking import Chunk
from pipeline.config import ModelSpec, RateLimits, load_catalog
from pipeline.documents.model import Document
from pipeline.errors import ChunkingError, DepthLimitError, EmptyDocumentError
from pipeline.planning import (
    Plan,
    build_plan,
    level_output_tokens,
    merge_input_budget,
    pack_groups,
    plan_document,
    plan_merge,
)
from pipeline.prompt_room import chunk_room
from pipeline.settings import RunSettings, resolve_settings
from pipeline.tokens import calibrated, counter_for
from pipeline.wall_time import min_wall_time

MODEL = load_catalog().model("moonshot-v1-8k")
UNLIMITED = RateLimits(concurrency=1000)


def settings(**changes) -> RunSettings:
    return replace(resolve_settings(model="moonshot-v1-8k"), **changes)


def fake_chunks(sizes: list[int]) -> tuple[Document, list[Chunk]]:
    """A document of len(sizes) chunks with the given local token counts (the text is a placeholder)."""
    text = "x" * (10 * len(sizes))
    chunks = [
        Chunk(
            index=i, start=10 * i, end=10 * i + 10, token_count=size, section_title=f"S{i}", section_index=i,
            pages=None, source=text,
        )
        for i, size in enumerate(sizes)
    ]
    return Document(path=Path("doc.txt"), text=text, title="Doc", language="en"), chunks


def plan_for(n: int, *, tokens: int = 5000, limits: RateLimits = UNLIMITED, **changes) -> Plan:
    doc, chunks = fake_chunks([tokens] * n)
    return build_plan(doc, chunks, MODEL, settings(**changes), limits)


# --- pack_groups ----------------------------------------------------------------------------------------


def fewest_groups(sizes: list[int], cap: int, min_group: int) -> int | None:
    """Brute-force reference: the fewest contiguous groups (each fits, each >= min_group items)."""
    n = len(sizes)
    best = [math.inf] * (n + 1)
    best[0] = 0
    for i in range(1, n + 1):
        for j in range(0, i - min_group + 1):
            if sum(sizes[j:i]) <= cap:
                best[i] = min(best[i], best[j] + 1)
    return None if best[n] == math.inf else int(best[n])


@pytest.mark.parametrize("seed", range(40))
def test_pack_groups_properties_on_random_sizes(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 40)
    cap = rng.randint(500, 3000)
    sizes = [rng.randint(1, cap // 3) for _ in range(n)]
    groups = pack_groups(sizes, cap)
    assert [i for g in groups for i in g] == list(range(n))  # contiguous, complete, in order
    assert all(sum(sizes[i] for i in g) <= cap for g in groups)
    assert all(len(g) >= 2 for g in groups) or n == 1
    assert len(groups) == fewest_groups(sizes, cap, 2 if n > 1 else 1)


def test_pack_groups_balances_equal_items():
    groups = pack_groups([3] * 9, 12)  # 4 + 4 + 1 would fit too, but leaves a group of one
    assert [len(g) for g in groups] == [3, 3, 3]
    groups = pack_groups([100] * 10, 400, min_group=1)
    assert [len(g) for g in groups] == [4, 3, 3] or sorted(len(g) for g in groups) == [3, 3, 4]


def test_pack_groups_evens_out_sums_not_just_counts():
    sizes = [50, 50, 50, 50, 10]  # greedy filling gives sums 100, 100, 10
    groups = pack_groups(sizes, 100, min_group=1)
    assert sorted(sum(sizes[i] for i in g) for g in groups) == [50, 60, 100]


def test_pack_groups_single_item_and_empty():
    assert pack_groups([], 10) == []
    assert pack_groups([7], 10) == [[0]]


def test_pack_groups_refuses_what_cannot_fit_or_pair():
    with pytest.raises(ChunkingError, match="larger than"):
        pack_groups([5, 11], 10)
    with pytest.raises(ChunkingError, match="lower the per-call output target"):
        pack_groups([6, 6, 6], 12)  # pairs fit, three do not: an odd item would be alone


def test_pack_groups_handles_many_small_items_quickly():
    groups = pack_groups([1] * 50_000, 500, min_group=1)
    assert [i for g in groups for i in g] == list(range(50_000))
    assert all(len(g) <= 500 for g in groups)
    assert len(groups) == 100


# --- level_output_tokens and plan_merge -------------------------------------------------------------------


def budget_fn(**changes):
    return merge_input_budget(MODEL, settings(**changes))


@pytest.mark.parametrize("n", [2, 5, 9, 10, 34, 100, 216, 1000, 5000])
@pytest.mark.parametrize("target", [250, 600, 1500])
def test_level_outputs_fit_and_shrink_from_the_top_down(n, target):
    input_budget = budget_fn()
    outs = level_output_tokens(
        n, target_tokens=target, max_output_tokens=600, input_budget=input_budget, max_depth=8
    )
    assert outs[-1] <= target
    assert all(0 < o <= 600 for o in outs[:-1])
    # Simulate the tree with every call writing its whole budget: each level's groups fit the next.
    count = n
    for level in range(1, len(outs)):
        groups = pack_groups([outs[level - 1]] * count, input_budget(outs[level]))
        if level == len(outs) - 1:
            assert len(groups) == 1
        assert len(groups) * outs[level] < count * outs[level - 1]  # the total shrinks
        count = len(groups)


def test_level_outputs_prefer_the_shallowest_tree_with_full_outputs():
    input_budget = budget_fn(context_strategy="none")  # 7116 input tokens at 600 output
    assert level_output_tokens(
        11, target_tokens=600, max_output_tokens=600, input_budget=input_budget, max_depth=8
    ) == [600, 600]  # 11 x 600 = 6600 fits the final call
    outs = level_output_tokens(
        34, target_tokens=600, max_output_tokens=600, input_budget=input_budget, max_depth=8
    )
    assert outs == [600, 600, 600]


def test_a_long_target_from_few_chunks_is_not_starved():
    # 12 chunks, a 1500-token final: one merge of 12 x 414 beats two levels feeding the final only 2 x 600.
    outs = level_output_tokens(
        12, target_tokens=1500, max_output_tokens=600, input_budget=budget_fn(), max_depth=8
    )
    assert len(outs) == 2 and outs[1] == 1500
    assert 12 * outs[0] <= budget_fn()(1500)


def test_level_outputs_never_exceed_the_source():
    outs = level_output_tokens(
        3, target_tokens=600, max_output_tokens=600, input_budget=budget_fn(), max_depth=8, source_tokens=300
    )
    assert 3 * outs[0] < 300


def test_depth_limit_is_the_last_resort():
    with pytest.raises(DepthLimitError, match="max_depth"):
        level_output_tokens(
            10_000, target_tokens=600, max_output_tokens=600, input_budget=budget_fn(), max_depth=1
        )
    # 120 summaries could squeeze into one call only at ~54 tokens each: too short to be worth it.
    with pytest.raises(DepthLimitError):
        level_output_tokens(
            120, target_tokens=600, max_output_tokens=600, input_budget=budget_fn(), max_depth=1
        )
    assert (
        len(
            level_output_tokens(
                100, target_tokens=600, max_output_tokens=600, input_budget=budget_fn(), max_depth=2
            )
        )
        == 3
    )


def test_plan_merge_ends_when_everything_fits_the_final_call():
    output, groups = plan_merge(
        [400] * 5, target_tokens=600, max_output_tokens=600, input_budget=budget_fn(), max_depth=8
    )
    assert (output, groups) == (600, [[0, 1, 2, 3, 4]])


def test_plan_merge_groups_actual_sizes_and_shrinks():
    sizes = [590, 610, 300, 450, 600] * 8  # 40 summaries, some longer than planned
    input_budget = budget_fn()
    output, groups = plan_merge(
        sizes, target_tokens=600, max_output_tokens=600, input_budget=input_budget, max_depth=8
    )
    assert len(groups) > 1
    assert all(sum(sizes[i] for i in g) <= input_budget(output) for g in groups)
    assert len(groups) * output < sum(sizes)


def test_plan_merge_lowers_the_output_when_items_are_too_big_to_pair():
    input_budget = budget_fn(context_strategy="none")
    big = input_budget(600) // 2 + 100  # two of these do not fit at a 600-token output
    output, groups = plan_merge(
        [big] * 3, target_tokens=600, max_output_tokens=600, input_budget=input_budget, max_depth=8
    )
    assert all(sum([big] * len(g)) <= input_budget(output) for g in groups)
    assert any(len(g) >= 2 for g in groups)


# --- build_plan -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7, 34, 216, 1000])
@pytest.mark.parametrize("length", ["short", "medium", "long"])
@pytest.mark.parametrize("context", ["lagged", "none"])
def test_plan_shrinks_every_level_fits_every_call_and_ends_with_one(n, length, context):
    s = settings(target_tokens=load_catalog().target_tokens(length), context_strategy=context)
    budget = chunk_room(MODEL, s)
    doc, chunks = fake_chunks([budget.max_local_tokens - (i % 5) * 300 for i in range(n)])
    plan = build_plan(doc, chunks, MODEL, s, UNLIMITED)
    assert len(plan.levels[0].calls) == n
    assert len(plan.levels[-1].calls) == 1
    assert plan.depth <= s.max_depth
    assert plan.levels[-1].output_tokens <= s.target_tokens
    source = sum(calibrated(MODEL, c.token_count) for c in chunks)
    totals = [source] + [len(lv.calls) * lv.output_tokens for lv in plan.levels]
    assert all(b < a for a, b in zip(totals, totals[1:], strict=False)), totals
    for level in plan.levels:
        for call in level.calls:
            assert call.admission_tokens + MODEL.safety_margin_tokens <= MODEL.context_tokens
            assert call.input_tokens <= level.input_budget_tokens or level.level == 0 and n == 1
        if level.level:
            below = len(plan.levels[level.level - 1].calls)
            assert sorted(i for c in level.calls for i in c.inputs) == list(range(below))
            assert all(len(c.inputs) >= 2 for c in level.calls)
    assert plan.total_calls == sum(plan.calls_per_level)


def test_level_zero_prompts_add_overhead_and_lagged_context():
    plan = plan_for(6, tokens=4000)
    s = plan.settings
    carried = chunk_room(MODEL, s).carried_context_tokens
    chunk = calibrated(MODEL, 4000)
    prompts = [c.est_prompt_tokens for c in plan.levels[0].calls]
    # Every call after the first carries context (the previous chunk's tail, or the summary `lag` back).
    assert prompts[0] == chunk + s.prompt_overhead_tokens
    assert prompts[1:] == [chunk + s.prompt_overhead_tokens + carried] * 5
    no_context = plan_for(6, tokens=4000, context_strategy="none")
    assert all(c.carried_tokens == 0 for c in no_context.calls())


def test_single_chunk_plan_is_one_call_writing_the_summary():
    plan = plan_for(1, tokens=3000, target_tokens=1500)
    (call,) = plan.calls()
    assert call.max_tokens == 1500 and call.inputs == (0,)
    tiny = plan_for(1, tokens=100)
    assert tiny.calls()[0].max_tokens < calibrated(MODEL, 100)  # never longer than the text itself


def test_cost_arithmetic():
    model = ModelSpec(
        name="priced",
        provider="moonshot",
        context_tokens=8192,
        calibration=1.0,
        price_input=2.0,
        price_output=10.0,
        currency="CNY",
    )
    doc, chunks = fake_chunks([3000, 3000])
    plan = build_plan(doc, chunks, model, settings(context_strategy="none"), UNLIMITED)
    prompt = sum(c.est_prompt_tokens for c in plan.calls())
    completion = sum(c.max_tokens for c in plan.calls())
    # Two level-0 calls of 3000 + 220 overhead, and a final call over their two 600-token summaries.
    assert prompt == 2 * (3000 + 220) + (1200 + 220)
    assert completion == 600 + 600 + 600
    assert plan.est_cost == pytest.approx((prompt * 2.0 + completion * 10.0) / 1_000_000)
    assert plan.to_dict()["totals"]["currency"] == "CNY"


def test_empty_chunk_list_is_an_error():
    doc, _ = fake_chunks([10])
    with pytest.raises(EmptyDocumentError):
        build_plan(doc, [], MODEL, settings(), UNLIMITED)


def test_depth_limit_in_build_plan():
    with pytest.raises(DepthLimitError):
        plan_for(500, max_depth=1)


def test_to_dict_has_chunks_tree_totals_and_wall_time():
    plan = plan_for(20, tokens=4500)
    data = plan.to_dict()
    assert len(data["chunks"]) == 20
    assert data["chunks"][0]["calibrated_tokens"] == calibrated(MODEL, 4500)
    assert [lv["calls"] for lv in data["levels"]] == plan.calls_per_level
    assert data["levels"][1]["call_list"][0]["inputs"] == list(plan.levels[1].calls[0].inputs)
    assert data["totals"]["calls"] == plan.total_calls
    assert data["budget"]["input_tokens"] == plan.budget.input_tokens
    assert data["wall_time"]["binding"] == plan.wall_time.binding


# --- least wall time ------------------------------------------------------------------------------------


def test_wall_time_bound_by_tpm():
    plan = plan_for(100, tokens=5000, context_strategy="none")  # ~6.5k admission tokens per level-0 call
    limits = RateLimits(concurrency=1000, rpm=10_000, tpm=100_000)
    wall = min_wall_time(plan, limits, latency_s_per_call=10.0)
    level0 = plan.levels[0].admission_tokens
    assert wall.level_binding[0] == "tpm"
    assert wall.level_seconds[0] == (math.ceil(level0 / 100_000) - 1) * 60 + 10.0
    assert wall.binding == "tpm" and wall.days == 1
    assert wall.seconds >= (math.ceil(plan.admission_tokens / 100_000) - 1) * 60


def test_wall_time_bound_by_rpm():
    plan = plan_for(10, tokens=2000, context_strategy="none")
    wall = min_wall_time(plan, RateLimits(concurrency=1, rpm=3, tpm=500_000), latency_s_per_call=5.0)
    calls = plan.calls_per_level
    assert wall.binding == "rpm"
    assert wall.level_seconds[0] == (math.ceil(calls[0] / 3) - 1) * 60 + 5.0 == 185.0
    assert wall.seconds >= (math.ceil(plan.total_calls / 3) - 1) * 60


def test_wall_time_bound_by_concurrency_and_by_latency():
    plan = plan_for(40, tokens=2000, context_strategy="none")
    wall = min_wall_time(plan, RateLimits(concurrency=8), latency_s_per_call=20.0)
    assert wall.level_binding[0] == "concurrency" and wall.level_seconds[0] == 5 * 20.0
    free = min_wall_time(plan, RateLimits(concurrency=1000), latency_s_per_call=20.0)
    assert free.binding == "latency" and free.seconds == 20.0 * len(plan.levels)


def test_lagged_context_never_idles_a_slot():
    # The engine's lag is at least the concurrency, so carrying context costs no wall time.
    plan = plan_for(40, tokens=2000)  # lagged, context_lag 4
    wall = min_wall_time(plan, RateLimits(concurrency=8), latency_s_per_call=10.0)
    assert wall.level_binding[0] == "concurrency" and wall.level_seconds[0] == 5 * 10.0


def test_wall_time_over_the_daily_quota_needs_days():
    plan = plan_for(300, tokens=5000)
    tpd = plan.admission_tokens // 3 + 1  # three days' worth
    wall = min_wall_time(plan, RateLimits(concurrency=50, rpm=200, tpm=2_000_000, tpd=tpd))
    assert (wall.binding, wall.days) == ("tpd", 3)
    assert wall.seconds >= 2 * 86_400
    assert "3 days" in wall.describe()


def test_default_latency_is_estimated_from_the_output_budget():
    plan = plan_for(3, tokens=2000, context_strategy="none")
    wall = plan.wall_time
    assert wall.latency_s_per_call is None
    assert wall.seconds > 0 and wall.binding == "latency"


def test_the_plan_chosen_under_a_binding_tpm_limit_has_chunks_that_are_spans_of_the_text() -> None:
    from tests.test_engine import generated_document

    settings = resolve_settings(model="moonshot-v1-8k")
    model = load_catalog().model(settings.model)
    doc = generated_document(chapters=40, paragraphs=9)
    limits = RateLimits(concurrency=8, rpm=0, tpm=20_000)  # binds: chunk budgets are compared without text
    plan = plan_document(doc, model, settings, limits, counter=counter_for(model))
    assert len(plan.chunks) > 1
    assert "".join(c.text for c in plan.chunks) == doc.text
    assert all(c.text == doc.text[c.start : c.end] for c in plan.chunks)
    assert all(c.source is doc.text for c in plan.chunks)  # the text by reference: no copy in the plan
