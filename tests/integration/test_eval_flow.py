"""`tome eval` through Prefect (its default): the flow run, one task run per item, the artifact, and a clean error."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "eval_sample.jsonl"


def _tome_eval(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "user"),
           "TOME_HOME": str(tmp_path / "tome-home"), "TOME_PREFECT_SERVER": "ephemeral"}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "flows", "eval", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_eval_runs_as_a_prefect_flow_with_a_task_per_item(tmp_path: Path) -> None:
    proc = _tome_eval(tmp_path, str(SAMPLE))
    assert proc.returncode == 0, proc.stderr
    systems = [line.split()[0] for line in proc.stdout.splitlines()[2:5]]
    assert systems == ["tome", "lead", "textrank"]
    noise = [line for line in proc.stderr.splitlines() if "| WARNING |" in line or "| ERROR |" in line]
    assert noise == []
    db = sqlite3.connect(tmp_path / "tome-home" / "prefect" / "prefect.db")
    try:
        assert db.execute("SELECT name, state_type FROM flow_run").fetchall() == [
            ("eval eval_sample.jsonl", "COMPLETED")
        ]
        tasks = sorted(db.execute("SELECT name, state_type FROM task_run").fetchall())
        assert tasks == [("item lighthouse-keeper", "COMPLETED"), ("item shanju-ji", "COMPLETED")]
        assert ("tome-eval",) in db.execute("SELECT key FROM artifact").fetchall()
    finally:
        db.close()
    # The results are in tome's own database too, where --list finds them without Prefect.
    listed = _tome_eval(tmp_path, "--list")
    assert listed.returncode == 0 and "eval_sample.jsonl" in listed.stdout


def test_a_bad_dataset_fails_the_flow_with_one_line_and_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"document": "A short tale.", "references": ["A tale."]}\nnot json\n', encoding="utf-8")
    proc = _tome_eval(tmp_path, str(broken))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "broken.jsonl:2 is not JSON" in errors[0]
