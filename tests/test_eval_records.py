"""Evaluation runs in SQLite and PostgreSQL (EvalRecords), per-system means, and two runs compared."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from pipeline.errors import ConfigError, StoreError
from pipeline.evaluation.records import EvalRecords
from pipeline.evaluation.results import EvalReport, ItemResult, compare, summarise_system, summarise_systems
from pipeline.store import Store


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


@pytest.fixture
def records(store: Store) -> EvalRecords:
    return EvalRecords(store.engine)


def start(records: EvalRecords, *, dataset: str = "dev.jsonl", items: int = 2, **settings: object) -> str:
    run_id, _ = records.start(
        dataset=dataset,
        dataset_sha256="ab" * 32,
        fields={"document": ["document"], "references": ["references"], "id": ["id"]},
        settings={"model": "kimi-k2", "chunk_tokens": 4000, **settings},
        items=items,
    )
    return run_id


ROWS = [
    ItemResult(
        item_id="63833", system="tome", rouge1=0.4125, rouge2=0.1, rougeL=1 / 3, length=310,
        reference_length=287.25, calls=9, cached_calls=2, prompt_tokens=51234, completion_tokens=1876,
        cost=0.0123456789, coherence=4.5, summary="A ship, a jinx, a rescue.",
    ),
    ItemResult(item_id="63833", system="lead", rouge1=0.2, rouge2=0.05, rougeL=0.18, length=287, reference_length=287.25),
    ItemResult(item_id="51150", system="tome", length=0, reference_length=301.0, calls=3, error="quota exhausted"),
    ItemResult(
        item_id="51150", system="lead", rouge1=0.25, rouge2=0.0, rougeL=0.2, length=301, reference_length=301.0,
        coherence=None, summary="Chinese too: 山居记",
    ),
]  # fmt: skip


# --- EvalRecords -------------------------------------------------------------------------------------------------


def test_start_add_finish_get_round_trip(records: EvalRecords) -> None:
    run_id, started = records.start(
        dataset="dev.jsonl",
        dataset_sha256="ab" * 32,
        fields={"document": ["document"]},
        settings={"model": "kimi-k2", "chunk_tokens": 4000, "judge": None},
        items=2,
    )
    assert len(run_id) == 32
    assert records.get(run_id).status == "running"
    records.add(run_id, ROWS[:2])
    records.add(run_id, ROWS[2:])
    records.finish(run_id, "done")
    report = records.get(run_id)
    assert report.run_id == run_id
    assert report.dataset == "dev.jsonl"
    assert report.status == "done"
    assert report.started_at == started
    assert report.settings == {"model": "kimi-k2", "chunk_tokens": 4000, "judge": None}
    assert report.results == ROWS  # floats exact, None coherence and scores, errors, summaries
    assert report.results[2].rouge1 is None and not report.results[2].ok
    assert report.results[3].coherence is None
    assert report.items == ["63833", "51150"]


def test_the_same_item_and_system_twice_is_a_store_error(records: EvalRecords) -> None:
    run_id = start(records)
    records.add(run_id, ROWS[:1])
    with pytest.raises(StoreError):
        records.add(run_id, ROWS[:1])


def test_list_is_newest_first(records: EvalRecords) -> None:
    ids = [start(records, dataset=f"set{i}.jsonl", items=i) for i in range(3)]
    listed = records.list()
    assert [r.id for r in listed] == ids[::-1]  # same second: insertion order breaks the tie
    assert [(r.dataset, r.items, r.status) for r in listed] == [
        ("set2.jsonl", 2, "running"), ("set1.jsonl", 1, "running"), ("set0.jsonl", 0, "running"),
    ]  # fmt: skip
    assert listed[0].settings == {"model": "kimi-k2", "chunk_tokens": 4000}
    assert [r.id for r in records.list(limit=2)] == ids[:0:-1]


def test_resolve_full_id_prefix_and_aliases(records: EvalRecords) -> None:
    first, second = start(records), start(records)
    assert records.resolve(first) == first
    assert records.resolve(f"  {second} ") == second
    prefix = next(n for n in range(1, 33) if first[:n] != second[:n])
    assert records.resolve(first[:prefix]) == first
    assert records.resolve("latest") == records.resolve("last") == second
    assert records.resolve("previous") == records.resolve("PREV") == first
    assert records.get("previous").run_id == first


def test_aliases_without_enough_runs(records: EvalRecords) -> None:
    with pytest.raises(ConfigError, match="no 'latest'"):
        records.resolve("latest")
    start(records)
    with pytest.raises(ConfigError, match="no 'previous'"):
        records.resolve("previous")


def test_unknown_and_ambiguous_refs(records: EvalRecords) -> None:
    ids: list[str] = []
    while len({i[0] for i in ids}) == len(ids):  # 17 random hex ids at most share a first character
        ids.append(start(records))
    shared = next(c for c in {i[0] for i in ids} if sum(i[0] == c for i in ids) > 1)
    with pytest.raises(ConfigError, match="more than one") as info:
        records.resolve(shared)
    assert info.value.exit_code == 2
    for ref in ("zz", "", "   ", ids[0] + "0"):
        with pytest.raises(ConfigError, match="No evaluation run"):
            records.resolve(ref)
    with pytest.raises(ConfigError):
        records.get("not-a-run")


@pytest.mark.parametrize("ref", ["%", "_", "_" * 32, "%%"])
def test_like_wildcards_in_a_ref_match_nothing(records: EvalRecords, ref: str) -> None:
    # A ref is an id prefix, not a LIKE pattern: "%" and "_" must not stand for "any characters".
    start(records)
    with pytest.raises(ConfigError, match="No evaluation run"):
        records.resolve(ref)


# --- summarise_systems -----------------------------------------------------------------------------------


def test_summarise_systems_means_exclude_failed_items() -> None:
    rows = [
        ItemResult("a", "tome", 0.4, 0.2, 0.3, length=100, reference_length=200, calls=4, cost=0.5, coherence=4.0),
        ItemResult("b", "tome", 0.2, 0.1, 0.1, length=300, reference_length=200, calls=6, cost=0.25, coherence=None),
        ItemResult("c", "tome", length=0, reference_length=900, calls=2, cost=0.125, prompt_tokens=7, error="boom"),
        ItemResult("a", "lead", 0.1, 0.0, 0.1, length=200, reference_length=200),
    ]
    tome, lead = summarise_systems(rows)
    assert (tome.system, lead.system) == ("tome", "lead")  # first-seen order
    assert (tome.items, tome.failed) == (2, 1)
    assert (tome.rouge1, tome.rouge2, tome.rougeL) == pytest.approx((0.3, 0.15, 0.2))
    assert tome.length == pytest.approx(200.0)
    assert tome.reference_length == pytest.approx(200.0)  # the failed item's 900 is not in the mean
    assert tome.length_ratio == pytest.approx(1.0)
    assert tome.calls == 12 and tome.cost == pytest.approx(0.875) and tome.prompt_tokens == 7  # sums include failures
    assert tome.coherence == pytest.approx(4.0)  # only judged items
    assert lead.coherence is None
    assert (lead.items, lead.failed, lead.rouge1) == (1, 0, pytest.approx(0.1))
    assert tome.to_dict()["length_ratio"] == pytest.approx(1.0)


def test_a_system_that_failed_everywhere() -> None:
    summary = summarise_system("tome", [ItemResult("a", "tome", error="timeout"), ItemResult("b", "tome", error="x")])
    assert (summary.items, summary.failed) == (0, 2)
    assert math.isnan(summary.rouge1) and math.isnan(summary.length_ratio)
    assert summary.coherence is None


# --- compare ---------------------------------------------------------------------------------------------------


def report(run_id: str, settings: dict[str, object], rows: list[ItemResult]) -> EvalReport:
    return EvalReport(run_id, "dev.jsonl", settings, rows)


def test_compare_two_runs() -> None:
    a = report(
        "run-a",
        {"model": "kimi-k2", "chunk_tokens": 4000, "language": "auto", "started_at": "x", "dropped": 1},
        [
            ItemResult("i1", "tome", 0.30, 0.10, 0.20, length=100, cost=1.0, coherence=3.0),
            ItemResult("i2", "tome", 0.40, 0.20, 0.40, length=200, cost=1.0, coherence=5.0),
            ItemResult("i3", "tome", 0.50, 0.30, 0.50, length=300, cost=1.0),
            ItemResult("i4", "tome", error="failed in a"),
            ItemResult("only-a", "tome", 0.9, 0.9, 0.9, length=1),
            ItemResult("i1", "lead", 0.2, 0.1, 0.2, length=100),
        ],
    )
    b = report(
        "run-b",
        {"model": "kimi-k2", "chunk_tokens": 8000, "language": "auto", "started_at": "y", "added": True},
        [
            ItemResult("i1", "tome", 0.40, 0.20, 0.30, length=120, cost=2.0, coherence=4.0),  # better
            ItemResult("i2", "tome", 0.40, 0.20, 0.30, length=180, cost=2.0, coherence=4.0),  # worse
            ItemResult("i3", "tome", 0.60, 0.30, 0.50, length=300, cost=2.0),  # same ROUGE-L
            ItemResult("i4", "tome", 0.99, 0.99, 0.99, length=999),  # failed in a: not compared
            ItemResult("only-b", "tome", 0.1, 0.1, 0.1),
            ItemResult("only-b2", "tome", 0.1, 0.1, 0.1),
            ItemResult("i1", "lead", 0.2, 0.1, 0.2, length=100),
        ],
    )
    c = compare(a, b)
    assert (c.run_a, c.run_b) == ("run-a", "run-b")
    assert c.settings_changed == {"chunk_tokens": (4000, 8000), "dropped": (1, None), "added": (None, True)}
    assert (c.only_a, c.only_b) == (1, 2)
    tome, lead = c.systems
    assert (tome.system, tome.items, tome.better, tome.worse) == ("tome", 3, 1, 1)
    assert tome.before["rouge1"] == pytest.approx(0.4)
    assert tome.after["rouge1"] == pytest.approx((0.4 + 0.4 + 0.6) / 3)
    assert tome.delta("rougeL") == pytest.approx((0.3 + 0.3 + 0.5) / 3 - (0.2 + 0.4 + 0.5) / 3)
    assert tome.delta("length") == pytest.approx(0.0)
    assert tome.before["cost"] == pytest.approx(3.0) and tome.after["cost"] == pytest.approx(6.0)
    assert tome.before["coherence"] == pytest.approx(4.0) and tome.after["coherence"] == pytest.approx(4.0)
    assert (lead.items, lead.better, lead.worse, lead.delta("rouge1")) == (1, 0, 0, 0.0)
    out = c.to_dict()
    assert out["settings_changed"]["chunk_tokens"] == {"a": 4000, "b": 8000}
    assert (out["items_only_in_a"], out["items_only_in_b"]) == (1, 2)
    assert out["systems"][0]["delta"]["rouge1"] == pytest.approx(tome.delta("rouge1"))


def test_compare_identical_settings_and_a_system_without_common_items() -> None:
    a = report("a", {"model": "m"}, [ItemResult("i1", "tome", 0.1, 0.1, 0.1), ItemResult("i1", "textrank", error="x")])
    b = report("b", {"model": "m"}, [ItemResult("i1", "tome", 0.1, 0.1, 0.1), ItemResult("i1", "textrank", 0.2, 0.2, 0.2)])
    c = compare(a, b)
    assert c.settings_changed == {}
    assert [s.system for s in c.systems] == ["tome"]  # textrank failed in a: nothing to pair
    assert (c.systems[0].better, c.systems[0].worse) == (0, 0)
    assert math.isnan(c.systems[0].before["coherence"])
    assert (c.only_a, c.only_b) == (0, 0)


def test_compare_runs_read_back_from_the_database(records: EvalRecords) -> None:
    first = start(records, chunk_tokens=4000)
    records.add(first, [ItemResult("i1", "tome", 0.2, 0.1, 0.2, length=50)])
    records.finish(first, "done")
    second = start(records, chunk_tokens=8000)
    records.add(second, [ItemResult("i1", "tome", 0.3, 0.1, 0.25, length=60), ItemResult("i2", "tome", 0.5, 0.5, 0.5)])
    records.finish(second, "done")
    c = compare(records.get("previous"), records.get("latest"))
    assert (c.run_a, c.run_b) == (first, second)
    assert c.settings_changed == {"chunk_tokens": (4000, 8000)}
    assert (c.systems[0].items, c.systems[0].better, c.only_b) == (1, 1, 1)
    assert c.systems[0].delta("rougeL") == pytest.approx(0.05)
