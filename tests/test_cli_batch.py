"""`tome batch`, `tome runs` and `tome cache`: a folder with a corrupt file, the history, the cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import LIGHTHOUSE, tome
from tests.test_flows_runner import CHINESE_STORY


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two good documents (English, Chinese) and a corrupt PDF."""
    if not LIGHTHOUSE.is_file():
        pytest.skip("data/the_lighthouse_keeper.md is not there yet")
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(LIGHTHOUSE, docs / "lighthouse.md")
    (docs / "dengta.txt").write_text(CHINESE_STORY, encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    return docs


def test_batch_with_a_corrupt_file_summarises_the_others(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = tome("batch", str(folder), "-o", str(out), "--no-prefect", "--no-progress")
    assert result.exit_code == 1, result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:4]}
    assert rows == {"broken.pdf": "failed", "dengta.txt": "done", "lighthouse.md": "done"}
    assert result.stdout.splitlines()[4].startswith("total")
    assert result.stdout.splitlines()[-1].startswith("broken.pdf: ")
    assert sorted(p.name for p in out.iterdir()) == [
        "dengta.summary.html", "dengta.summary.json", "dengta.summary.md",
        "lighthouse.summary.html", "lighthouse.summary.json", "lighthouse.summary.md",
    ]  # fmt: skip
    assert "extractive" in result.stderr


def test_batch_glob_and_default_output_folder(folder: Path) -> None:
    result = tome("batch", str(folder), "--glob", "*.md", "--no-prefect", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["lighthouse.md"]
    assert (folder / "summaries" / "lighthouse.summary.md").is_file()
    again = tome("batch", str(folder), "--glob", "*.md", "--no-prefect", "--no-progress")
    assert again.exit_code == 0  # its own outputs in DIR/summaries are not inputs
    assert [line.split()[0] for line in again.stdout.splitlines()[1:]] == ["lighthouse.md"]


def test_batch_bad_input_exits_2(tmp_path: Path) -> None:
    missing = tome("batch", str(tmp_path / "nope"), "--no-prefect")
    assert missing.exit_code == 2 and missing.stderr.startswith("Error: ") and "no such folder" in missing.stderr
    (tmp_path / "a.txt").write_text("Some text.", encoding="utf-8")
    empty = tome("batch", str(tmp_path), "--glob", "*.pdf", "--no-prefect")
    assert empty.exit_code == 2 and "No documents" in empty.stderr


def test_runs_lists_the_history(folder: Path, tmp_path: Path) -> None:
    assert tome("runs").exit_code == 0  # nothing yet: a hint on stderr, no table
    tome("batch", str(folder), "-o", str(tmp_path / "out"), "--no-prefect", "--no-progress")
    result = tome("runs")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["started", "(UTC)", "document", "status"]
    statuses = {line.split()[2]: line.split()[3] for line in lines[1:]}
    assert statuses == {"broken.pdf": "failed", "dengta.txt": "done", "lighthouse.md": "done"}
    records = [json.loads(line) for line in tome("runs", "--json", "-n", "2").stdout.splitlines()]
    assert len(records) == 2 and {"document", "status", "calls", "prompt_tokens", "cost"} <= set(records[0])


def test_cache_stats_and_clear(folder: Path, moonshot_server, monkeypatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    empty = tome("cache", "stats")
    assert empty.exit_code == 0 and "entries:       0" in empty.stdout
    ran = tome("summarise", str(folder / "lighthouse.md"), "--base-url", moonshot_server.base_url, "--no-prefect")
    assert ran.exit_code == 0, ran.stderr
    stats = tome("cache", "stats")
    entries = int(stats.stdout.split("entries:")[1].split()[0].replace(",", ""))
    assert entries >= 2
    assert "moonshot-v1-8k" in stats.stdout
    other = tome("cache", "clear", "--model", "gpt-4o-mini", "--yes")
    assert other.exit_code == 0 and other.stdout == ""
    assert other.stderr == "The cache holds no answers of gpt-4o-mini; nothing to delete.\n"
    cleared = tome("cache", "clear", "--yes")
    assert cleared.exit_code == 0 and cleared.stdout.startswith(f"Deleted {entries:,} cached answers (they cost ¥0.0")
    assert "entries:       0" in tome("cache", "stats").stdout
    assert tome("cache").exit_code in (0, 2)  # no subcommand: help
