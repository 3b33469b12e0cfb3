"""The inspecting commands: `tome models`, `tome cache clear|export|import`, and --help away from a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

from flows.cli import app
from pipeline.config import load_catalog
from tests.conftest import tome

REPO = Path(__file__).resolve().parents[1]


def _paid_run(lighthouse: Path, srv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", srv.api_key)
    ran = tome("summarise", str(lighthouse), "--base-url", srv.base_url, "--no-prefect", "--no-progress")
    assert ran.exit_code == 0, ran.stderr


# --- tome models ----------------------------------------------------------------------------------------------


def test_models_lists_every_configured_model_and_whether_its_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-secret-value-123")
    result = tome("models")
    assert result.exit_code == 0, result.stderr
    assert "sk-secret-value-123" not in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line and not line.startswith("*")}
    assert set(load_catalog().models) | {"extractive"} == set(rows)
    assert "MOONSHOT_API_KEY (set)" in rows["moonshot-v1-32k"] and "32,768" in rows["moonshot-v1-32k"]
    assert "¥5.00 / ¥20.00" in rows["moonshot-v1-32k"]
    assert "OPENAI_API_KEY (not set)" in rows["gpt-4o-mini"] and "$0.15 / $0.60" in rows["gpt-4o-mini"]
    assert "free (offline)" in rows["extractive"]
    assert result.stdout.splitlines()[0].split()[:3] == ["model", "provider", "context"]


def test_models_json_has_the_fields_and_never_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-deep-secret")
    result = tome("models", "--json")
    assert result.exit_code == 0
    records = {r["name"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert "sk-deep-secret" not in result.stdout
    deepseek = records["deepseek-chat"]
    assert deepseek["key_env"] == "DEEPSEEK_API_KEY" and deepseek["key_set"] is True
    assert records["moonshot-v1-8k"]["key_set"] is False and records["moonshot-v1-8k"]["default"] is True
    assert records["extractive"]["price_input"] is None and records["extractive"]["currency"] is None


# --- tome cache -------------------------------------------------------------------------------------------------


def test_cache_clear_asks_and_says_what_the_answers_cost(lighthouse: Path, moonshot_server, monkeypatch) -> None:
    _paid_run(lighthouse, moonshot_server, monkeypatch)
    stats = tome("cache", "stats")
    entries = int(stats.stdout.split("entries:")[1].split()[0].replace(",", ""))
    cost = stats.stdout.split("answers cost:")[1].split()[0]
    assert cost.startswith("¥") and float(cost[1:]) > 0
    refused = tome("cache", "clear", input="n\n")
    assert refused.exit_code == 1
    assert f"Delete {entries:,} cached answers? They cost {cost} to make." in refused.stderr
    assert "Nothing deleted" in refused.stderr
    no_answer = tome("cache", "clear", input="")  # stdin closed: nothing is deleted
    assert no_answer.exit_code == 1 and "Nothing deleted" in no_answer.stderr
    assert f"entries:       {entries:,}" in tome("cache", "stats").stdout
    agreed = tome("cache", "clear", input="y\n")
    assert agreed.exit_code == 0, agreed.stderr
    # (CliRunner echoes the typed answer into stdout)
    assert agreed.stdout.splitlines()[-1] == f"Deleted {entries:,} cached answers (they cost {cost} to make)."
    assert "entries:       0" in tome("cache", "stats").stdout


def test_cache_clear_of_an_unknown_model_is_an_error(lighthouse: Path) -> None:
    assert tome("summarise", str(lighthouse), "--no-prefect", "--no-progress").exit_code == 0
    result = tome("cache", "clear", "--model", "nonexistent", "--yes")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: Unknown model 'nonexistent'. Known models: ")
    assert "extractive" in result.stderr and len(result.stderr.splitlines()) == 1
    assert "entries:       0" not in tome("cache", "stats").stdout


def test_extractive_answers_are_labelled_extractive_and_cost_nothing(lighthouse: Path) -> None:
    assert tome("summarise", str(lighthouse), "--no-prefect", "--no-progress").exit_code == 0
    stats = tome("cache", "stats")
    table = stats.stdout.split("\n\n")[1].splitlines()
    assert table[0].split() == ["model", "entries", "cost"]
    assert [row.split()[0] for row in table[1:]] == ["extractive"]
    assert "moonshot" not in stats.stdout and "answers cost:  nothing" in stats.stdout
    by_model = tome("cache", "clear", "--model", "moonshot-v1-8k", "--yes")  # the offline answers are not its
    assert by_model.exit_code == 0 and "nothing to delete" in by_model.stderr
    cleared = tome("cache", "clear", "--model", "extractive", "--yes")
    assert cleared.exit_code == 0 and cleared.stdout.startswith("Deleted ") and "cost nothing" in cleared.stdout


def test_cache_export_then_import_into_another_database(
    lighthouse: Path, moonshot_server, monkeypatch, tmp_path: Path
) -> None:
    _paid_run(lighthouse, moonshot_server, monkeypatch)
    requests = moonshot_server.stats().requests
    export = tmp_path / "cache.jsonl"
    written = tome("cache", "export", str(export))
    assert written.exit_code == 0, written.stderr
    records = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    answers = [r for r in records if r["type"] == "answer"]
    assert answers and all(r["model"] == "moonshot-v1-8k" and r["content"] for r in answers)
    assert all(r["messages"][0]["role"] == "system" for r in answers)  # the exact prompt travels with it
    assert moonshot_server.api_key not in export.read_text(encoding="utf-8")
    assert tome("cache", "export").stdout == export.read_text(encoding="utf-8")  # "-" (stdout) by default

    monkeypatch.setenv("TOME_HOME", str(tmp_path / "other-machine"))
    imported = tome("cache", "import", str(export))
    assert imported.exit_code == 0, imported.stderr
    assert imported.stdout.startswith(f"Imported {len(answers)} answers (0 were already cached)")
    again = tome("cache", "import", "-", input=export.read_text(encoding="utf-8"))
    assert again.stdout.startswith(f"Imported 0 answers ({len(answers)} were already cached)")
    rerun = tome("summarise", str(lighthouse), "--base-url", moonshot_server.base_url, "--no-prefect")
    assert rerun.exit_code == 0
    assert moonshot_server.stats().requests == requests  # every answer came from the imported cache


def test_cache_import_refuses_a_bad_file_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "answer", "key": "k", "provider": "p", "model": "m", "prompt_version": "v", '
                   '"content": "c", "created_at": "t"}\nnot json\n', encoding="utf-8")  # fmt: skip
    result = tome("cache", "import", str(bad))
    assert result.exit_code == 2 and result.stderr == f"Error: {bad} line 2: not JSON; expected a line of `tome cache export`.\n"
    assert "entries:       0" in tome("cache", "stats").stdout  # nothing half-imported
    missing = tome("cache", "import", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr


# --- help away from a terminal ------------------------------------------------------------------------------------


def test_help_in_a_pipe_wraps_at_80_columns_and_cuts_nothing() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("TERMINAL_WIDTH", None)
    for command in (["summarise", "--help"], ["batch", "--help"], ["cache", "clear", "--help"]):
        out = subprocess.run(
            [sys.executable, "-m", "flows", *command], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80 or all("|" in line for line in lines if len(line) > 80)
        assert "…" not in out.stdout and "╭" not in out.stdout
        if command[0] == "summarise":
            text = " ".join(out.stdout.split())
            assert "folder that gets <name>.summary.md, <name>.summary.json and <name>.summary.html (the report)." in text
            assert "[default: (stdout)]" in text
            assert "[default: (the document's language)]" in text
        if command[0] == "batch":
            assert "[default: (DIR/summaries)]" in " ".join(out.stdout.split())


def test_every_option_shows_its_default() -> None:
    def options(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from options(sub, [*path, name])
            return
        for p in cmd.params:
            if type(p).__name__.endswith("Option") and p.name != "help":
                yield " ".join(path), p

    missing = [
        f"{path} {p.opts[0]}"
        for path, p in options(get_command(app), [])
        if not p.required and not p.is_flag and p.default is None and not isinstance(p.show_default, str)
    ]
    assert missing == []
