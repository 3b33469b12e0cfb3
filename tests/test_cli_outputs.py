"""What `tome summarise` prints reads well: section summaries only where they add something, capped for
documents with hundreds of sections, the same Markdown in every language, honest labels for the offline backend."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.outcomes import Outcome, batch_seconds, outcomes_text
from pipeline.outputs import MAX_SECTION_ENTRIES, MAX_SECTIONS_RATIO, MIN_SECTIONS_BUDGET_CHARS

REPO = Path(__file__).resolve().parents[1]
ZH = REPO / "data" / "zh_shanju_ji.txt"
runner = CliRunner()
WORDS = ["harbour", "keeper", "lamp", "storm", "chart", "village", "boat", "tide", "survey", "letter", "council", "winter", "signal", "rope", "cliff", "gull", "ledger", "engine", "school", "radio", "market", "bridge", "river", "orchard", "mill"]  # fmt: skip


def summarise(*args: str):
    return runner.invoke(app, ["summarise", "--no-prefect", "--no-progress", "--backend", "extractive", *args])


def _sections_doc(path: Path, sections: int, sentences: int) -> Path:
    """A report of ``sections`` headed sections; each sentence names things from a large made-up vocabulary,
    so that, as in a real report, sections differ and summaries of summaries are not copies of each other."""
    rng = random.Random(7)
    syllables = ["ka", "lo", "mi", "ren", "tu", "sa", "vel", "dor", "pi", "nu", "ash", "bri", "cor", "el"]
    vocab = ["".join(rng.choice(syllables) for _ in range(3)) for _ in range(3000)]
    parts = ["# A Long Report", ""]
    for i in range(1, sections + 1):
        parts += [f"## Section {i}", ""]
        body = [
            f"The {rng.choice(WORDS)} of {rng.choice(vocab)} met the {rng.choice(vocab)} and the "
            f"{rng.choice(vocab)} near {rng.choice(vocab)} {rng.choice(vocab)} on day {rng.randint(1, 300)}."
            for _ in range(sentences)
        ]
        parts += [" ".join(body), ""]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def test_one_section_gets_no_section_summaries(tmp_path: Path) -> None:
    doc = _sections_doc(tmp_path / "one.md", sections=1, sentences=30)
    result = summarise(str(doc))
    assert result.exit_code == 0, result.stderr
    assert "## Section summaries" not in result.stdout
    assert json.loads(summarise(str(doc), "--json").stdout)["sections"] == []


def test_sections_that_would_repeat_the_final_summary_are_left_out(tmp_path: Path) -> None:
    doc = _sections_doc(tmp_path / "short.md", sections=3, sentences=4)  # one chunk: its summary is the final
    payload = json.loads(summarise(str(doc), "--json").stdout)
    assert payload["levels"] == 1 and payload["sections"] == []
    assert "## Section summaries" not in summarise(str(doc)).stdout


def test_a_few_long_sections_each_get_a_summary(tmp_path: Path) -> None:
    # Long enough (~180k tokens) for several calls in the offline backend's own window (one call holds a book).
    doc = _sections_doc(tmp_path / "long.md", sections=3, sentences=3000)
    payload = json.loads(summarise(str(doc), "--json").stdout)
    titles = [s["title"] for s in payload["sections"]]
    assert len(titles) >= 2 and all(s["text"].strip() != payload["final"].strip() for s in payload["sections"])
    markdown = summarise(str(doc)).stdout
    assert markdown.count("\n### ") == len(titles)


def test_hundreds_of_sections_are_capped_and_grouped_by_the_tree(
    tmp_path: Path, moonshot_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model's 8k window makes a tree of over 50 chunks here (the offline backend would read it in a few calls).
    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    doc = _sections_doc(tmp_path / "many.md", sections=400, sentences=40)
    server = ["--backend", "moonshot", "--base-url", moonshot_server.base_url, "--tier", "unlimited"]
    result = runner.invoke(app, ["summarise", "--no-prefect", "--no-progress", *server, str(doc), "--json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    chunks = [n for n in payload["tree"] if n["level"] == 0]
    assert len(chunks) > MAX_SECTION_ENTRIES  # uncapped, there would be one entry per chunk
    sections = payload["sections"]
    assert 2 <= len(sections) <= MAX_SECTION_ENTRIES
    total = sum(len(s["text"]) for s in sections)
    assert total <= max(MIN_SECTIONS_BUDGET_CHARS, MAX_SECTIONS_RATIO * len(payload["final"]))
    assert all(" … " in s["title"] for s in sections)  # each covers a run of sections, from the tree
    assert sections[0]["title"].startswith("Section 1 … ") and sections[-1]["title"].endswith("Section 400")


def test_markdown_is_the_same_in_any_language(lighthouse: Path) -> None:
    if not ZH.is_file():
        pytest.skip("data/zh_shanju_ji.txt is absent")

    def skeleton(markdown: str) -> list[str]:
        heads = [line.split(":")[0] for line in markdown.splitlines() if line.startswith(("#", "---"))]
        footer = markdown.strip().splitlines()[-1]
        return [*heads, " · ".join(part.split()[-1] for part in footer.split(" · ")[1:-1])]

    en, zh = summarise(str(lighthouse)).stdout, summarise(str(ZH)).stdout
    assert en.startswith("# Summary: ") and zh.startswith("# Summary: ")
    assert "摘要" not in zh.splitlines()[0]
    assert {line for line in skeleton(zh) if not line.startswith("###")} <= {
        line for line in skeleton(en) if not line.startswith("###")
    }


def test_the_offline_backend_shows_no_model_price_or_currency(lighthouse: Path) -> None:
    result = runner.invoke(app, ["summarise", "--no-prefect", str(lighthouse)])  # auto, no key: extractive
    assert result.exit_code == 0, result.stderr
    footer = result.stdout.strip().splitlines()[-1]
    assert footer.startswith("*extractive · ") and "moonshot" not in footer and "CNY" not in footer
    done = result.stderr.strip().splitlines()[-1]
    assert done.startswith("the_lighthouse_keeper.md: done, ") and "¥" not in done
    payload = json.loads(summarise(str(lighthouse), "--json").stdout)
    assert payload["model"] == "extractive" and payload["usage"]["currency"] is None
    assert payload["usage"]["cost"] is None
    runs = runner.invoke(app, ["runs"]).stdout.splitlines()
    assert runs[1].split()[-1] == "extractive" and "¥" not in runs[1] and "moonshot" not in "\n".join(runs)


def test_batch_total_time_is_the_batch_wall_time() -> None:
    a = Outcome(name="a", path="a", status="done", seconds=10.0, started_at=100.0, finished_at=110.0)
    b = Outcome(name="b", path="b", status="done", seconds=15.0, started_at=105.0, finished_at=120.0)
    c = Outcome(name="c", path="c", status="done", seconds=5.0, started_at=121.0, finished_at=126.0)
    assert batch_seconds([a, b, c]) == 26.0  # not the longest document (15 s), not the sum (30 s)
    total = outcomes_text([a, b, c]).splitlines()[-1]
    assert total.startswith("total") and total.endswith("26.0 s")


def test_every_warning_in_a_batch_names_its_document(lighthouse: Path, moonshot_server, monkeypatch, tmp_path) -> None:
    if not ZH.is_file():
        pytest.skip("data/zh_shanju_ji.txt is absent")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "keeper.md").write_bytes(lighthouse.read_bytes())
    (folder / "shanju.txt").write_bytes(ZH.read_bytes())
    cut = {
        "id": "x", "object": "chat.completion", "created": 1, "model": "moonshot-v1-8k",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Cut short"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }  # fmt: skip
    moonshot_server.gateway.inject("response", times=1000, body=cut)  # every answer is cut off
    env = {**os.environ, "TOME_HOME": str(tmp_path / "home"), "MOONSHOT_API_KEY": moonshot_server.api_key}
    result = subprocess.run(
        [sys.executable, "-m", "flows", "batch", str(folder), "--no-prefect", "--no-progress", "--base-url",
         moonshot_server.base_url, "-o", str(tmp_path / "out")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "cut off" in line]
    assert {line.split(":")[0] for line in warnings} == {"keeper.md", "shanju.txt"}
