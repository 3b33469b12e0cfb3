"""The database layer on SQLite and a real PostgreSQL: racing migrations, errors that name the database in use,
the psycopg extra, and the CLI's database commands on both."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from flows.cli import app
from pipeline.db import make_engine, normalise_url
from pipeline.errors import ConfigError, StoreError
from pipeline.evaluation.records import EvalRecords
from pipeline.evaluation.results import ItemResult
from pipeline.llm.types import Completion, Usage
from pipeline.migrations import MIGRATIONS
from pipeline.store import Store
from pipeline.testing.postgres import free_port

REPO = Path(__file__).resolve().parents[1]

_OPENER = textwrap.dedent(
    """
    import sys, time
    from pipeline.llm.types import Completion, Usage
    from pipeline.store import Store
    url, tag, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    while time.time() < start_at:  # all eight open the empty database at the same instant
        time.sleep(0.001)
    store = Store(url)
    store.cache_put(tag, provider="p", model="m", prompt_version="v",
                    completion=Completion(content=tag, finish_reason="stop", usage=Usage(1, 1), model="m"))
    store.finish_run(store.start_run(document=tag, document_hash=tag, settings={}), status="done")
    """
)


def test_eight_processes_migrate_an_empty_database_together(db_url: str) -> None:
    import time

    start_at = time.time() + 4.0  # after every interpreter has imported tome
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, db_url, f"p{i}", str(start_at)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    errors = [(proc.wait(timeout=120), proc.stderr.read()) for proc in procs]  # type: ignore[union-attr]
    assert [code for code, _ in errors] == [0] * 8, [err for code, err in errors if code]
    store = Store(db_url)
    with store.engine.connect() as conn:
        applied = [r[0] for r in conn.execute(text("SELECT name FROM tome_migrations ORDER BY name"))]
    assert applied == sorted(name for name, _ in MIGRATIONS)
    assert store.cache_stats().entries == 8
    assert sorted(r.document for r in store.list_runs(limit=20)) == [f"p{i}" for i in range(8)]
    store.close()


def test_migrate_blank_creates_every_table(db_url: str) -> None:
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    assert {
        "cache",
        "cache_overflow",
        "runs",
        "token_ledger",
        "budget_accounts",
        "budget_admissions",
        "eval_runs",
        "eval_results",
        "document_claims",
        "call_claims",
        "spending",
        "tome_migrations",
    } <= tables
    assert "content_bytes" in {c["name"] for c in inspect(engine).get_columns("cache")}
    engine.dispose()


def test_postgres_urls_use_psycopg() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_an_unreachable_postgres_is_named_with_postgres_advice() -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql://tome:s3cret@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(StoreError) as info:
        make_engine(url)
    message = str(info.value)
    assert "PostgreSQL database" in message and "server is running" in message
    assert "s3cret" not in message and "file" not in message and "\n" not in message


def test_an_unwritable_sqlite_file_gets_sqlite_advice(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        make_engine(f"sqlite:///{tmp_path / 'missing-folder' / 'tome.db'}")
    assert "SQLite database" in str(info.value) and "writable" in str(info.value)


_WITHOUT_PSYCOPG = textwrap.dedent(
    """
    import sys
    sys.modules["psycopg"] = None  # as if the extra were not installed
    from flows.cli import app
    app(["runs"])
    """
)


def test_without_psycopg_a_postgres_url_names_the_extra(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TOME_HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect")}
    env["TOME_DATABASE_URL"] = "postgresql://tome@127.0.0.1:5432/tome"
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PSYCOPG], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'tome[postgres]'" in lines[0], proc.stderr


def test_config_error_without_psycopg_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigError, match=r"tome\[postgres\]"):
        make_engine("postgresql://tome@127.0.0.1:5432/tome")


@pytest.mark.postgres
def test_cli_database_commands_on_postgres(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOME_DATABASE_URL", postgres_url)
    store = Store(postgres_url)
    store.cache_put(
        "k1",
        provider="moonshot",
        model="moonshot-v1-8k",
        prompt_version="v",
        completion=Completion(content="摘要", finish_reason="stop", usage=Usage(10, 5), model="m"),
    )
    run = store.start_run(document="report.pdf", document_hash="h", settings={"model": "moonshot-v1-8k"})
    store.finish_run(run, status="done")
    records = EvalRecords(store.engine)
    eval_id, _ = records.start(dataset="dev.jsonl", dataset_sha256="0" * 64, fields={}, settings={}, items=1)
    records.add(eval_id, [ItemResult(item_id="1", system="tome", length=3, reference_length=3.0)])
    records.finish(eval_id, "done")
    store.close()
    runner = CliRunner()

    runs = runner.invoke(app, ["runs", "--json"])
    assert runs.exit_code == 0, runs.output
    assert json.loads(runs.stdout.splitlines()[0])["document"] == "report.pdf"

    stats = runner.invoke(app, ["cache", "stats"])
    assert stats.exit_code == 0, stats.output
    assert "postgresql" in stats.stdout and "6 B" in stats.stdout  # 摘要 is 6 bytes of UTF-8

    listed = runner.invoke(app, ["eval", "--list"])
    assert listed.exit_code == 0, listed.output
    assert eval_id[:8] in listed.stdout and "dev.jsonl" in listed.stdout
