"""The plain (no Prefect) side of a run (pipeline.runtime, document_runs, inputs, output_files): inputs, outputs, one document, a batch under one budget, tables."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from flows.outcomes import outcomes_table, outcomes_text
from flows.progress import LineReporter, ProgressBoard
from pipeline.config import RateLimits
from pipeline.document_runs import (
    DocumentRun,
    Outcome,
    exit_code_for,
    level_label,
    summarise_path,
    summarise_paths,
)
from pipeline.errors import ConfigError, DocumentNotFoundError
from pipeline.inputs import expand_inputs, file_sha256, output_names
from pipeline.options import SummariseOptions
from pipeline.output_files import is_current, options_fingerprint
from pipeline.runtime import build_runtime

# Written for these tests: a short Chinese story, so the CJK path runs without the shared corpus.
CHINESE_STORY = """灯塔看守人

第一章 最后的看守人

老陈在石岬灯塔工作了三十八年。每天清晨五点半，他都会爬上一百零六级台阶，把灯熄灭，擦亮铜栏杆，然后回到小屋里写日志。
他的父亲和祖父也都是这座灯塔的看守人。村里的人说，只要石岬的灯还亮着，海上的渔船就不会迷路。
一个星期四，港务长带来了一封信。信上说，灯塔将在明年春天改为自动运行，不再需要看守人。老陈读完信，站在窗前很久没有说话。

第二章 雾夜

那年秋天，海上起了大雾。自动控制系统还没有安装好，雾笛却突然坏了。老陈提着油灯，在风雨中修了整整一夜。
天亮的时候，一艘迷路的渔船终于看见了灯光，平安回到了港口。船长是他小时候的朋友，他握着老陈的手，久久说不出话来。
村里的人聚在码头上，决定给灯塔管理局写信，请求让老陈留下来。

第三章 新的开始

