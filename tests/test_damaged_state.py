"""Damaged state is recoverable: a corrupt cache database names itself and the fix, `tome cache repair`
salvages what is readable, `tome cache clear` works on it, and runs whose process died show "interrupted"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from flows.cli import app
from pipeline.db import default_database_url, sqlite_path
from pipeline.llm.types import Completion, Usage
from pipeline.store import Store

runner = CliRunner()
ANSWERS = 400
PAGE = 4096


def _filled_database() -> Path:
    store = Store()
    try:
        for i in range(ANSWERS):
            completion = Completion(content=f"answer {i} " + "lorem ipsum dolor " * 40, finish_reason="stop",
                                    usage=Usage(100, 50), model="moonshot-v1-8k")  # fmt: skip
            store.cache_put(f"key-{i:05d}", provider="moonshot", model="moonshot-v1-8k", prompt_version="map-v2",
                            completion=completion)  # fmt: skip
        store.start_run(document="book.txt", document_hash="h", settings={"model": "moonshot-v1-8k"})
    finally:
        store.close()
    path = sqlite_path(default_database_url())
    assert path is not None and path.is_file()
    # Fold the WAL into the file so the damage below hits real pages.
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _damage_pages(path: Path, first: int, count: int) -> None:
    data = bytearray(path.read_bytes())
    data[first * PAGE : (first + count) * PAGE] = b"\xab" * (count * PAGE)
    path.write_bytes(bytes(data))


def _one_line_exit_2(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_damaged_pages_name_the_file_and_repair_salvages_the_rest() -> None:
    path = _filled_database()
    pages = path.stat().st_size // PAGE
    _damage_pages(path, pages // 2, 3)
    stats = runner.invoke(app, ["cache", "stats"])
    _one_line_exit_2(stats, str(path), "damaged", "tome cache repair", "mv ")
    repaired = runner.invoke(app, ["cache", "repair"])
    assert repaired.exit_code == 0, repaired.stderr
    assert "Salvaged" in repaired.stdout and ".damaged-" in repaired.stdout
    salvaged = int(repaired.stdout.split("Salvaged ")[1].split(" ")[0].replace(",", ""))
    assert 0 < salvaged < ANSWERS
    assert list(path.parent.glob(f"{path.name}.damaged-*"))
    after = runner.invoke(app, ["cache", "stats"])
    assert after.exit_code == 0, after.stderr
    assert f"entries:       {salvaged:,}" in after.stdout


def test_a_file_that_is_not_a_database_any_more() -> None:
    path = _filled_database()
    _damage_pages(path, 0, 1)
    runs = runner.invoke(app, ["runs"])
    _one_line_exit_2(runs, str(path), "damaged")
    refused = runner.invoke(app, ["cache", "clear", "--model", "moonshot-v1-8k", "--yes"])
    _one_line_exit_2(refused, "tome cache repair")
    cleared = runner.invoke(app, ["cache", "clear", "--yes"])
    assert cleared.exit_code == 0, cleared.stderr
    assert "Moved the damaged database" in cleared.stdout
    after = runner.invoke(app, ["cache", "stats"])
    assert after.exit_code == 0 and "entries:       0" in after.stdout


def test_repair_of_an_unreadable_file_starts_empty() -> None:
    path = _filled_database()
    _damage_pages(path, 0, 1)
    repaired = runner.invoke(app, ["cache", "repair"])
    assert repaired.exit_code == 0, repaired.stderr
    assert "Nothing in" in repaired.stdout
    assert runner.invoke(app, ["cache", "stats"]).exit_code == 0


def test_a_run_whose_process_died_shows_interrupted() -> None:
    store = Store()
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)  # fmt: skip
        gone = store.start_run(document="gone.txt", document_hash="h", settings={})
        alive = store.start_run(document="alive.txt", document_hash="h", settings={})
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE runs SET owner_pid = :p WHERE id = :i"), {"p": int(dead.stdout), "i": gone})
        assert store.get_run(gone).status == "interrupted"
        assert store.get_run(alive).status == "running"  # this test's own process
        store.finish_run(alive, status="done")
    finally:
        store.close()
    listing = runner.invoke(app, ["runs"])
    assert listing.exit_code == 0
    row = next(line for line in listing.stdout.splitlines() if "gone.txt" in line)
    assert "interrupted" in row


def test_a_killed_process_leaves_an_interrupted_run() -> None:
    """A real process records a run and is killed with SIGKILL before it can finish it."""
    script = (
        "import os, signal\n"
        "from pipeline.store import Store\n"
        "s = Store()\n"
        "s.start_run(document='killed.txt', document_hash='h', settings={})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -9
    store = Store()
    try:
        runs = [r for r in store.list_runs() if r.document == "killed.txt"]
    finally:
        store.close()
    assert [r.status for r in runs] == ["interrupted"]
