"""The store on SQLite and on a real PostgreSQL: cache round trip, keys, stats, runs, migrations, racing processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import inspect

from pipeline.llm.types import Completion, Message, Usage
from pipeline.store import Store, cache_key

MSGS = (Message("system", "sys"), Message("user", "hello"))


def _completion(text: str = "answer", finish: str = "stop") -> Completion:
    return Completion(
        content=text, finish_reason=finish, usage=Usage(100, 20, 5), model="m", request_id="r1", latency_s=0.5
    )


def _key(**over) -> str:
    args = dict(
        provider="moonshot",
        model="moonshot-v1-8k",
        prompt_version="map-v1",
        messages=MSGS,
        params={"max_tokens": 500, "temperature": 0.3},
    )
    args.update(over)
    return cache_key(**args)


def test_cache_key_depends_on_every_part():
    base = _key()
    assert base == _key() and len(base) == 64
    assert base != _key(provider="openai")
    assert base != _key(model="moonshot-v1-32k")
    assert base != _key(prompt_version="map-v2")
    assert base != _key(messages=(Message("system", "sys"), Message("user", "hello!")))
    assert base != _key(params={"max_tokens": 501, "temperature": 0.3})
    assert base != _key(params={"max_tokens": 500, "temperature": 0.0})
    assert base == _key(params={"temperature": 0.3, "max_tokens": 500})  # order-free


def test_migrate_blank_creates_schema(db_url: str):
    store = Store(db_url)
    insp = inspect(store.engine)
    assert {"cache", "runs", "token_ledger", "cache_overflow", "tome_migrations"} <= set(
        insp.get_table_names()
    )
    assert {"hits", "messages"} <= {c["name"] for c in insp.get_columns("cache")}
    assert {"run_id", "level", "node", "seq", "key", "prompt_version", "cached", "cost"} <= {
        c["name"] for c in insp.get_columns("run_calls")
    }
    Store(store.url)  # reopening migrates nothing and does not fail


def test_cache_round_trip_and_stats(db_url: str):
    store = Store(db_url)
    key = _key()
    assert store.cache_get(key) is None
    store.cache_put(
        key,
        provider="moonshot",
        model="moonshot-v1-8k",
        prompt_version="map-v1",
        completion=_completion("résumé 摘要"),
    )
    store.cache_put(
        key,
        provider="moonshot",
        model="moonshot-v1-8k",
        prompt_version="map-v1",
        completion=_completion("other"),
    )  # same key again: first answer stays
    hit = store.cache_get(key)
    assert hit is not None
    assert hit.completion.content == "résumé 摘要"
    assert hit.completion.usage == Usage(100, 20, 5)
    assert hit.completion.finish_reason == "stop" and hit.prompt_version == "map-v1"
    other = _key(model="gpt-4o-mini")
    store.cache_put(
        other, provider="openai", model="gpt-4o-mini", prompt_version="map-v1", completion=_completion("x")
    )
    stats = store.cache_stats()
    assert stats.entries == 2
    assert stats.by_model == {"moonshot-v1-8k": 1, "gpt-4o-mini": 1}
    assert stats.bytes == len("résumé 摘要".encode()) + 1
    assert stats.tokens_stored == 240 and stats.hits == 1 and stats.tokens_saved == 120
    assert store.cache_clear(model="gpt-4o-mini") == 1
    assert store.cache_get(other) is None and store.cache_get(key) is not None
    assert store.cache_clear() == 1 and store.cache_stats().entries == 0


def test_overflow_records(db_url: str):
    store = Store(db_url)
    key = _key()
    assert store.overflow_get(key) is None
    store.overflow_put(key, model="moonshot-v1-8k", limit=8192, requested=9000)
    got = store.overflow_get(key)
    assert got is not None and (got.limit, got.requested, got.pieces) == (8192, 9000, 2)
    split = _key() + "-3"
    store.overflow_put(split, model="smollm2", limit=2048, requested=6100, pieces=4)
    assert store.overflow_get(split).pieces == 4
    store.cache_clear()
    assert store.overflow_get(key) is None


def test_learned_windows_keep_the_smallest_per_model_and_server(db_url: str):
    store = Store(db_url)
    url = "http://127.0.0.1:8080/v1"
    assert store.window_get("smollm2", url) is None
    store.window_put("smollm2", url, 4096)
    store.window_put("smollm2", url, 2048)
    store.window_put("smollm2", url, 3000)  # a larger one never replaces what a server refused beyond
    assert store.window_get("smollm2", url) == 2048
    assert store.window_get("smollm2", "http://127.0.0.1:11434/v1") is None
    assert store.window_get("qwen", url) is None
    store.cache_clear(model="qwen")
    assert store.window_get("smollm2", url) == 2048
    store.cache_clear(model="smollm2")
    assert store.window_get("smollm2", url) is None


def test_runs_recorded(db_url: str):
    store = Store(db_url)
    run = store.start_run(document="alice.txt", document_hash="abc", settings={"model": "m", "lag": 4})
    store.update_run(run, calls=10, cached_calls=3, prompt_tokens=1000, completion_tokens=200, cost=0.01)
    rec = store.get_run(run)
    assert rec is not None and rec.status == "running" and rec.finished_at is None
    store.finish_run(run, status="quota", error="TPD reached")
    second = store.start_run(document="b.txt", document_hash="def", settings={})
    store.finish_run(second, status="done")
    runs = store.list_runs()
    assert [r.id for r in runs] == [second, run]
    first = runs[1]
    assert (first.calls, first.cached_calls, first.prompt_tokens, first.completion_tokens) == (
        10,
        3,
        1000,
        200,
    )
    assert first.status == "quota" and first.error == "TPD reached" and first.finished_at
    assert first.settings == {"model": "m", "lag": 4}
    assert len(store.list_runs(limit=1)) == 1


_WRITER = textwrap.dedent(
    """
    import sys
    from pipeline.llm.types import Completion, Usage
    from pipeline.store import Store
    store = Store(sys.argv[1])
    tag = sys.argv[2]
    for i in range(150):
        store.cache_put(f"{tag}-{i}", provider="p", model="m", prompt_version="v",
                        completion=Completion(content="x" * 200, finish_reason="stop", usage=Usage(1, 1), model="m"))
        store.cache_put(f"shared-{i}", provider="p", model="m", prompt_version="v",
                        completion=Completion(content=tag, finish_reason="stop", usage=Usage(1, 1), model="m"))
        if i % 10 == 0:
            run = store.start_run(document=tag, document_hash=tag, settings={})
            store.finish_run(run, status="done")
    """
)


def test_two_processes_write_the_same_database(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    repo = Path(__file__).resolve().parents[1]
    # Both processes open a fresh file at the same moment (migrations race too).
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, url, tag], cwd=repo, stderr=subprocess.PIPE, text=True
        )
        for tag in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    store = Store(url)
    assert store.cache_stats().entries == 450
    assert len(store.list_runs(limit=100)) == 30
    assert store.cache_get("shared-7").completion.content in {"a", "b"}
