"""Prefect's offline defaults: set before import, never overriding the user, never ~/.prefect."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from flows.prefect_env import PREFECT_DEFAULTS, _HideReportedErrors, configure_prefect_env, prefect_home
from pipeline.errors import CorruptDocumentError, QuotaExhaustedError

REPO = Path(__file__).resolve().parents[1]


def test_defaults_fill_an_empty_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOME_HOME", str(tmp_path / "home"))
    env: dict[str, str] = {}
    configure_prefect_env(env)
    assert env["PREFECT_HOME"] == str(tmp_path / "home" / "prefect")
    assert Path(env["PREFECT_HOME"]).is_dir()
    assert env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "120"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["DO_NOT_TRACK"] == "1"
    assert env["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"] == "200"
    assert set(PREFECT_DEFAULTS) <= set(env)


def test_user_values_win(tmp_path: Path) -> None:
    env = {"PREFECT_HOME": str(tmp_path / "mine"), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "30"}
    configure_prefect_env(env)
    assert env["PREFECT_HOME"] == str(tmp_path / "mine")
    assert env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "30"
    assert prefect_home(env) == tmp_path / "mine"


def test_importing_flows_applies_settings_before_prefect(tmp_path: Path) -> None:
    """A fresh interpreter: importing ``flows`` then prefect gives our settings and leaves ~ alone."""
    code = (
        "import flows, prefect.settings as s; c = s.get_current_settings();"
        "print(c.home); print(c.server.ephemeral.startup_timeout_seconds); print(c.server.analytics_enabled)"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "user"), "TOME_HOME": str(tmp_path / "th")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    assert out == [str(tmp_path / "th" / "prefect"), "120", "False"]
    assert not (tmp_path / "user" / ".prefect").exists()


def _record(name: str, msg: str, exc: BaseException | None = None, level: int = logging.ERROR) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord(name, level, __file__, 1, msg, None, exc_info)


def test_console_filter_hides_only_tome_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOME_RAISE_ERRORS", raising=False)
    f = _HideReportedErrors()
    quota = QuotaExhaustedError("tpd used up")
    assert not f.filter(_record("prefect.flow_runs", "Encountered exception", quota))
    assert f.filter(_record("prefect.flow_runs", "Encountered exception", ValueError("bug")))
    failed = "Finished in state Failed('Task run encountered an exception CorruptDocumentError: bad pdf')"
    assert CorruptDocumentError.__name__ in failed
    assert not f.filter(_record("prefect.task_runs", failed))
    assert f.filter(_record("prefect.task_runs", "Finished in state Failed('... KeyError: x')"))
    assert not f.filter(_record("EventsWorker", "Still processing items: 9 items remaining...", level=logging.WARNING))
    assert f.filter(_record("tome", "a warning of ours", level=logging.WARNING))
    monkeypatch.setenv("TOME_RAISE_ERRORS", "1")
    assert f.filter(_record("prefect.flow_runs", "Encountered exception", quota))


def test_console_filter_hides_the_reports_of_a_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.exceptions import TerminationSignal

    monkeypatch.delenv("TOME_RAISE_ERRORS", raising=False)
    f = _HideReportedErrors()
    signal_exc = TerminationSignal(signal=15)
    # a served run stopped mid-run: asyncio's shutdown traceback and Prefect's crash report
    assert not f.filter(_record("asyncio", "unhandled exception during asyncio.run() shutdown", signal_exc))
    assert not f.filter(_record("prefect.flow_runs", "Crash detected! Execution was aborted by a termination signal."))
    assert not f.filter(_record("prefect.flow_runs", "Finished in state Running()"))
    assert not f.filter(_record("prefect.task_runs", "Crash detected! Execution was cancelled by the runtime environment."))
    assert f.filter(_record("asyncio", "unhandled exception during asyncio.run() shutdown", ValueError("bug")))
    assert f.filter(_record("prefect.flow_runs", "Finished in state Crashed('out of memory')"))
