"""The recursive engine against the project's Moonshot-compatible test server (real HTTP, real SQLite)."""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.config import RateLimits
from pipeline.documents.model import Document, Section
from pipeline.engine import SummaryEngine
from pipeline.errors import ContentFilterError, DepthLimitError, QuotaExhaustedError
from pipeline.extractive import ExtractiveBackend
from pipeline.llm.client import MoonshotClient
from pipeline.llm.retry import RetryPolicy
from pipeline.llm.types import ChatRequest, Completion, Usage
from pipeline.progress_events import RecordingProgress
from pipeline.settings import model_and_limits, resolve_settings
from pipeline.store import Store
from pipeline.testing import MoonshotTestServer

MARKER = re.compile(r"⟦[A-Za-z0-9_-]+⟧")
# Uncommon words: the test server counts this text ~6 % above cl100k, inside the model's 1.10 calibration.
_NOUNS = [
    "cartographer",
    "lighthouse-keeper",
    "apothecary",
    "silversmith",
    "ferryman",
    "chronometer",
    "tapestry",
    "almanac",
    "weathervane",
    "quartermaster",
]
_VERBS = [
    "deciphered",
    "bartered",
    "embroidered",
    "reconciled",
    "catalogued",
    "smuggled",
    "whittled",
    "refurbished",
]
_ADJS = ["weatherbeaten", "moth-eaten", "copper-bound", "salt-stained", "fog-bound", "lopsided", "threadbare"]


def generated_document(chapters: int = 24, paragraphs: int = 9, *, seed: int = 7) -> Document:
    """A deterministic English book with titled chapters (always available, unlike the corpus)."""
    rng = random.Random(seed)
    parts: list[str] = []
    sections: list[Section] = []
    pos = 0
    for c in range(1, chapters + 1):
        title = f"Chapter {c}: The {rng.choice(_ADJS).title()} {rng.choice(_NOUNS).title()}"
        paras = []
        for _ in range(paragraphs):
            sentences = [
                f"The {rng.choice(_ADJS)} {rng.choice(_NOUNS)} {rng.choice(_VERBS)} the {rng.choice(_NOUNS)}, "
                f"near the {rng.choice(_ADJS)} {rng.choice(_NOUNS)} in chapter {c}."
                for _ in range(rng.randint(4, 8))
            ]
            paras.append(" ".join(sentences))
        body = f"{title}\n\n" + "\n\n".join(paras) + "\n\n"
        sections.append(Section(title, pos, pos + len(body)))
        parts.append(body)
        pos += len(body)
    return Document(
        path=Path("generated.txt"),
        text="".join(parts),
        title="The Generated Chronicle",
        language="en",
        sections=tuple(sections),
    )


def chinese_document(chapters: int = 6) -> Document:
    rng = random.Random(3)
    names = ["孫悟空", "唐僧", "豬八戒", "沙僧", "觀音", "玉帝"]
    places = ["花果山", "水簾洞", "天宮", "五行山", "流沙河", "高老莊"]
    parts, sections, pos = [], [], 0
    for c in range(1, chapters + 1):
        title = f"第{c}回"
        paras = [
            "".join(
                f"{rng.choice(names)}在{rng.choice(places)}遇見了{rng.choice(names)}，二人說了許多話。"
                for _ in range(6)
            )
            for _ in range(8)
        ]
        body = f"{title}\n\n" + "\n\n".join(paras) + "\n\n"
        sections.append(Section(title, pos, pos + len(body)))
        parts.append(body)
        pos += len(body)
    return Document(
        path=Path("xiyou.txt"), text="".join(parts), title="西遊", language="zh", sections=tuple(sections)
    )


def with_markers(doc: Document, engine: SummaryEngine) -> tuple[Document, list[str]]:
    """``doc`` with a unique marker ⟦Cnnnn⟧ at a sentence start near the middle of each of its chunks."""
    chunks = engine.chunk(doc)
    inserts: list[tuple[int, str]] = []
    for c in chunks:
        mid = c.start + (c.end - c.start) // 2
        cut = doc.text.find(". ", mid, c.end)
        cut = cut + 2 if cut >= 0 else mid
        inserts.append((cut, f"⟦C{c.index + 1:04d}⟧ "))
    text, shift, out = doc.text, 0, []
    for at, marker in inserts:
        out.append(text[shift:at] + marker)
        shift = at
    out.append(text[shift:])
    new_text = "".join(out)

    def moved(offset: int) -> int:
        return offset + sum(len(m) for at, m in inserts if at <= offset)

    sections = tuple(Section(s.title, moved(s.start), moved(s.end), s.level) for s in doc.sections)
    return replace(doc, text=new_text, sections=sections), [m.strip() for _, m in inserts]


