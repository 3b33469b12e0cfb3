"""`tome eval`: tables and JSON on stdout, recorded runs listed and compared, one-line errors with exit code 2.

Runs through typer's CliRunner with TOME_HOME in tmp_path (tests/conftest.py); the offline backend unless a test
points --base-url at the local Moonshot-compatible server.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from flows.cli import app
from pipeline.evaluation.records import EvalRecords, EvalRunInfo
from pipeline.store import Store

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "eval_sample.jsonl"
SYSTEMS = ["tome", "lead", "textrank"]
runner = CliRunner()


@pytest.fixture
def sample() -> Path:
    if not SAMPLE.is_file():
        pytest.skip("data/eval_sample.jsonl is absent")
    return SAMPLE


def tome_eval(*args: str, env: dict[str, str] | None = None) -> Result:
    # The Prefect path is the integration tier's (tests/integration/test_eval_flow.py).
    return runner.invoke(app, ["eval", *map(str, args), "--no-prefect"], env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def recorded_runs() -> list[EvalRunInfo]:
    """The evaluations in TOME_HOME's database, newest first."""
    store = Store()
    try:
        return EvalRecords(store.engine).list()
    finally:
        store.close()


def table(stdout: str) -> dict[str, list[str]]:
    """The summary table's rows by first cell (cells are separated by two or more spaces)."""
    rows = {}
    for line in stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] in (*SYSTEMS, "system"):
            rows.setdefault(cells[0], cells)
    return rows


# --- reports ------------------------------------------------------------------------------------------------


def test_table_names_the_three_systems_and_rouge_columns(sample: Path) -> None:
    result = ok(tome_eval(sample))
    rows = table(result.stdout)
    head = rows["system"]
    assert head[:5] == ["system", "items", "ROUGE-1", "ROUGE-2", "ROUGE-L"] and "coherence" in head
    for system in SYSTEMS:
        cells = rows[system]
        assert cells[1] == "2"  # items scored
        for cell in cells[2:5]:
            assert 0 < float(cell) < 100, (system, cells)
        assert cells[-1] == "-"  # no --judge: no coherence
    assert "eval_sample.jsonl: 2 items, backend extractive" in result.stdout
    assert "lighthouse-keeper" not in result.stdout  # per-item rows only with --items
    err = result.stderr.splitlines()
    assert err[0].startswith("MOONSHOT_API_KEY is not set: using the offline extractive backend")
    assert sorted(line[:5] for line in err[1:]) == ["[1/2]", "[2/2]"]


def test_json_items_and_limit(sample: Path) -> None:
    full = json.loads(ok(tome_eval(sample, "--json")).stdout)
    assert re.fullmatch(r"[0-9a-f]{32}", full["run_id"]) and full["status"] == "done"
    assert [s["system"] for s in full["systems"]] == SYSTEMS
    assert all(s["items"] == 2 and 0 < s["rougeL"] < 1 for s in full["systems"])
    assert full["settings"]["backend"] == "extractive" and full["settings"]["length"] == "reference"
    assert full["settings"]["limit"] is None and "items" not in full

    one = json.loads(ok(tome_eval(sample, "--json", "--items", "--limit", "1")).stdout)
    assert one["run_id"] != full["run_id"] and one["settings"]["limit"] == 1
    assert [(r["item_id"], r["system"]) for r in one["items"]] == [("lighthouse-keeper", s) for s in SYSTEMS]
    assert all(s["items"] == 1 for s in one["systems"])
    tome = one["systems"][0]
    assert tome["calls"] == 0 and tome["cached_calls"] >= 1  # the first run's summary, from the cache

    items = ok(tome_eval(sample, "--items", "--limit", "1")).stdout
    per_item = [line.split() for line in items.splitlines() if line.startswith("lighthouse-keeper")]
    assert [cells[1] for cells in per_item] == SYSTEMS
    assert "shanju-ji" not in items


