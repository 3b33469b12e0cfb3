"""Packing the tokens-per-minute window: window counts, the chunk size chosen when TPM binds, level 0 sized by
its first answer (no 400 from a server that counts more than tome's calibration), same tree on a rerun."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.budget import InProcessBudget, VirtualClock
from pipeline.chunking import chunk_document
from pipeline.config import RateLimits
from pipeline.context import context_source
from pipeline.engine import SummaryEngine
from pipeline.engine.scheduler import LevelScheduler
from pipeline.planning import build_plan, plan_document
from pipeline.prompt_room import chunk_room
from pipeline.run_calls import read_calls
from pipeline.settings import model_and_limits, resolve_settings
from pipeline.store import Store
from pipeline.testing import MoonshotTestServer, Obedience
from pipeline.testing.gateway import messages_hash
from pipeline.tokens import counter_for
from pipeline.tpm_packing import admissions, window_chunks, windows_needed
from tests.test_budget import run_calls
from tests.test_engine import Recorder, _client, generated_document

TPM = 20_000
BINDING = RateLimits(concurrency=8, rpm=0, tpm=TPM)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'tome.db'}")


def test_windows_needed_counts_what_a_window_holds() -> None:
    assert windows_needed([[6_000] * 3], TPM) == 1  # three 6,000-token calls fill one 20,000 window
    assert windows_needed([[7_500] * 3], TPM) == 2  # only two 7,500-token ones do
    assert windows_needed([[7_500, 7_500, 7_500, 4_000]], TPM) == 2  # the small one fills the first window
    # The merge goes after the level it merges: in the room the last window of level 0 leaves, else later.
    assert windows_needed([[7_000, 7_000, 7_000], [5_000]], TPM) == 2
    assert windows_needed([[7_000, 7_000, 7_000], [14_000]], TPM) == 3
    # Call 2 carries call 0's summary (lag 2): never before it, even where room is left.
    assert windows_needed([[15_000, 15_000, 1_000]], TPM, lag=2) == 2
    assert windows_needed([[15_000, 15_000, 1_000]], TPM) == 2
    assert windows_needed([[6_000]], TPM, used=15_000) == 2


def test_a_binding_tpm_limit_picks_the_chunk_size_that_packs_best() -> None:
    settings = resolve_settings(model="moonshot-v1-8k")
    model, _ = model_and_limits(settings)
    doc = generated_document(chapters=40, paragraphs=9)
    counter = counter_for(model)
    largest = build_plan(doc, chunk_document(doc, counter, chunk_room(model, settings)), model, settings, BINDING)
    packed = plan_document(doc, model, settings, BINDING, counter=counter)
    unbound = plan_document(doc, model, settings, RateLimits(concurrency=8, tpm=10_000_000), counter=counter)
    assert [c.text for c in unbound.chunks] == [c.text for c in largest.chunks]  # TPM not binding: unchanged
    lag = 8

    def windows(plan) -> int:
        return windows_needed(admissions(plan), TPM, lag=lag)

    assert windows(packed) <= windows(largest)
    if windows(packed) == windows(largest):
        assert packed.admission_tokens <= largest.admission_tokens
    assert "".join(c.text for c in packed.chunks) == doc.text


def test_window_chunks_fill_each_window_and_tile_the_text() -> None:
    settings = resolve_settings(model="moonshot-v1-8k")
    model, _ = model_and_limits(settings)
    doc = generated_document(chapters=40, paragraphs=9)
    counter = counter_for(model)
    room = chunk_room(model, settings)
    first = chunk_document(doc, counter, room)[0]
    fixed = settings.prompt_overhead_tokens + room.carried_context_tokens + settings.chunk_output_tokens
    chunks = window_chunks(
        doc, counter, first.end, 1, tpm=TPM, used=7_000, calibration=model.calibration, fixed=fixed,
        largest=room.max_local_tokens,
    )
    assert "".join(c.text for c in [first, *chunks]) == doc.text and [c.index for c in chunks][0] == 1
    assert all(c.token_count <= room.max_local_tokens for c in chunks)
    costs = [round(c.token_count * model.calibration * 1.03) + fixed for c in chunks]
    # The first window (7,000 already in it) takes the first calls; later windows are filled by k calls each.
    assert 7_000 + costs[0] + costs[1] <= TPM < 7_000 + costs[0] + costs[1] + costs[2]
    assert sum(costs[2:5]) <= TPM and sum(costs[2:5]) >= 0.9 * TPM


async def test_backfill_admits_a_small_call_while_a_big_one_waits_without_delaying_it() -> None:
    clock = VirtualClock()
    budget = InProcessBudget(RateLimits(concurrency=10, tpm=10_000), clock=clock, sleep=clock.sleep)
    # 7,000 in the window; the 5,000 head waits for the next window; the 3,000 behind it fits now.
    admitted = dict(await run_calls(budget, clock, [7_000, 5_000, 3_000], stagger_s=0.001))
    assert admitted[2] == pytest.approx(0.002)
    assert admitted[1] == pytest.approx(60.0, abs=0.01)
    # Here the small call would delay the head (it would still be in the window when the head's room opens,
    # at 62 s): it waits its turn.
    clock2 = VirtualClock()
    budget2 = InProcessBudget(RateLimits(concurrency=10, tpm=10_000), clock=clock2, sleep=clock2.sleep)
    at = dict(await run_calls(budget2, clock2, [4_000, 3_000, 8_000, 2_500], stagger_s=2.0))
    assert at[2] == pytest.approx(62.0) and at[3] > at[2]


def _engine(backend, store: Store, limits: RateLimits) -> SummaryEngine:
    settings = resolve_settings(model="moonshot-v1-8k")
    model, _ = model_and_limits(settings)
    return SummaryEngine(backend=backend, store=store, settings=settings, model=model, limits=limits)


@pytest.mark.parametrize("scale", [1.15, 1.3])
async def test_level0_sized_by_its_first_answer_no_400_and_the_same_tree_on_a_rerun(
    moonshot_server_factory, store: Store, scale: float
) -> None:
    # The engine plans for TPM 20,000; the server counts more than tome's calibration expects (and the client
    # has no budget, so nothing waits for a window here: the bench measures time).
    srv: MoonshotTestServer = moonshot_server_factory(token_scale=scale, obedience=Obedience.disobedient())
    doc = generated_document(chapters=40, paragraphs=9)
    client = Recorder(_client(srv))
    engine = _engine(client, store, BINDING)
    planned = engine.prepare(doc).plan
    result = await engine.summarise(doc)
    await client.aclose()
    log = srv.chat_log()
    assert all(r.status == 200 for r in log), [r.status for r in log]  # not even the first wave is refused
    assert result.usage.splits == 0
    # Level 0's first request went alone; the rest were chunked by the count its answer reported.
    first = client.requests[0]
    assert "part 1 of" in first.messages[-1].content
    assert [n.span for n in result.levels[0]] != [(c.start, c.end) for c in planned.chunks]  # chunked again
    assert result.levels[0][0].span[1] == planned.chunks[0].end  # chunk 0 kept as planned (its answer counts)
    covered = [n.span for n in result.levels[0]]
    assert covered[0][0] == 0 and covered[-1][1] == len(doc.text)
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False))
    rerun = await _engine(_client(srv), store, BINDING).summarise(doc)
    assert rerun.final == result.final and rerun.usage.calls == 0  # same chunks, same prompts: all cached


async def test_merges_start_while_level0_runs_and_a_rerun_is_all_cached(moonshot_server_factory, store: Store) -> None:
    # TPM binds (the engine plans for it; the client has no budget, so nothing waits for a window here).
    srv: MoonshotTestServer = moonshot_server_factory(token_scale=1.15, obedience=Obedience.disobedient())
    doc = generated_document(chapters=120, paragraphs=9)
    client = Recorder(_client(srv))
    engine = _engine(client, store, BINDING)
    result = await engine.summarise(doc)
    await client.aclose()
    log = [r for r in srv.chat_log() if r.status == 200]
    assert len(log) == result.usage.calls and all(r.status == 200 for r in srv.chat_log())
    # Admission counted every prompt as the server did (its token-count endpoint), never less.
    server = {r.messages_hash: r.prompt_tokens for r in log}
    for request in client.requests:
        counted = server[messages_hash([m.as_dict() for m in request.messages])]
        assert counted <= request.estimated_prompt_tokens <= counted + 8
    merges = [i for i, r in enumerate(client.requests) if "<summary" in r.messages[-1].content]
    maps = [i for i, r in enumerate(client.requests) if "<summary" not in r.messages[-1].content]
    levels = result.levels
    assert len(levels) == 3 and len(levels[1]) > 1
    assert merges[0] < maps[-1]  # a merge was sent before level 0's last call
    # Level 0's calls reached the backend (and its rate budget) in their order, whatever their count took.
    parts = [int(re.search(r"part (\d+) of", client.requests[i].messages[-1].content).group(1)) for i in maps]
    assert parts == sorted(parts)
    # Level 1's groups are consecutive and cover level 0; each merge carries what a level run at once would.
    assert [j for n in levels[1] for j in n.inputs] == list(range(len(levels[0])))
    assert [n.context for n in levels[1]] == ["none", *(f"tail:{i}" for i in range(len(levels[1]) - 1))]
    rerun = await _engine(_client(srv), store, BINDING).summarise(doc)
    assert rerun.final == result.final and rerun.usage.calls == 0
    assert [[n.text for n in level] for level in rerun.levels] == [[n.text for n in level] for level in levels]


def test_prefix_groups_are_known_from_a_prefix_and_the_same_with_every_size() -> None:
    import random

    from pipeline.merge_plan import even_share, prefix_groups

    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(3, 60)
        sizes = [rng.randint(150, 600) for _ in range(n)]
        cap = rng.randint(1_300, 7_000)
        share = even_share(sizes[0], n, cap)
        whole = prefix_groups(sizes, cap, n, share=share)
        assert [j for g in whole for j in g] == list(range(n))  # consecutive, covering every summary
        assert all(sum(sizes[j] for j in g) <= share for g in whole if len(g) > 1)
        for m in range(n):  # what a prefix decides is never changed by the summaries after it
            closed = prefix_groups(sizes[:m], cap, n, share=share)
            assert closed == whole[: len(closed)]
            assert all(g[-1] + 1 < m for g in closed)  # closed only once the summary after it exists
    # Even groups rather than one full group and a small rest.
    assert [len(g) for g in prefix_groups([200] * 32, 6_000, 32, share=even_share(200, 32, 6_000))] == [17, 15]


async def test_the_servers_region_counts_size_any_stretch_within_two_percent(moonshot_server_factory) -> None:
    import random

    from pipeline.engine import server_counts
    from pipeline.llm.types import Message
    from pipeline.testing import ServerTokenizer

    srv: MoonshotTestServer = moonshot_server_factory(token_scale=1.15)
    client = _client(srv)
    doc = generated_document(chapters=40, paragraphs=9)
    counter = counter_for(model_and_limits(resolve_settings(model="moonshot-v1-8k"))[0])
    ratios = await server_counts.measure(doc.text, counter, client.count_prompt_tokens)
    assert ratios is not None and len(ratios.ratios) > 5
    server = ServerTokenizer(token_scale=1.15)
    rng = random.Random(3)
    for _ in range(30):  # stretches of 3-8k tokens anywhere in the text
        a = rng.randrange(0, len(doc.text) - 40_000)
        b = a + rng.randrange(12_000, 32_000)
        estimate = ratios.tokens(a, b, counter.count(doc.text[a:b]))
        assert abs(estimate / server.count(doc.text[a:b]) - 1) < 0.02
    # What a prompt costs besides its text, as the server counts it.
    messages = [Message("system", "Summarise."), Message("user", "Some words here. " + doc.text[:2000])]
    framing = await server_counts.framing(messages, doc.text[:2000], client.count_prompt_tokens)
    charged = server.prompt_tokens([m.as_dict() for m in messages]) - server.count(doc.text[:2000])
    assert framing is not None and charged <= framing <= charged + 8  # never less than the chat call charges
    await client.aclose()


async def test_every_level_starts_as_soon_as_its_summaries_exist_and_a_rerun_is_all_cached(
    moonshot_server_factory, tmp_path: Path
) -> None:
    # A 3,000-token window makes a small book four levels deep (two of merges below the final call).
    srv: MoonshotTestServer = moonshot_server_factory(token_scale=1.15, obedience=Obedience.disobedient())
    doc = generated_document(chapters=40, paragraphs=9)
    settings = resolve_settings(model="moonshot-v1-8k")
    model = replace(model_and_limits(settings)[0], context_tokens=3_000)

    def engine(backend, store: Store) -> SummaryEngine:
        return SummaryEngine(backend=backend, store=store, settings=settings, model=model, limits=BINDING)

    store = Store(f"sqlite:///{tmp_path / 'tome.db'}")
    client = Recorder(_client(srv))
    result = await engine(client, store).summarise(doc)
    await client.aclose()
    levels = result.levels
    assert len(levels) >= 4 and len(levels[2]) > 1 and len(levels[-1]) == 1
    # Each request's level, by the summaries it merges (a map call's text is a chunk: level 0).
    level_of = {
        "\n\n".join(levels[k - 1][j].text for j in node.inputs): k for k in range(1, len(levels)) for node in levels[k]
    }
    sent = [level_of.get(r.source_text, 0) for r in client.requests]
    last = {k: max(i for i, s in enumerate(sent) if s == k) for k in range(len(levels))}
    assert sent.index(1) < last[0] and sent.index(2) < last[1]  # a level's merges go before the level below ends
    # Every node of the tree came from one request, none sent twice (a merge made early is not made again).
    hashes = [messages_hash([m.as_dict() for m in r.messages]) for r in client.requests]
    assert len(set(hashes)) == len(hashes) == sum(len(level) for level in levels) == result.usage.calls
    # and each is in the run's record of its calls (`tome runs show`), at its level.
    recorded = [(c.level, c.node) for c in read_calls(store, result.run_id) if c.outcome == "answer"]
    assert sorted(recorded) == sorted((n.level, n.index) for level in levels for n in level)
    # Groups are consecutive and cover the level below; each carries the context a level run at once would.
    lag = result.settings["effective_lag"]
    for k in range(1, len(levels)):
        assert [j for node in levels[k] for j in node.inputs] == list(range(len(levels[k - 1])))
        sources = [context_source(n.index, strategy=settings.context_strategy, lag=lag) for n in levels[k]]
        assert [n.context for n in levels[k]] == [LevelScheduler.context_label(s, "carried" if s.carries else "") for s in sources]
    rerun = await engine(_client(srv), store).summarise(doc)
    assert rerun.usage.calls == 0 and rerun.final == result.final
    assert [[n.text for n in level] for level in rerun.levels] == [[n.text for n in level] for level in levels]


async def test_a_run_interrupted_while_levels_run_early_stops_them_and_resumes_to_the_same_tree(
    moonshot_server_factory, tmp_path: Path
) -> None:
    import asyncio

    from pipeline.testing import Latency

    srv: MoonshotTestServer = moonshot_server_factory(
        token_scale=1.15, obedience=Obedience.disobedient(), latency=Latency(ttft_s=0.02, per_token_s=0.0)
    )
    doc = generated_document(chapters=40, paragraphs=9)
    settings = resolve_settings(model="moonshot-v1-8k")
    model = replace(model_and_limits(settings)[0], context_tokens=3_000)

    def engine(backend, store: Store) -> SummaryEngine:
        return SummaryEngine(backend=backend, store=store, settings=settings, model=model, limits=BINDING)

    reference = await engine(_client(srv), Store(f"sqlite:///{tmp_path / 'reference.db'}")).summarise(doc)
    assert len(reference.levels) >= 4
    level2 = {"\n\n".join(reference.levels[1][j].text for j in n.inputs) for n in reference.levels[2]}

    class Interrupting(Recorder):
        """Signals once a level-2 merge has been sent (the levels above still to come)."""

        merging = asyncio.Event()

        async def complete(self, request):
            if request.source_text in level2:
                self.merging.set()
            return await super().complete(request)

    store = Store(f"sqlite:///{tmp_path / 'tome.db'}")
    client = Interrupting(_client(srv))
    run = asyncio.ensure_future(engine(client, store).summarise(doc))
    await client.merging.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    sent = len(client.requests)
    await asyncio.sleep(0.3)
    assert len(client.requests) == sent  # nothing started early goes on after the run was stopped
    assert store.list_runs()[0].status == "interrupted"
    resumed = await engine(_client(srv), store).summarise(doc)
    assert [[n.text for n in level] for level in resumed.levels] == [[n.text for n in level] for level in reference.levels]
    assert 0 < resumed.usage.calls < reference.usage.calls  # what the interrupted run stored is not asked again