class Recorder:
    """A real backend wrapper that keeps every request it forwards (prompts are checked byte for byte)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache_namespace = inner.cache_namespace
        self.billable = inner.billable
        self.calibration = inner.calibration
        self.headroom = inner.headroom
        self.reads_prompts = inner.reads_prompts
        self.cutoff_recovery = inner.cutoff_recovery
        self.base_url = inner.base_url
        self.extracts_files = False
        self.on_retry = None
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        return await self.inner.complete(request)

    async def count_prompt_tokens(self, messages):
        count = getattr(self.inner, "count_prompt_tokens", None)
        return await count(messages) if count is not None else None

    async def aclose(self) -> None:
        await self.inner.aclose()


def _client(server: MoonshotTestServer) -> MoonshotClient:
    async def no_sleep(_s: float) -> None:
        return None

    return MoonshotClient(
        base_url=server.base_url, api_key=server.api_key, sleep=no_sleep, retry=RetryPolicy(max_retries=2)
    )


def _engine(backend, store: Store, **settings_kw) -> SummaryEngine:
    max_in_flight = settings_kw.pop("max_in_flight", 8)
    settings = resolve_settings(**settings_kw)
    model, _ = model_and_limits(settings)
    return SummaryEngine(
        backend=backend, store=store, settings=settings, model=model, max_in_flight=max_in_flight
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'tome.db'}")


async def test_every_chunk_reaches_the_final_summary_generated(moonshot_server, store):
    client = _client(moonshot_server)
    engine = _engine(client, store, length="short")
    doc, markers = with_markers(generated_document(chapters=80), engine)
    result = await engine.summarise(doc)
    await client.aclose()
    assert len(result.levels[0]) == len(markers) >= 10
    for chunk in result.levels[0]:
        assert MARKER.search(chunk.text)
    assert len(result.levels) >= 3  # map, at least one intermediate merge level, final
    missing = [m for m in markers if m not in result.final]
    assert not missing
    made = moonshot_server.gateway.stats().requests
    assert result.usage.calls == made == len(result.nodes) + result.usage.retries  # retries: cut-off answers


@pytest.mark.corpus
async def test_every_chunk_reaches_the_final_summary_alice(moonshot_server, store, corpus):
    from pipeline.documents import load_document

    client = _client(moonshot_server)
    engine = _engine(client, store)
    doc, markers = with_markers(load_document(corpus / "books" / "en_alice_in_wonderland_pg11.txt"), engine)
    result = await engine.summarise(doc)
    await client.aclose()
    assert len(markers) >= 6
    assert [m for m in markers if m not in result.final] == []
    assert any("CHAPTER" in title for title, _ in result.sections)


async def test_carry_forward_in_prompts_and_byte_identical_reruns(moonshot_server, tmp_path):
    prompts = []
    for run in range(2):
        client = Recorder(_client(moonshot_server))
        engine = _engine(
            client, Store(f"sqlite:///{tmp_path / f'run{run}.db'}"), context_lag=2, max_in_flight=3
        )
        state = engine.prepare(generated_document())
        assert state.lag == 3  # max(context_lag, concurrency)
        nodes = await engine.run_level(state, 0)
        by_index = {}
        for req in client.requests:
            part = int(re.search(r"It is part (\d+) of", req.messages[1].content).group(1))
            by_index[part - 1] = req.messages[1].content
        assert "<context>" not in by_index[0]
        for i in range(1, len(nodes)):
            user = by_index[i]
            ctx = re.search(r"<context>\n(.*?)\n</context>", user, re.S).group(1)
            assert user.index("</context>") < user.index("<text>\n")
            assert "background" in req.messages[0].content  # said once, in the shared system message
            if i >= 3:
                assert nodes[i].context == f"summary:{i - 3}"
                assert nodes[i - 3].text.endswith(ctx)  # the tail of call i-3's summary
            else:
                assert nodes[i].context == f"tail:{i - 1}"
                assert ctx in state.chunks[i - 1].text.replace("\n\n", "\n\n")
        prompts.append(sorted(tuple(m.content for m in req.messages) for req in client.requests))
        await client.aclose()
    assert prompts[0] == prompts[1]


async def test_context_strategy_none_carries_nothing(moonshot_server, store):
    client = Recorder(_client(moonshot_server))
    engine = _engine(client, store, context_strategy="none")
    result = await engine.summarise(generated_document(chapters=12))
    await client.aclose()
    assert all("<context>" not in r.messages[1].content for r in client.requests)
    assert {n.context for n in result.nodes} == {"none"}


async def test_context_is_bounded_and_cut_at_sentences(moonshot_server, store):
    client = Recorder(_client(moonshot_server))
    engine = _engine(client, store, context_lag=1, max_in_flight=1)
    state = engine.prepare(generated_document(chapters=10))
    await engine.run_level(state, 0)
    await client.aclose()
    assert state.level_calibration == [engine.model.calibration]
    budget = state.room.with_output(state.plan.levels[0].output_tokens).carried_context_tokens
    sources = [c.text.strip() for c in state.chunks]  # lag 1: call i carries the summary of call i-1
    summaries = [n.text for n in state.levels[0]]
    for i, req in enumerate(client.requests[1:], start=1):
        ctx = re.search(r"<context>\n(.*?)\n</context>", req.messages[1].content, re.S).group(1)
        assert engine.counter.count(ctx) * engine.model.calibration <= budget
        source = summaries[i - 1] if state.lag == 1 else sources[i - 1]
        assert source.endswith(ctx)  # the tail of the earlier text ...
        before = source[: len(source) - len(ctx)].rstrip()
        assert before == "" or before[-1] in ".!?"  # ... starting at a sentence boundary
        assert len(ctx) < len(source) or engine.counter.count(source) * engine.model.calibration <= budget


def chat_statuses(server: MoonshotTestServer) -> dict[int, int]:
    """Chat requests by status (the server's by_status also counts its token-count endpoint's answers)."""
    return dict(Counter(r.status for r in server.chat_log()))


async def test_rerun_makes_zero_calls_and_records_runs(moonshot_server, store):
    doc = generated_document(chapters=12)
    client = _client(moonshot_server)
    first = await _engine(client, store).summarise(doc)
    made = moonshot_server.gateway.stats().requests
    second = await _engine(client, store).summarise(doc)
    await client.aclose()
    assert moonshot_server.gateway.stats().requests == made
    assert (
        second.usage.calls == 0
        and second.usage.cached_calls == chat_statuses(moonshot_server)[200]
    )
    assert second.final == first.final and all(n.cached for n in second.nodes)
    runs = store.list_runs()
    assert [r.status for r in runs] == ["done", "done"]
    assert runs[1].calls == made and runs[0].cached_calls == made
    assert runs[1].prompt_tokens > 0 and runs[1].cost > 0
    assert "api_key" not in str(runs[0].settings)


@pytest.mark.parametrize("scale", [1.15, 1.6])
async def test_server_counting_more_tokens_still_completes(moonshot_server_factory, store, scale):
    # No token-count endpoint: tome learns the server's tokenizer from refusals and answers alone.
    server = moonshot_server_factory(token_scale=scale, count_endpoint=False)
    client = _client(server)
    engine = _engine(client, store)
    doc = generated_document(chapters=30)
    result = await engine.summarise(doc)
    made = server.gateway.stats().requests
    assert result.final
    again = await _engine(client, store).summarise(doc)
    await client.aclose()
    assert server.gateway.stats().requests == made  # overflows and splits are cached too
    assert again.final == result.final
    if scale > 1.5:  # far beyond the calibration: rejections and predicted overflows split inputs
        assert result.usage.splits > 0 and server.gateway.stats().by_status.get(400, 0) > 0


async def test_context_length_error_splits_the_chunk_and_raises_calibration(moonshot_server, store):
    doc = generated_document(chapters=1, paragraphs=28)
    client = _client(moonshot_server)
    engine = _engine(client, store)
    marked, markers = with_markers(doc, engine)
    # "exceeded model token limit: 8192 (requested: 9000)": the prompt alone (9000 - max_tokens) is over the window
    moonshot_server.gateway.inject("context_length", requested=9000)
    state = engine.prepare(marked)
    assert len(state.chunks) == 1 and state.chunks[0].token_count > 4000
    while not state.done:
        await engine.run_level(state, state.next_level)
    result = engine.finish(state)
    assert chat_statuses(moonshot_server) == {400: 1, 200: 2}  # the rejected call, then its two halves
    # one definition of calls: the rejected request is a call too, on the node and in the totals
    assert result.usage.splits == 1 and result.levels[0][0].calls == 3 == result.usage.calls
    assert all(m in result.final for m in markers)
    assert state.observed_calibration > engine.model.calibration  # learned from "requested: 9000"
    rerun = await _engine(client, store).summarise(marked)
    await client.aclose()
    assert moonshot_server.gateway.stats().requests == 3  # the rejection is cached: no call repeats
    assert rerun.final == result.final


async def test_refusal_whose_prompt_fits_is_sent_again_with_less_room_not_split(moonshot_server, store):
    doc = generated_document(chapters=2, paragraphs=28)
    client = Recorder(_client(moonshot_server))
    engine = _engine(client, store)
    state = engine.prepare(doc)
    assert len(state.chunks) == 2
    # The server counts the first prompt as 7,700 tokens: 8192 - 7700 - 1 = 491 tokens of room, more than a
    # level-0 call asks for, so the same prompt goes again with max_tokens 491: no split, nothing paid twice.
    moonshot_server.gateway.inject("context_length", requested=7700 + settings_max(engine))
    while not state.done:
        await engine.run_level(state, state.next_level)
    result = engine.finish(state)
    log = moonshot_server.chat_log()
    assert [r.status for r in log].count(400) == 1 and len(log) == 4  # two chunks (one refitted), the merge
    firsts = [r.messages for r in client.requests if r.max_tokens == settings_max(engine)]
    again = next(r for r in client.requests if r.max_tokens == 8192 - 7700 - 1)
    assert len(firsts) == 2 and again.messages in firsts  # the refused prompt, unchanged
    assert again.estimated_prompt_tokens >= 7700  # admitted at (at least) the server's own count
    assert result.usage.splits == 0 and result.usage.refitted == 1 and result.usage.calls == 4
    assert state.observed_calibration > engine.model.calibration  # learned from the refusal's count
    rerun = await _engine(client, store).summarise(doc)
    assert moonshot_server.gateway.stats().requests == 4  # the refusal and the decision are recorded: no call repeats
    assert rerun.final == result.final
    await client.aclose()


def settings_max(engine: SummaryEngine) -> int:
    """max_tokens of a level-0 call below the final one: the planned chunk output."""
    return engine.settings.chunk_output_tokens


async def test_cut_off_answer_is_retried_stricter(moonshot_server, store):
    doc = generated_document(chapters=1, paragraphs=4)
    cut = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "moonshot-v1-8k",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Half a sen"}, "finish_reason": "length"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    moonshot_server.gateway.inject("response", body=cut)
    client = Recorder(_client(moonshot_server))
    result = await _engine(client, store).summarise(doc)
    await client.aclose()
    assert len(client.requests) == 2
    first, retry = client.requests
    assert "too long" in retry.messages[1].content and "too long" not in first.messages[1].content
    assert retry.max_tokens > first.max_tokens
    words = [int(re.search(r"at most (\d+) words", r.messages[1].content).group(1)) for r in client.requests]
    assert words[1] < words[0]
    assert result.usage.retries == 1 and not result.levels[0][0].truncated
    assert result.final != "Half a sen"


async def test_cut_off_twice_is_kept_and_flagged(moonshot_server, store, caplog):
    doc = generated_document(chapters=1, paragraphs=4)
    cut = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "moonshot-v1-8k",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Cut short"}, "finish_reason": "length"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    moonshot_server.gateway.inject("response", times=2, body=cut)
    client = _client(moonshot_server)
    with caplog.at_level(logging.WARNING, logger="tome.engine"):
        result = await _engine(client, store).summarise(doc)
    await client.aclose()
    node = result.levels[0][0]
    assert node.truncated and node.text == "Cut short" and result.usage.truncated == 1
    assert any("truncated" in r.message for r in caplog.records)
    assert result.to_json_dict()["tree"][0]["truncated"] is True


class VerboseBackend:
    """A model that ignores every length instruction: it drops only the last tenth of its input."""

    name = cache_namespace = "verbose"
    billable = reads_prompts = True
    extracts_files = False
    cutoff_recovery = "trim"
    calibration = headroom = on_retry = base_url = None

    async def complete(self, request: ChatRequest) -> Completion:
        source = request.source_text or ""
        text = source[: max(1, int(len(source) * 0.9))]
        return Completion(
            content=text, finish_reason="stop", usage=Usage(len(source) // 4, len(text) // 4), model="v"
        )

    async def aclose(self) -> None:
        return None


async def test_depth_limit_error_when_summaries_do_not_shrink(store):
    settings = replace(resolve_settings(), max_depth=3)
    model, _ = model_and_limits(settings)
    engine = SummaryEngine(backend=VerboseBackend(), store=store, settings=settings, model=model)
    with pytest.raises(DepthLimitError):
        await engine.summarise(generated_document(chapters=12))
    assert store.list_runs()[0].status == "failed"
    assert store.cache_stats().entries > 0  # work done is kept


class RejectsOneTitle:
    """The real client, except that the provider's content filter rejects one document's calls after its first two."""

    def __init__(self, inner, title: str) -> None:
        self.inner = inner
        self.name = self.cache_namespace = inner.name
        self.billable = self.reads_prompts = True
        self.extracts_files = False
        self.cutoff_recovery = "trim"
        self.calibration = self.headroom = self.on_retry = self.base_url = None
        self.title = title
        self.seen = 0
        self.failed = False
        self.others_after_failure = 0

    async def complete(self, request: ChatRequest) -> Completion:
        if self.title in request.messages[1].content:
            self.seen += 1
            if self.seen > 2:
                self.failed = True
                raise ContentFilterError("The request was rejected by the content filter.", status=400)
        elif self.failed:
            self.others_after_failure += 1
        return await self.inner.complete(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_one_engine_two_concurrent_documents_a_failure_stops_only_its_own(moonshot_server, store):
    import asyncio

    from pipeline.testing import Latency

    moonshot_server.gateway.configure(latency=Latency(ttft_s=0.01, per_token_s=0.0))
    backend = RejectsOneTitle(_client(moonshot_server), "The Failing Chronicle")
    engine = _engine(backend, store, max_in_flight=3)
    good = generated_document(chapters=16)
    bad = replace(generated_document(chapters=16, seed=11), title="The Failing Chronicle", path=Path("bad.txt"))
    progress = {"good": RecordingProgress(), "bad": RecordingProgress()}
    results = await asyncio.gather(
        engine.summarise(good, progress=progress["good"]),
        engine.summarise(bad, progress=progress["bad"]),
        return_exceptions=True,
    )
    await backend.aclose()
    assert isinstance(results[1], ContentFilterError)
    assert results[0].final and results[0].document == "generated.txt"
    assert backend.others_after_failure > 0  # the good document kept calling after the bad one failed
    statuses = {Path(r.document).name: r.status for r in store.list_runs()}
    assert statuses == {"generated.txt": "done", "bad.txt": "failed"}
    assert ("level_finished", 0) in progress["good"].events
    assert ("level_finished", 0) not in progress["bad"].events


async def test_quota_stops_new_calls_lets_in_flight_finish_and_resumes(moonshot_server_factory, store):
    from pipeline.testing import Latency

    doc = generated_document(chapters=30)
    reference = moonshot_server_factory()
    ref_client = _client(reference)
    ref_store = Store(str(store.url).replace("tome.db", "ref.db"))
    await _engine(ref_client, ref_store, max_in_flight=4).summarise(doc)
    await ref_client.aclose()
    total = reference.gateway.stats().requests
    admitted = reference.gateway.stats().tokens_admitted

    server = moonshot_server_factory(
        limits=RateLimits(concurrency=0, tpd=admitted // 2), latency=Latency(ttft_s=0.02, per_token_s=0.0)
    )
    client = _client(server)
    with pytest.raises(QuotaExhaustedError):
        await _engine(client, store, max_in_flight=4).summarise(doc)
    stats = server.gateway.stats()
    assert stats.in_flight == 0
    ok = chat_statuses(server).get(200, 0)
    assert 0 < ok < total
    assert store.cache_stats().entries == ok  # every answered call (in flight at the stop too) is cached
    assert stats.by_status.get(429, 0) <= 4  # new calls stopped: at most one rejection per slot
    assert store.list_runs()[0].status == "quota"
    server.gateway.reset_day()  # the next day: a fresh quota
    server.gateway.configure(limits=RateLimits(concurrency=0, tpd=admitted * 2))
    server.gateway.reset_stats()
    result = await _engine(client, store, max_in_flight=4).summarise(doc)
    await client.aclose()
    assert result.final
    assert chat_statuses(server).get(200, 0) == total - ok


async def test_chinese_document_gets_chinese_prompts_and_summary(moonshot_server, store):
    client = Recorder(_client(moonshot_server))
    engine = _engine(client, store)
    state = engine.prepare(chinese_document(chapters=40))
    while not state.done:
        await engine.run_level(state, state.next_level)
    result = engine.finish(state)
    await client.aclose()
    # The server counts ~1.5 hanzi per token, well below the model's CJK calibration (0.6 per cl100k token):
    # level 0 runs with the server's sampled count, and merge levels with what the answers reported.
    assert state.level_calibration[0] < 0.5 < engine.model.calibration_cjk == 0.6
    assert len(state.level_calibration) >= 2 and state.level_calibration[1] < 0.55
    asked = [int(re.search(r"不超过(\d+)字", r.messages[1].content).group(1)) for r in client.requests]
    per_token = [a / r.max_tokens for a, r in zip(asked, client.requests, strict=True)]
    assert max(per_token[len(state.chunks) :]) > 1.05 * max(per_token[: len(state.chunks)])
    assert all(
        "不超过" in r.messages[1].content and "at most" not in r.messages[1].content for r in client.requests
    )
    assert "中文" in client.requests[0].messages[0].content
    assert re.search(r"[\u4e00-\u9fff]{10}", result.final)
    assert result.to_markdown().startswith("# Summary: 西遊")  # the same Markdown in every language


async def test_extractive_backend_runs_the_same_tree_offline(store):
    doc = generated_document()
    engine = _engine(ExtractiveBackend(), store, length="short")
    marked, markers = with_markers(doc, engine)
    result = await engine.summarise(marked)
    assert [m for m in markers if m not in result.final] == []
    assert result.usage.cost == 0 and result.backend == "extractive"
    again = await _engine(ExtractiveBackend(), store, length="short").summarise(marked)
    assert again.usage.calls == 0 and again.final == result.final


async def test_outputs_markdown_json_and_progress(moonshot_server, store):
    progress = RecordingProgress()
    client = _client(moonshot_server)
    engine = _engine(client, store)
    engine.progress = progress
    result = await engine.summarise(generated_document(chapters=12))
    await client.aclose()
    md = result.to_markdown()
    assert md.startswith("# Summary: The Generated Chronicle")
    assert "### Chapter 1: " in md and result.final.strip() in md
    data = result.to_json_dict()
    assert data["final"] == result.final and data["usage"]["calls"] == result.usage.calls
    node = data["tree"][0]
    assert set(node) >= {
        "level",
        "index",
        "inputs",
        "span",
        "pages",
        "section",
        "text",
        "tokens",
        "cached",
        "truncated",
    }
    top = data["tree"][-1]
    assert top["span"] == [0, len(generated_document(chapters=12).text)]
    kinds = [e[0] for e in progress.events]
    assert kinds[0] == "plan_ready" and kinds[1] == "level_started" and kinds[-1] == "level_finished"
    assert kinds.count("call_finished") == len(result.nodes)
    levels = [n.level for n in result.nodes]
    assert levels == sorted(levels)


async def test_level_by_level_api_matches_summarise(moonshot_server, store):
    client = _client(moonshot_server)
    engine = _engine(client, store)
    state = engine.prepare(generated_document(chapters=12))
    level = 0
    while not state.done:
        nodes = await engine.run_level(state, level)
        assert nodes == state.levels[level]
        if level == 1:  # a retried level task rebuilds the same prompts: all from the cache
            made = moonshot_server.gateway.stats().requests
            again = await engine.run_level(state, level)
            assert moonshot_server.gateway.stats().requests == made
            assert [n.text for n in again] == [n.text for n in nodes] and all(n.cached for n in again)
        level += 1
    result = engine.finish(state)
    await client.aclose()
    assert result.final == state.levels[-1][0].text
    assert store.get_run(state.run_id).status == "done"


def test_effective_lag_is_at_least_the_concurrency(store):
    engine = _engine(ExtractiveBackend(), store, context_lag=4, max_in_flight=8)
    state = engine.prepare(generated_document(chapters=4))
    assert state.lag == 8
    small = _engine(ExtractiveBackend(), store, context_lag=4, max_in_flight=2)
    assert small.prepare(generated_document(chapters=4)).lag == 4
