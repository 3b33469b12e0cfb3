"""`--focus QUESTION`: every level keeps what answers it (prompts and the offline backend), cached apart from
the plain summary, and `tome eval` scores it on query-focused data (QMSum's specific queries, SQuALITY's
questions)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.config import load_catalog
from pipeline.evaluation.dataset import PRESETS, load_dataset
from pipeline.prompts import MergeInput, focus_of, map_messages, merge_messages
from tests.conftest import tome

REPO = Path(__file__).resolve().parents[1]
QUESTION = "What did the Hydrographic Office do about the Tongue bank and the chart?"


def _topic_hits(text: str) -> int:
    return len(re.findall(r"Hydrographic|chart|survey", text))


def test_plain_prompts_are_unchanged_and_focused_ones_carry_the_question() -> None:
    kwargs = dict(title="T", part=1, parts=2, section=None, context="", words=100, language="en")
    plain = map_messages("Some text.", **kwargs)
    assert plain == map_messages("Some text.", focus="", **kwargs)  # the plain summaries' cache stays valid
    focused = map_messages("Some text.", focus=QUESTION, **kwargs)[1].content
    assert f"<focus>\n{QUESTION}\n</focus>" in focused and "Keep only what helps answer the question" in focused
    assert focus_of(focused) == QUESTION and focus_of(plain[1].content) == ""
    final = merge_messages([MergeInput(1, None, "a"), MergeInput(2, None, "b")], title="T", final=True, context="",
                           words=100, language="zh", focus="灯塔为什么要关闭？")[1].content  # fmt: skip
    assert "<focus>\n灯塔为什么要关闭？\n</focus>" in final and "最终摘要要直接回答这个问题" in final


def test_focus_keeps_what_answers_the_question_offline(lighthouse: Path) -> None:
    plain = tome("summarise", str(lighthouse), "--no-prefect", "--no-progress", "--length", "short", "--json")
    focused = tome("summarise", str(lighthouse), "--no-prefect", "--no-progress", "--length", "short", "--json",
                   "--focus", QUESTION)  # fmt: skip
    assert plain.exit_code == 0 and focused.exit_code == 0, focused.stderr
    a, b = json.loads(plain.stdout), json.loads(focused.stdout)
    assert b["settings"]["focus"] == QUESTION and a["settings"]["focus"] == ""
    assert _topic_hits(b["final"]) > _topic_hits(a["final"])
    # every level kept it: each node of the focused tree mentions the topic at least as often as the plain one's
    plain_nodes = {(n["level"], n["index"]): n["text"] for n in a["tree"]}
    assert sum(_topic_hits(n["text"]) for n in b["tree"]) > sum(_topic_hits(t) for t in plain_nodes.values())
    markdown = tome("summarise", str(lighthouse), "--no-prefect", "--no-progress", "--focus", QUESTION).stdout
    assert markdown.splitlines()[2] == f"> Focus: {QUESTION}"


def test_focused_answers_are_cached_apart_and_every_prompt_asks_the_question(
    lighthouse: Path, moonshot_server, monkeypatch
) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    base = ["summarise", str(lighthouse), "--base-url", moonshot_server.base_url, "--no-prefect", "--json"]
    plain = json.loads(tome(*base).stdout)
    focused_run = tome(*base, "--focus", QUESTION)
    assert focused_run.exit_code == 0, focused_run.stderr
    focused = json.loads(focused_run.stdout)
    assert focused["usage"]["cached_calls"] == 0 and focused["usage"]["calls"] >= plain["usage"]["calls"]
    again = json.loads(tome(*base, "--focus", QUESTION).stdout)
    assert again["usage"]["calls"] == 0 and again["final"] == focused["final"]
    versions = load_catalog().prompt_versions
    shown = tome("runs", "show", focused["run_id"]).stdout
    assert f"focus={QUESTION}" in shown
    assert f"{versions['map']}+{versions['focus']}" in shown and f"{versions['reduce']}+{versions['focus']}" in shown
    for node in focused["tree"]:
        call = json.loads(tome("runs", "show", focused["run_id"], "--call", f"{node['level']}.{node['index']}",
                               "--json").stdout)  # fmt: skip
        assert all(focus_of(c["messages"][1]["content"]) == QUESTION for c in call)


def test_an_empty_focus_is_refused(lighthouse: Path) -> None:
    result = tome("summarise", str(lighthouse), "--no-prefect", "--focus", "  ")
    assert result.exit_code == 2 and result.stderr.startswith("Error: --focus needs a question")
    assert len(result.stderr.splitlines()) == 1


def _qmsum_file(path: Path, lighthouse: Path) -> Path:
    """A QMSum-shaped record (turns, a general query and specific queries) made from a real story."""
    paragraphs = [p for p in lighthouse.read_text(encoding="utf-8").split("\n\n") if p.strip() and not p.startswith("#")]
    turns = [{"speaker": ("Elias", "Nell", "Inspector")[i % 3], "content": p} for i, p in enumerate(paragraphs)]
    hydro = next(p for p in paragraphs if "Hydrographic Office" in p)
    record = {
        "meeting_transcripts": turns,
        "general_query_list": [{"query": "Summarize the whole meeting.", "answer": " ".join(paragraphs[:3])}],
        "specific_query_list": [
            {"query": QUESTION, "answer": hydro},
            {"query": "What did Nell plot at her desk?", "answer": next(p for p in paragraphs if "plotted" in p)},
        ],
    }
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def test_qmsum_specific_queries_become_focused_items(lighthouse: Path, tmp_path: Path) -> None:
    dataset = _qmsum_file(tmp_path / "meeting.jsonl", lighthouse)
    items, name = load_dataset(dataset, fields=PRESETS["qmsum-specific"])
    assert name == "qmsum-specific" and [i.id for i in items] == ["1/q1", "1/q2"]
    assert items[0].focus == QUESTION and "Hydrographic Office" in items[0].references[0]
    plain, _ = load_dataset(dataset)  # detected as qmsum: the general query, no focus
    assert len(plain) == 1 and plain[0].focus == ""
    result = tome("eval", str(dataset), "--preset", "qmsum-specific", "--no-prefect", "--json", "--items")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["systems"][0]["system"] == "tome" and report["systems"][0]["items"] == 2
    assert report["systems"][0]["rouge1"] > 0
    runs = [json.loads(x) for x in tome("runs", "--json").stdout.splitlines()]
    assert {r["settings"]["focus"] for r in runs} == {QUESTION, "What did Nell plot at her desk?"}


def test_eval_focus_applies_one_question_to_every_item() -> None:
    sample = REPO / "data" / "eval_sample.jsonl"
    if not sample.is_file():
        pytest.skip("data/eval_sample.jsonl is absent")
    question = "What happens to the main character at the end?"
    result = tome("eval", str(sample), "--no-prefect", "--json", "--focus", question)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["settings"]["focus"] == question
    runs = [json.loads(x) for x in tome("runs", "--json").stdout.splitlines()]
    assert runs and {r["settings"]["focus"] for r in runs} == {question}
