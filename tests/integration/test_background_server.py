"""With nothing configured, `tome summarise` starts a local Prefect server in the background once, reuses it,
prints the flow run's UI address, restarts it for another Prefect version, and `tome server stop` stops it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.background_server import (
    ServerFiles,
    ServerStartError,
    ensure_server,
    is_prefect_server,
    process_alive,
    read_state,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENGLISH = REPO / "data" / "the_lighthouse_keeper.md"
RUN_URL = re.compile(r"^Prefect flow run 'the_lighthouse_keeper\.md' \(([0-9a-f-]{36})\): (http://127\.0\.0\.1:(\d+)/\S+)$", re.M)


def _tome(env: dict[str, str], *args: str, env_python: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *(env_python or []), "-m", "flows", *args], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=400,
    )  # fmt: skip


def _task_runs(api_url: str, flow_run_id: str) -> dict[str, str]:
    """Task-run name -> state once all are final (Prefect's engine reports them as events, recorded with a lag)."""
    deadline = time.monotonic() + 60
    while True:
        runs = httpx.post(f"{api_url}/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}}, timeout=30).json()
        states = {r["name"]: r["state_type"] for r in runs}
        if (len(states) >= 2 and "RUNNING" not in states.values() and "PENDING" not in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def _levels(api_url: str, flow_run_id: str) -> dict[str, str]:
    """The run's level task runs ("... · level 0 (N calls)"), each expected Completed."""
    names = _task_runs(api_url, flow_run_id)
    levels = {n: "COMPLETED" for n in names if re.fullmatch(r"the_lighthouse_keeper\.md · level \d+ \(\d+ calls\)", n)}
    assert levels, names
    return levels


def _server_processes(home: Path) -> list[int]:
    """PIDs of Prefect server processes whose PREFECT_HOME is ``home`` (this test's only)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not is_prefect_server(int(proc.name)):
            continue
        with contextlib.suppress(OSError):
            if f"PREFECT_HOME={home}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
    return found


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def nothing_configured(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment with no PREFECT_* or TOME_* setting but TOME_HOME; every server it started is stopped."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "user"),
           "TOME_HOME": str(tmp_path / "tome-home")}  # fmt: skip
    home = tmp_path / "tome-home" / "prefect"
    try:
        yield env
    finally:
        _tome(env, "server", "stop")
        for pid in _server_processes(home):  # only ever this test's own server (matched by its PREFECT_HOME)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def test_the_background_server_is_started_once_reused_and_stopped(nothing_configured: dict[str, str]) -> None:
    if not ENGLISH.is_file():
        pytest.skip("data/the_lighthouse_keeper.md is missing")
    env = nothing_configured
    files = ServerFiles(Path(env["TOME_HOME"]) / "prefect")

    first = _tome(env, "summarise", str(ENGLISH), "--no-progress")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("# Summary: The Lighthouse Keeper")
    assert "Starting a local Prefect server in the background" in first.stderr
    started = read_state(files)
    assert started is not None and process_alive(started.pid)
    assert RUN_URL.search(first.stderr), first.stderr

    second = _tome(env, "summarise", str(ENGLISH), "--no-progress", "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["final"]
    assert "Starting a local Prefect server" not in second.stderr  # reused, not started again
    assert [line for line in second.stderr.splitlines() if "| WARNING |" in line or "| ERROR |" in line] == []
    match = RUN_URL.search(second.stderr)
    assert match, second.stderr
    run_id, url, port = match.group(1), match.group(2), int(match.group(3))
    assert read_state(files) == started and port == started.port
    assert _server_processes(files.home) == [started.pid]  # one server (its uvicorn runs in-process)
    # The printed address opens the run in the UI (for a browser, and for a plain GET), and the API has the run.
    page = httpx.get(url, timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert httpx.get(url, headers={"Accept": "text/html"}, timeout=30).status_code == 200
    run = httpx.get(f"{started.api_url}/flow_runs/{run_id}", timeout=30).json()
    assert run["name"] == "the_lighthouse_keeper.md" and run["state_type"] == "COMPLETED"
    assert _task_runs(started.api_url, run_id) == {
        "the_lighthouse_keeper.md · load and plan": "COMPLETED", **_levels(started.api_url, run_id)
    }  # fmt: skip

    # Recorded over the server's REST API, without importing Prefect; Prefect's own engine on request.
    traced = _tome(env, "summarise", str(ENGLISH), "--no-progress", "--backend", "extractive", env_python=["-X", "importtime"])
    assert traced.returncode == 0, traced.stderr
    assert RUN_URL.search(traced.stderr)
    imported = re.findall(r"^import time:.*\|\s+((?:prefect|fastapi)\S*)$", traced.stderr, re.M)
    assert "flows.prefect_rest" in traced.stderr and imported == [], imported
    engine = _tome({**env, "TOME_PREFECT_CLIENT": "prefect"}, "summarise", str(ENGLISH), "--no-progress", "--backend", "extractive")
    assert engine.returncode == 0, engine.stderr
    engine_run = RUN_URL.search(engine.stderr)
    assert engine_run and int(engine_run.group(3)) == started.port, engine.stderr
    assert "Starting a local Prefect server" not in engine.stderr
    names = {r["name"] for r in httpx.post(f"{started.api_url}/flows/filter", json={}, timeout=30).json()}
    assert names == {"summarise-document"}  # both ways record the same flow
    assert _task_runs(started.api_url, engine_run.group(1)) == {
        "the_lighthouse_keeper.md · load and plan": "COMPLETED", **_levels(started.api_url, engine_run.group(1))
    }  # fmt: skip

    status = _tome(env, "server", "status")
    assert status.returncode == 0 and f"running at {started.ui_url} (pid {started.pid}" in status.stdout

    stopped = _tome(env, "server", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"Stopped the Prefect server at {started.ui_url} (pid {started.pid}).\n"
    assert not process_alive(started.pid) and _server_processes(files.home) == []
    assert _port_closed(started.port)
    assert read_state(files) is None
    assert _tome(env, "server", "status").returncode == 1


def test_a_server_of_another_prefect_version_is_replaced(nothing_configured: dict[str, str]) -> None:
    env = nothing_configured
    files = ServerFiles(Path(env["TOME_HOME"]) / "prefect")
    # Two commands at once on a machine with no server yet (two shells, a script): one server, both use it.
    both = [subprocess.Popen([sys.executable, "-m", "flows", "server", "start"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=400) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    old = read_state(files)
    assert old is not None
    assert [out for out, _ in outputs] == [f"Prefect server running at {old.ui_url} (API {old.api_url}, pid {old.pid}).\n"] * 2
    assert sum("Starting a local Prefect server" in err for _, err in outputs) == 1
    assert _server_processes(files.home) == [old.pid]
    # As if tome had been upgraded since it started this server: the recorded version no longer matches.
    state = json.loads(files.state.read_text())
    files.state.write_text(json.dumps({**state, "prefect_version": "3.0.0"}))
    restarted = _tome(env, "server", "start")
    assert restarted.returncode == 0, restarted.stderr
    new = read_state(files)
    assert new is not None and new.pid != old.pid and not process_alive(old.pid)
    assert new.port == old.port  # the port it had is kept, so bookmarked run addresses keep working
    assert _server_processes(files.home) == [new.pid]


def test_a_server_that_cannot_start_is_reported_with_its_log_and_leaves_no_state(tmp_path: Path) -> None:
    """A real start that fails (a Prefect setting the server cannot read): one error naming the log."""
    files = ServerFiles(tmp_path / "prefect")
    said: list[str] = []
    env = {"PATH": "/usr/bin:/bin", "PREFECT_SERVER_API_KEEPALIVE_TIMEOUT": "not-a-number"}
    with pytest.raises(ServerStartError, match=r"exited while starting; see .*tome-server\.log") as failed:
        ensure_server(files, env, say=said.append, timeout_s=120)
    assert said == [said[0]] and said[0].startswith("Starting a local Prefect server in the background")
    assert read_state(files) is None and files.log.is_file() and _server_processes(files.home) == []
    assert "keepalive" in files.log.read_text(encoding="utf-8").lower()
    assert failed.value.exit_code == 1
