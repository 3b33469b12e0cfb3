"""`evaluate()` end to end: real SQLite store, the offline backend and the local Moonshot-compatible server."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from pipeline.errors import QuotaExhaustedError
from pipeline.evaluation.dataset import EvalItem, load_dataset
from pipeline.evaluation.judge import Coherence, judge_coherence
from pipeline.evaluation.records import EvalRecords
from pipeline.evaluation.results import EvalReport, ItemResult
from pipeline.evaluation.runner import Evaluation, Judge, evaluate
from pipeline.extractive import ExtractiveBackend
from pipeline.llm.client import MoonshotClient
from pipeline.llm.retry import RetryPolicy
from pipeline.llm.types import ChatBackend
from pipeline.sentences import split_sentences
from pipeline.settings import model_and_limits, resolve_settings
from pipeline.store import Store
from pipeline.testing import MoonshotTestServer

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "eval_sample.jsonl"
SYSTEMS = ["tome", "lead", "textrank"]

# A short story whose first sentence opens with a pronoun: the test server's judge flags exactly that sentence
# (ENTITY_OMISSION) in any summary that starts with it, so coherence is not 1.0 for the lead baseline.
PRONOUN_STORY = "\n\n".join(
    " ".join(
        f"{opening} the keeper walked to the {place} at dusk and wrote the weather into the log number {p}{s}."
        for s, opening in enumerate(["She said that" if p == 0 else "Every evening", "Later", "Then"])
    )
    for p, place in enumerate(["tower", "harbour", "cliff", "village", "boathouse", "lantern room"])
)
PRONOUN_ITEM = EvalItem(
    "pronoun",
    PRONOUN_STORY,
    ("The keeper walks to the tower, the harbour and the cliff and keeps the weather log every evening.",),
    "en",
)
# Normalises to nothing: the engine refuses it (EmptyDocumentError) while the dataset loader accepts it.
EMPTY_ITEM = EvalItem(
    "illustration-only", "[Illustration: a lamp on a rock]", ("A lamp stands on a rock.",), "en"
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'tome.db'}")
    yield s
    s.close()


@pytest.fixture(scope="module")
def sample_items() -> list[EvalItem]:
    if not SAMPLE.is_file():
        pytest.skip("data/eval_sample.jsonl is absent")
    items, preset = load_dataset(SAMPLE)
    assert preset == "plain" and [i.language for i in items] == ["en", "zh"]
    return items


@pytest.fixture
async def client(moonshot_server: MoonshotTestServer) -> AsyncIterator[MoonshotClient]:
    async def no_sleep(_seconds: float) -> None:
        return None

    c = MoonshotClient(
        base_url=moonshot_server.base_url,
        api_key=moonshot_server.api_key,
        sleep=no_sleep,
        retry=RetryPolicy(max_retries=1),
    )
    yield c
    await c.aclose()


def evaluation(backend: ChatBackend, store: Store, **kw: object) -> Evaluation:
    settings = resolve_settings()
    model, limits = model_and_limits(settings)
    return Evaluation(backend=backend, store=store, settings=settings, model=model, limits=limits, **kw)  # type: ignore[arg-type]


async def run(items: list[EvalItem], ev: Evaluation, records: EvalRecords, **kw: object) -> EvalReport:
    return await evaluate(
        items,
        ev,
        records=records,
        dataset="eval_sample.jsonl",
        dataset_sha256="0" * 64,
        fields={"preset": "plain"},
        settings_record={"backend": getattr(ev.backend, "name", "?"), "length": ev.length},
        **kw,  # type: ignore[arg-type]
    )


def stored_rows(store: Store, run_id: str | None = None) -> int:
    with store.engine.connect() as conn:
        if run_id is None:
            return conn.execute(text("SELECT count(*) FROM eval_results")).scalar_one()
        return conn.execute(
            text("SELECT count(*) FROM eval_results WHERE run_id = :r"), {"r": run_id}
        ).scalar_one()


def run_status(store: Store, run_id: str) -> str:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT status FROM eval_runs WHERE id = :r"), {"r": run_id}).scalar_one()


def by_key(report: EvalReport) -> dict[tuple[str, str], ItemResult]:
    return {(r.item_id, r.system): r for r in report.results}


def coherence_judge(backend: ChatBackend, store: Store) -> Judge:
    settings = resolve_settings()

    async def judge(summary: str, language: str) -> Coherence:
        return await judge_coherence(
            summary,
            backend=backend,
            store=store,
            provider=backend.name,
            model=settings.model,
            language=language,
        )

    return judge


# --- (a) offline: three systems, reference length, rows as items finish, a cached rerun -----------------------


async def test_offline_scores_three_systems_stores_rows_per_item_and_reruns_from_cache(
    sample_items: list[EvalItem], store: Store
) -> None:
    records = EvalRecords(store.engine)
    ev = evaluation(ExtractiveBackend(), store)
    seen: list[tuple[int, int, str, int, str]] = []

    def on_item(done: int, total: int, item: EvalItem, rows: list[ItemResult]) -> None:
        # Called once the item's rows are committed, while the run is still going.
        run_id = records.list(limit=1)[0].id
        seen.append((done, total, item.id, stored_rows(store, run_id), run_status(store, run_id)))

    first = await run(sample_items, ev, records, on_item=on_item)

    assert first.status == "done"
    assert sorted((d, t, n, s) for d, t, _i, n, s in seen) == [(1, 2, 3, "running"), (2, 2, 6, "running")]
    assert {i for *_, i, _n, _s in seen} == {"lighthouse-keeper", "shanju-ji"}
    assert run_status(store, first.run_id) == "done"
    assert [s.system for s in first.systems] == SYSTEMS
    rows = by_key(first)
    assert set(rows) == {(i.id, s) for i in sample_items for s in SYSTEMS}
    for item in sample_items:
        for system in SYSTEMS:
            row = rows[item.id, system]
            assert row.ok and row.summary.strip(), (item.id, system, row.error)
            for value in (row.rouge1, row.rouge2, row.rougeL):
                assert value is not None and 0.0 < value < 1.0, (item.id, system, value)
            assert row.reference_length > 0 and row.coherence is None  # no judge asked for
        tome = rows[item.id, "tome"]
        # length="reference": tome is asked for the references' mean length (words; characters for Chinese).
        assert abs(tome.length - tome.reference_length) <= 0.15 * tome.reference_length, tome
        assert tome.calls >= 1 and tome.cached_calls == 0
        assert rows[item.id, "lead"].calls == rows[item.id, "textrank"].calls == 0
    zh = rows["shanju-ji", "tome"].summary
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in zh) > 0.5 * len(zh.replace(" ", ""))

    # What the database holds is what the report says.
    stored = records.get(first.run_id)
    assert by_key(stored) == rows and stored.status == "done"

    second = await run(sample_items, ev, records)
    again = by_key(second)
    assert second.run_id != first.run_id and stored_rows(store) == 12
    for item in sample_items:
        before, after = rows[item.id, "tome"], again[item.id, "tome"]
        # Every summary call came from the cache.
        assert after.calls == 0 and after.cached_calls == before.calls
        assert after.prompt_tokens == after.completion_tokens == 0
        assert after.summary == before.summary and after.rougeL == before.rougeL


# --- (b) HTTP client and the coherence judge --------------------------------------------------------------------


async def test_http_backend_with_judge_sets_coherence_and_reruns_without_requests(
    sample_items: list[EvalItem], store: Store, client: MoonshotClient, moonshot_server: MoonshotTestServer
) -> None:
    records = EvalRecords(store.engine)
    ev = evaluation(client, store)
    judge = coherence_judge(client, store)
    items = [*sample_items, PRONOUN_ITEM]

    report = await run(items, ev, records, judge=judge)

    assert report.status == "done"
    requests = moonshot_server.stats().requests
    judged = [r for r in moonshot_server.chat_log() if r.status == 200]
    assert requests > len(items) and len(judged) == requests
    rows = by_key(report)
    assert len(rows) == 3 * len(items)
    for row in rows.values():
        assert row.ok, (row.item_id, row.system, row.error)
        assert row.coherence is not None and 0.0 <= row.coherence <= 1.0, (row.item_id, row.system)
    lead = rows["pronoun", "lead"]
    assert lead.summary.startswith("She said")
    # The server's judge flags the pronoun-led first sentence and nothing else.
    assert lead.coherence == pytest.approx(1 - 1 / len(split_sentences(lead.summary)))
    assert lead.coherence < 1.0
    assert rows["lighthouse-keeper", "tome"].cost > 0 and rows["lighthouse-keeper", "tome"].prompt_tokens > 0
    stored = by_key(records.get(report.run_id))
    assert {k: r.coherence for k, r in stored.items()} == {k: r.coherence for k, r in rows.items()}
    means = {s.system: s.coherence for s in report.systems}
    assert means["lead"] is not None and 0.0 < means["lead"] < 1.0
    assert math.isclose(means["lead"], sum(rows[i.id, "lead"].coherence or 0 for i in items) / len(items))
    # The judge's own calls are counted apart from the summaries': every judge request the server answered.
    summary_calls = sum(r.calls - r.cached_calls for r in rows.values())
    usage = report.judge_usage
    assert usage.calls - usage.cached_calls == requests - summary_calls > 0
    assert usage.prompt_tokens > 0 and usage.cost > 0
    assert report.to_dict()["judge_usage"]["calls"] == usage.calls

    # Summaries and judgements both come from the cache the second time.
    again = await run(items, ev, records, judge=judge)
    assert moonshot_server.stats().requests == requests
    assert again.judge_usage.calls == again.judge_usage.cached_calls == usage.calls
    assert again.judge_usage.prompt_tokens == 0
    assert {k: r.coherence for k, r in by_key(again).items()} == {k: r.coherence for k, r in rows.items()}


# --- (c) a used-up quota stops the evaluation, keeping what was done ------------------------------------------


async def test_quota_stops_the_evaluation_and_keeps_finished_items(
    sample_items: list[EvalItem], store: Store, client: MoonshotClient, moonshot_server: MoonshotTestServer
) -> None:
    records = EvalRecords(store.engine)
    ev = evaluation(client, store)
    finished: list[str] = []

    def quota_after_first(done: int, total: int, item: EvalItem, rows: list[ItemResult]) -> None:
        finished.append(item.id)
        moonshot_server.inject("quota", times=20)  # every later call is refused: the account is out of credit

    with pytest.raises(QuotaExhaustedError):
        # One item at a time, so the first finishes before the quota runs out.
        await run(sample_items, ev, records, on_item=quota_after_first, items_at_once=1)

    assert finished == [sample_items[0].id]
    assert moonshot_server.stats().rate_limited.get("quota", 0) >= 1
    run_info = records.list()[0]
    assert run_info.status == "quota" and run_status(store, run_info.id) == "quota"
    kept = records.get(run_info.id)
    assert sorted((r.item_id, r.system) for r in kept.results) == sorted(
        (sample_items[0].id, s) for s in SYSTEMS
    )
    assert all(r.ok for r in kept.results)
    assert store.cache_stats().entries >= kept.results[0].calls >= 1


# --- (d) one failing item is recorded with its error; the others still score ----------------------------------


async def test_a_failing_item_is_recorded_and_the_others_score(store: Store) -> None:
    records = EvalRecords(store.engine)
    report = await run([EMPTY_ITEM, PRONOUN_ITEM], evaluation(ExtractiveBackend(), store), records)

    assert report.status == "done" and run_status(store, report.run_id) == "done"
    rows = by_key(records.get(report.run_id))
    failed = rows["illustration-only", "tome"]
    assert not failed.ok and failed.rouge1 is None and failed.summary == ""
    assert failed.error and "no text to summarise" in failed.error
    good = rows["pronoun", "tome"]
    assert good.ok and good.error is None and 0 < (good.rougeL or 0) < 1
    tome = next(s for s in report.systems if s.system == "tome")
    assert (tome.items, tome.failed) == (1, 1)
    assert tome.rougeL == pytest.approx(good.rougeL)
    # The baselines read the same cleaned text as tome: an item the loader rejects fails for every system.
    for system in ("lead", "textrank"):
        assert not rows["illustration-only", system].ok
        assert rows["illustration-only", system].error == failed.error
        assert rows["pronoun", system].ok