第二年春天，检查员来到了岛上。他看了老陈的日志，看了那一夜的记录，沉默了很久。
最后，管理局决定把旧灯塔改成海事博物馆，请老陈做第一任馆长。每到傍晚，孩子们都会跟着他爬上塔顶，听他讲大海和灯光的故事。
"""


@pytest.fixture
def docs(tmp_path: Path, lighthouse: Path) -> Path:
    """A folder with an English and a Chinese document, a corrupt PDF, and an old summary file."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(lighthouse, folder / "lighthouse.md")
    (folder / "dengta.txt").write_text(CHINESE_STORY, encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    (folder / "old.summary.md").write_text("# an earlier output\n", encoding="utf-8")
    return folder


def _runtime(**kw):
    options = SummariseOptions(**{"backend": "extractive", **kw})
    return build_runtime(options)


# --- inputs and output names ----------------------------------------------------------------------------------


def test_expand_inputs_takes_files_folders_and_globs(docs: Path, tmp_path: Path) -> None:
    in_folder = expand_inputs([str(docs)])
    assert [p.name for p in in_folder] == ["broken.pdf", "dengta.txt", "lighthouse.md"]  # no *.summary.*
    assert [p.name for p in expand_inputs([str(docs)], "*.md")] == ["lighthouse.md"]
    assert [p.name for p in expand_inputs([str(docs / "*.txt")])] == ["dengta.txt"]
    assert expand_inputs([str(docs / "lighthouse.md"), str(docs)], "*.md") == [docs / "lighthouse.md"]
    out = docs / "summaries"
    out.mkdir()
    (out / "x.txt").write_text("not an input", encoding="utf-8")
    assert out / "x.txt" not in expand_inputs([str(docs)], "**/*", exclude=out)
    with pytest.raises(DocumentNotFoundError, match="missing.txt"):
        expand_inputs([str(tmp_path / "missing.txt")])


def test_output_names_are_stems_unless_they_clash(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    paths = [a / "alice.txt", a / "alice.pdf", a / "bob.txt", b / "bob.txt", a / "carol.md"]
    names = output_names(paths)
    assert names[a / "alice.txt"] == "alice.txt" and names[a / "alice.pdf"] == "alice.pdf"
    assert names[a / "carol.md"] == "carol"
    assert names[a / "bob.txt"].startswith("bob.txt-") and names[a / "bob.txt"] != names[b / "bob.txt"]


def test_options_fingerprint_ignores_rate_limits() -> None:
    base = SummariseOptions(backend="extractive")
    assert options_fingerprint(base) == options_fingerprint(SummariseOptions(backend="extractive", rpm=5, tier="tier0"))
    assert options_fingerprint(base) != options_fingerprint(SummariseOptions(backend="extractive", length="short"))


def test_options_pick_a_model_of_the_chosen_provider() -> None:
    assert SummariseOptions(backend="openai").settings().model == "gpt-4o-mini"
    assert SummariseOptions(backend="deepseek").settings().model == "deepseek-chat"
    assert SummariseOptions(backend="moonshot-ai").settings().provider == "moonshot-ai"
    assert SummariseOptions().settings().model == "moonshot-v1-8k"
    with pytest.raises(ConfigError, match="Unknown model"):
        SummariseOptions(model="gpt-17").settings()
    limits = SummariseOptions(tier="tier0", rpm=7, tpd=0).limits(SummariseOptions(tier="tier0").settings())
    assert (limits.concurrency, limits.rpm, limits.tpd) == (1, 7, 0)


# --- one document, outputs, content tracking ------------------------------------------------------------------


async def test_summarise_path_writes_outputs_and_tracks_content(docs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runtime = _runtime()
    try:
        run = await summarise_path(runtime, docs / "lighthouse.md", name="lighthouse", out_dir=out)
    finally:
        await runtime.aclose()
    assert run.error is None and run.outcome.status == "done" and run.outcome.exit_code == 0
    # One call: the offline backend reads the story in its own window (planning_window), not the 8k model's.
    assert run.outcome.calls >= 1 and run.outcome.prompt_tokens > 0 and run.outcome.cost == 0
    md, js = out / "lighthouse.summary.md", out / "lighthouse.summary.json"
    assert run.outcome.outputs == [str(md), str(js), str(out / "lighthouse.summary.html")]
    assert md.read_text(encoding="utf-8").startswith("# ")
    payload = json.loads(js.read_text(encoding="utf-8"))
    assert payload["source"]["sha256"] == file_sha256(docs / "lighthouse.md")
    assert payload["backend"] == "extractive" and payload["final"]
    options = SummariseOptions(backend="extractive")
    sha = file_sha256(docs / "lighthouse.md")
    assert is_current(out, "lighthouse", source_sha256=sha, options=options)
    assert not is_current(out, "lighthouse", source_sha256="0" * 64, options=options)
    assert not is_current(out, "lighthouse", source_sha256=sha, options=SummariseOptions(backend="extractive", length="long"))
    assert not is_current(out, "dengta", source_sha256=sha, options=options)


async def test_chinese_document_gets_a_chinese_summary(docs: Path) -> None:
    runtime = _runtime()
    try:
        run = await summarise_path(runtime, docs / "dengta.txt")
    finally:
        await runtime.aclose()
    assert run.result is not None
    assert run.result.language == "zh"
    assert "灯塔" in run.result.final or "老陈" in run.result.final


async def test_a_failed_document_is_recorded_not_raised(docs: Path) -> None:
    runtime = _runtime()
    try:
        run = await summarise_path(runtime, docs / "broken.pdf")
        runs = runtime.store.list_runs()
    finally:
        await runtime.aclose()
    assert run.outcome.status == "failed" and run.outcome.exit_code == 2 and run.result is None
    assert run.outcome.error and "broken.pdf" in run.outcome.error
    assert [(r.status, Path(r.document).name) for r in runs] == [("failed", "broken.pdf")]


def test_level_labels_name_document_level_and_calls(docs: Path) -> None:
    runtime = _runtime()
    try:
        from pipeline.documents import load_document
        from pipeline.engine import SummaryEngine

        engine = SummaryEngine(
            backend=runtime.backend, store=runtime.store, settings=runtime.settings, model=runtime.model
        )
        state = engine.prepare(load_document(docs / "lighthouse.md"))
    finally:
        runtime.store.close()
    assert level_label("lighthouse.md", state, 0) == f"lighthouse.md · level 0 ({len(state.chunks)} calls)"
    if len(state.plan.calls_per_level) > 1:
        assert level_label("lighthouse.md", state, 1) == f"lighthouse.md · level 1 (~{state.plan.calls_per_level[1]} calls)"
    assert level_label("lighthouse.md", state, 99) == "lighthouse.md · level 99"


# --- several documents under one budget, against the Moonshot-compatible server --------------------------------


async def test_batch_one_bad_document_does_not_stop_the_others(docs: Path, tmp_path: Path, moonshot_server, monkeypatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    lines: list[str] = []

    class Lines:
        def write(self, s: str) -> None:
            lines.append(s)

        def flush(self) -> None:
            pass

    board = ProgressBoard(LineReporter(Lines(), interval_s=0.0))  # type: ignore[arg-type]
    runtime = build_runtime(SummariseOptions(backend="moonshot", base_url=moonshot_server.base_url), board=board)
    out = tmp_path / "out"
    try:
        paths = expand_inputs([str(docs)])
        runs = await summarise_paths(runtime, paths, out_dir=out)
    finally:
        await runtime.aclose()
    by_name = {r.outcome.name: r.outcome for r in runs}
    assert {n: o.status for n, o in by_name.items()} == {"broken.pdf": "failed", "dengta.txt": "done", "lighthouse.md": "done"}
    assert by_name["lighthouse.md"].calls >= 2 and by_name["lighthouse.md"].cost > 0
    assert by_name["lighthouse.md"].currency == "CNY"
    assert sorted(p.name for p in out.iterdir()) == [
        "dengta.summary.html", "dengta.summary.json", "dengta.summary.md",
        "lighthouse.summary.html", "lighthouse.summary.json", "lighthouse.summary.md",
    ]  # fmt: skip
    assert moonshot_server.stats().requests >= by_name["lighthouse.md"].calls
    assert exit_code_for([o for o in by_name.values()]) == 1
    text = "".join(lines)
    assert "lighthouse.md · level 0:" in text and "dengta.txt: done" in text and "broken.pdf: failed" in text


async def test_rerun_is_served_from_the_cache(lighthouse: Path, moonshot_server, monkeypatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    options = SummariseOptions(backend="moonshot", base_url=moonshot_server.base_url)
    outcomes = []
    for _ in range(2):
        runtime = build_runtime(options)
        try:
            outcomes.append((await summarise_path(runtime, lighthouse)).outcome)
        finally:
            await runtime.aclose()
    first, second = outcomes
    assert first.status == second.status == "done"
    assert second.cached_calls >= first.calls > 0 and second.calls == 0 and second.cost == 0


async def test_quota_exhausted_is_status_quota_exit_3(lighthouse: Path, moonshot_server_factory, monkeypatch) -> None:
    srv = moonshot_server_factory(limits=RateLimits(concurrency=0, tpd=6000))
    monkeypatch.setenv("MOONSHOT_API_KEY", srv.api_key)
    runtime = build_runtime(SummariseOptions(backend="moonshot", base_url=srv.base_url))
    try:
        run = await summarise_path(runtime, lighthouse)
        records = runtime.store.list_runs()
    finally:
        await runtime.aclose()
    assert run.outcome.status == "quota" and run.outcome.exit_code == 3
    assert records[0].status == "quota"
    assert exit_code_for([run.outcome, Outcome(name="x", path="x", status="failed")]) == 3


# --- tables and exit codes ------------------------------------------------------------------------------------


def test_tables_and_exit_codes() -> None:
    done = Outcome(name="a.txt", path="a.txt", status="done", calls=12, cached_calls=2, prompt_tokens=53210,
                   completion_tokens=4000, cost=0.1234, currency="CNY", seconds=3.25)  # fmt: skip
    bad = Outcome(name="b.pdf", path="b.pdf", status="failed", exit_code=2, error="b.pdf is damaged | truncated")
    md = outcomes_table([done, bad])
    assert "| a.txt | done | 12 | 2 | 53,210 | 4,000 | ¥0.12 | 3.2 s |" in md
    assert "| total | 1/2 ok | 12 | 2 | 53,210 | 4,000 | ¥0.12 | 3.2 s |" in md
    assert "- **b.pdf**: b.pdf is damaged | truncated" in md
    text = outcomes_text([done, bad])
    assert text.splitlines()[0].split() == ["document", "status", "calls", "cached", "tokens", "in", "tokens", "out", "cost", "time"]
    assert text.splitlines()[-1] == "b.pdf: b.pdf is damaged | truncated"
    assert exit_code_for([done]) == 0
    assert exit_code_for([done, Outcome(name="c", path="c", status="skipped")]) == 0
    assert exit_code_for([done, bad]) == 1
    assert isinstance(DocumentRun(done).outcome, Outcome)


async def test_shared_budget_is_the_sql_budget_when_asked(moonshot_server, monkeypatch) -> None:
    from pipeline.budget import InProcessBudget, SqlBudget

    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    options = SummariseOptions(backend="moonshot", base_url=moonshot_server.base_url)
    runtime = build_runtime(options, env={**os.environ, "TOME_SHARED_BUDGET": "1"})
    try:
        assert isinstance(runtime.budget, SqlBudget)
    finally:
        await runtime.aclose()
    runtime = build_runtime(options)
    try:
        assert isinstance(runtime.budget, InProcessBudget)
    finally:
        await runtime.aclose()