def test_runs_are_listed_and_compared(sample: Path) -> None:
    a = json.loads(ok(tome_eval(sample, "--json", "--limit", "1")).stdout)
    b = json.loads(ok(tome_eval(sample, "--json", "--limit", "1", "--length", "short")).stdout)

    listed = ok(tome_eval("--list")).stdout
    lines = [line for line in listed.splitlines() if line.strip()]
    assert lines[0].split()[0] == "id"
    assert [line.split()[0] for line in lines[1:]] == [b["run_id"][:12], a["run_id"][:12]]  # newest first
    assert all("eval_sample.jsonl" in line and " done " in line for line in lines[1:])
    assert lines[1].rstrip().endswith("short") and lines[2].rstrip().endswith("reference")
    as_json = [json.loads(line) for line in ok(tome_eval("--list", "--json")).stdout.splitlines()]
    assert [r["id"] for r in as_json] == [b["run_id"], a["run_id"]]

    shown = ok(tome_eval("--compare", "previous", "latest")).stdout
    assert f"A = {a['run_id'][:12]}" in shown and f"B = {b['run_id'][:12]}" in shown
    assert "length: 'reference' -> 'short'" in shown
    assert {line.split()[0] for line in shown.splitlines() if line.split()[:1] in (["tome"], ["lead"])} == {
        "tome",
        "lead",
    }

    compared = json.loads(ok(tome_eval("--compare", a["run_id"][:8], b["run_id"][:8], "--json")).stdout)
    assert (compared["run_a"], compared["run_b"]) == (a["run_id"], b["run_id"])
    assert compared["settings_changed"]["length"] == {"a": "reference", "b": "short"}
    systems = {s["system"]: s for s in compared["systems"]}
    assert set(systems) == set(SYSTEMS)
    assert systems["lead"]["delta"]["rougeL"] == 0  # the baselines do not depend on the settings
    assert (
        systems["tome"]["after"]["length"] < systems["tome"]["before"]["length"]
    )  # short < reference length


# --- errors: one line on stderr, exit code 2 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "missing.jsonl: no such dataset file."),
        (["{broken}"], "broken.jsonl:2 is not JSON"),
        (["{sample}", "--preset", "nope"], "Unknown dataset preset 'nope'"),
        (["{sample}", "--judge", "--backend", "extractive"], "--judge needs an LLM backend"),
        (["--compare", "nope", "latest"], "No evaluation run 'nope'"),
        ([], "Name a dataset"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(
    sample: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"document": "A tale.", "references": ["A story."]}\nnot json\n', encoding="utf-8")
    paths = {"missing": tmp_path / "missing.jsonl", "broken": broken, "sample": sample}
    result = tome_eval(*(a.format(**paths) for a in args))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1  # --judge is refused before the backend notice
    assert lines[-1].startswith("Error: ") and message in lines[-1]
    assert recorded_runs() == []  # a refused evaluation leaves no run behind


# --- a provider backend: the judge, and the key kept out of every output ----------------------------------------


def test_judge_against_the_test_server_prints_coherence_and_never_the_key(
    sample: Path, moonshot_server_factory
) -> None:
    key = "sk-tome-eval-cli-0123456789abcdefSECRET"
    srv = moonshot_server_factory(keys=(key,))
    result = ok(
        tome_eval(
            sample,
            "--backend",
            "moonshot",
            "--base-url",
            srv.base_url,
            "--judge",
            env={"MOONSHOT_API_KEY": key},
        )
    )
    rows = table(result.stdout)
    assert rows["system"][-1] == "coherence"
    for system in SYSTEMS:
        assert 0 <= float(rows[system][-1]) <= 100, rows[system]
    assert (
        "backend moonshot" in result.stdout
        and f"Using moonshot (moonshot-v1-8k) at {srv.base_url}" in result.stderr
    )
    assert srv.stats().requests > 2  # summaries, then judgements
    judge_line = next(line for line in result.stdout.splitlines() if line.startswith("Judge: "))
    assert " calls (0 cached)" in judge_line and "tokens in" in judge_line
    assert key not in result.stdout and key not in result.stderr
    home = Path(os.environ["TOME_HOME"])
    files = [p for p in home.rglob("*") if p.is_file()]
    assert home / "tome.db" in files
    for path in files:
        assert key.encode() not in path.read_bytes(), path
    judged = recorded_runs()[0]
    assert judged.settings["judge"] is True and judged.settings["base_url"] == srv.base_url
