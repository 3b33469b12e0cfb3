"""A window that tome.toml over-declares costs at most one refusal per level; a silent cut is split, not retried.

The test server plays llama-cpp-python (states no window; refuses a prompt over it, silently cuts a completion
that would overflow it) and llama-server (states its window in /props) on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.store import Store
from pipeline.testing import MoonshotTestServer
from tests.conftest import LIGHTHOUSE

REPO = Path(__file__).resolve().parents[1]
CHINESE = REPO / "data" / "zh_shanju_ji.txt"
runner = CliRunner()

WINDOW = 2048


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, declared: int) -> None:
    path = tmp_path / "tome.toml"
    path.write_text(
        f'[models."smollm2"]\nprovider = "local"\ncontext_tokens = {declared}\n', encoding="utf-8"
    )
    monkeypatch.setenv("TOME_CONFIG", str(path))


def _summarise(srv: MoonshotTestServer, doc: Path, out: Path, *more: str):
    result = runner.invoke(
        app,
        ["summarise", "--no-prefect", "--no-progress", str(doc), "--backend", "local", "--base-url", srv.base_url,
         "--model", "smollm2", "--tier", "unlimited", "-o", str(out), *more],
    )  # fmt: skip
    data_file = out / f"{doc.stem}.summary.json"
    return result, json.loads(data_file.read_text(encoding="utf-8")) if data_file.is_file() else {}


def _refusals(srv: MoonshotTestServer) -> int:
    return sum(1 for r in srv.chat_log() if r.status == 400)


@pytest.mark.parametrize("doc", [LIGHTHOUSE, CHINESE], ids=["english", "chinese"])
def test_an_over_declared_window_costs_at_most_one_refusal_per_level(
    moonshot_server_factory: Callable[..., MoonshotTestServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    doc: Path,
) -> None:
    caplog.set_level(logging.WARNING, logger="tome.engine")
    _config(tmp_path, monkeypatch, declared=8192)
    srv = moonshot_server_factory(keys=(), models={"smollm2": WINDOW}, flavour="llama-cpp-python")
    result, data = _summarise(srv, doc, tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert 1 <= _refusals(srv) <= data["levels"]
    assert all(not n["truncated"] for n in data["tree"])
    warnings = [r.getMessage() for r in caplog.records if r.name == "tome.engine" and r.levelno == logging.WARNING]
    assert len([w for w in warnings if "2048" in w and "8192" in w]) == 1, warnings  # once, naming both windows

    # A rerun asks nothing: every answer and every refusal is cached.
    before = srv.stats().requests
    again, data2 = _summarise(srv, doc, tmp_path / "again")
    assert again.exit_code == 0, again.stderr
    assert srv.stats().requests == before
    assert data2["final"] == data["final"]


def test_a_learned_window_is_kept_for_later_runs_against_the_same_server(
    moonshot_server_factory: Callable[..., MoonshotTestServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _config(tmp_path, monkeypatch, declared=8192)
    srv = moonshot_server_factory(keys=(), models={"smollm2": WINDOW}, flavour="llama-cpp-python")
    first, _ = _summarise(srv, LIGHTHOUSE, tmp_path / "out")
    assert first.exit_code == 0, first.stderr
    assert _refusals(srv) >= 1
    srv.reset_stats()
    second, data = _summarise(srv, CHINESE, tmp_path / "out2")  # another document: nothing cached for it
    assert second.exit_code == 0, second.stderr
    assert _refusals(srv) == 0 and data["usage"]["calls"] > 0


def test_a_silent_cut_is_split_never_retried_with_more_room(
    moonshot_server_factory: Callable[..., MoonshotTestServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Declared a little above the server's window: prompts fit, prompt + max_tokens does not, and the server
    # (as llama-cpp-python does) stops at its window with finish_reason "length" instead of refusing.
    _config(tmp_path, monkeypatch, declared=WINDOW)
    window = 1200
    srv = moonshot_server_factory(keys=(), models={"smollm2": window}, flavour="llama-cpp-python")
    result, data = _summarise(srv, LIGHTHOUSE, tmp_path / "out", "--context", "none")
    assert result.exit_code == 0, result.stderr
    log = srv.chat_log()
    cuts = [r for r in log if r.finish_reason == "length" and r.prompt_tokens + r.completion_tokens >= window - 2]
    assert cuts, "the server cut at least one answer at its window"
    first_cut = log.index(cuts[0])
    # Never more room than the window has: every later request fits prompt + max_tokens into it.
    assert all(r.prompt_tokens + r.max_tokens <= window for r in log[first_cut + 1 :])
    assert len(cuts) + _refusals(srv) <= data["levels"]
    assert all(not n["truncated"] for n in data["tree"])
    learned = Store().window_get("smollm2", srv.base_url)
    assert learned is not None and window - 2 <= learned <= window  # the server's count of the cut answer


def test_a_window_the_server_states_needs_no_refusal(
    moonshot_server_factory: Callable[..., MoonshotTestServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tome.config")
    _config(tmp_path, monkeypatch, declared=8192)
    srv = moonshot_server_factory(keys=(), models={"smollm2": WINDOW}, flavour="llama-server")
    result, data = _summarise(srv, LIGHTHOUSE, tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert _refusals(srv) == 0
    said = " ".join(r.getMessage() for r in caplog.records if r.name == "tome.config")
    assert "/props" in said and "8192" in said and "2048" in said  # the disagreement is reported
