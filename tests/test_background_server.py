"""tome's background Prefect server: when it is used, its state file, and how a recorded server is judged
(a PID that is gone or belongs to another program, a port someone else took, another Prefect version).
Starting a real server: tests/integration/test_background_server.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.background_server import (
    MODE_ENV,
    ServerFiles,
    ServerStartError,
    ServerState,
    ServerStatus,
    choose_port,
    connect,
    installed_prefect,
    port_free,
    process_alive,
    read_state,
    served_version,
    server_env,
    server_status,
    stop,
    wait_ready,
    wants_background,
    write_state,
)
from flows.cli import app
from flows.prefect_server import free_port
from pipeline.errors import ConfigError
from tests.conftest import local_http_server


def _state(pid: int, port: int, version: str | None = None) -> ServerState:
    return ServerState(pid=pid, port=port, prefect_version=version or installed_prefect(), started_at="2026-12-06T07:00:00+00:00")


def _exited_pid() -> int:
    """The PID of a process that has exited and been reaped (as after a reboot or a crash)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def files(tmp_path: Path) -> ServerFiles:
    return ServerFiles(tmp_path / "prefect")


@pytest.fixture
def other_program() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not a Prefect server (a recorded PID the system gave to something else)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


class _Answer(BaseHTTPRequestHandler):
    version_answer = b'"2.20.0"'

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body, code = (self.version_answer, 200) if self.path == "/api/admin/version" else (b"{}", 404)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def old_prefect() -> Iterator[int]:
    """A real HTTP server on 127.0.0.1 that says it is Prefect 2.20.0; its port."""
    with local_http_server(_Answer) as port:
        yield port


def test_the_background_server_is_the_default_unless_configured_otherwise() -> None:
    assert wants_background({})
    assert wants_background({MODE_ENV: "background"})
    assert not wants_background({MODE_ENV: "ephemeral"})
    assert not wants_background({MODE_ENV: " Ephemeral "})
    assert not wants_background({"PREFECT_API_URL": "http://prefect-host:4200/api"})  # the user's server wins
    with pytest.raises(ConfigError, match="TOME_PREFECT_SERVER='always'"):
        wants_background({MODE_ENV: "always"})


def test_connect_leaves_a_configured_environment_alone(files: ServerFiles) -> None:
    env = {"PREFECT_HOME": str(files.home), MODE_ENV: "ephemeral"}
    assert connect(env, say=print) is None and "PREFECT_API_URL" not in env
    env = {"PREFECT_HOME": str(files.home), "PREFECT_API_URL": "http://prefect-host:4200/api"}
    assert connect(env, say=print) is None and env["PREFECT_API_URL"] == "http://prefect-host:4200/api"
    assert not files.state.exists()


def test_the_state_file_round_trips_and_a_damaged_one_is_ignored(files: ServerFiles) -> None:
    assert read_state(files) is None
    files.home.mkdir(parents=True)
    state = _state(1234, 4321)
    write_state(files, state)
    assert read_state(files) == state
    assert state.api_url == "http://127.0.0.1:4321/api" and state.ui_url == "http://127.0.0.1:4321"
    files.state.write_text('{"pid": 12', encoding="utf-8")
    assert read_state(files) is None
    files.state.write_text(json.dumps({"pid": "x", "port": 1}), encoding="utf-8")
    assert read_state(files) is None


def test_a_stale_pid_is_not_running_and_stop_only_forgets_it(files: ServerFiles) -> None:
    files.home.mkdir(parents=True)
    pid, port = _exited_pid(), free_port()
    write_state(files, _state(pid, port))
    status = server_status(files)
    assert not status.alive and not status.usable and status.version is None
    assert status.describe() == f"not running (the recorded process {pid} is gone)"
    assert stop(files) == _state(pid, port)
    assert read_state(files) is None


def test_a_recorded_pid_that_another_program_got_is_never_signalled(
    files: ServerFiles, other_program: subprocess.Popen[bytes]
) -> None:
    files.home.mkdir(parents=True)
    write_state(files, _state(other_program.pid, free_port()))
    status = server_status(files)
    assert process_alive(other_program.pid) and not status.alive and not status.usable
    stop(files, grace_s=0.5)
    assert other_program.poll() is None  # still running: stop never signals what is not a Prefect server
    assert read_state(files) is None


def test_an_exited_child_not_yet_reaped_counts_as_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while process_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(proc.pid)  # a zombie until waited for
    finally:
        proc.wait()


def test_a_dead_servers_port_is_reused_unless_someone_else_took_it() -> None:
    port = free_port()
    assert port_free(port) and choose_port(port) == port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert not port_free(port)
        other = choose_port(port)
        assert other != port and port_free(other)
    assert choose_port(None) > 0


def test_served_version_tells_prefect_from_anything_else(old_prefect: int) -> None:
    assert served_version(old_prefect) == "2.20.0"
    assert served_version(free_port()) is None  # nothing listens
    _Answer.version_answer = b"<html>not json</html>"
    try:
        assert served_version(old_prefect) is None
    finally:
        _Answer.version_answer = b'"2.20.0"'


def test_a_server_of_another_prefect_version_is_not_usable(old_prefect: int) -> None:
    state = _state(1, old_prefect)
    status = ServerStatus(state, alive=True, version=served_version(old_prefect))
    assert not status.usable
    assert status.describe().endswith(f"but {installed_prefect()} is installed: restarted on the next run")
    assert ServerStatus(state, alive=True, version=installed_prefect()).usable
    assert not ServerStatus(_state(1, old_prefect, "3.0.0"), alive=True, version=installed_prefect()).usable
    assert ServerStatus(state, alive=True, version=None).describe() == f"not answering (pid 1, port {old_prefect})"


def test_waiting_for_a_server_that_exited_fails_at_once() -> None:
    with pytest.raises(ServerStartError, match="exited while starting"):
        wait_ready(_state(_exited_pid(), free_port()), timeout_s=60)


def test_the_server_gets_no_secrets_and_no_api_url(files: ServerFiles) -> None:
    env = server_env(files, {"MOONSHOT_API_KEY": "sk-secret", "TOME_PDF_PASSWORD": "pw", "PREFECT_API_URL": "x",
                             "TOME_DATABASE_URL": "postgresql://tome:hunter2@db/tome", "GITHUB_TOKEN": "t",
                             "PATH": "/usr/bin", "PREFECT_SERVER_ANALYTICS_ENABLED": "true"})  # fmt: skip
    assert not {"MOONSHOT_API_KEY", "TOME_PDF_PASSWORD", "PREFECT_API_URL", "TOME_DATABASE_URL", "GITHUB_TOKEN"} & set(env)
    assert env["PREFECT_HOME"] == str(files.home) and env["PATH"] == "/usr/bin"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "true"  # the user's own Prefect settings still win
    assert env["DO_NOT_TRACK"] == "1" and env["PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"] == "events,flow_runs"


def test_server_commands_with_no_server(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": ""}
    status = runner.invoke(app, ["server", "status"], env=env)
    assert status.exit_code == 1 and status.stdout.startswith("Prefect server: not running\n")
    stopped = runner.invoke(app, ["server", "stop"], env=env)
    assert stopped.exit_code == 0 and stopped.stdout == "tome's Prefect server was not running.\n"
    elsewhere = runner.invoke(app, ["server", "start"], env={**env, "PREFECT_API_URL": "http://prefect-host:4200/api"})
    assert elsewhere.exit_code == 2
    assert elsewhere.stderr == (
        "Error: PREFECT_API_URL is set (http://prefect-host:4200/api): tome uses that server and starts none of "
        "its own. Unset it to use tome's own server.\n"
    )
    assert "server" in runner.invoke(app, ["--help"]).stdout


def test_a_servers_age_comes_from_its_start_time() -> None:
    from datetime import UTC, datetime, timedelta

    ten_minutes_ago = (datetime.now(UTC) - timedelta(minutes=10)).isoformat(timespec="seconds")
    state = ServerState(pid=1, port=1, prefect_version="3.9.1", started_at=ten_minutes_ago)
    assert 599 <= state.age_s() <= 660
    assert ServerState(pid=1, port=1, prefect_version="3.9.1", started_at="yesterday").age_s() == float("inf")


@pytest.mark.parametrize("reads_like", [["flows.background_app", "--port", "1"], ["prefect", "server", "start"]])
def test_stop_ends_a_hung_server_and_its_process_group(files: ServerFiles, reads_like: list[str]) -> None:
    # A process whose command line reads like tome's server (or `prefect server start`, as earlier versions
    # started) and that answers nothing (hung), with a child in its group; in its own session, as tome starts it.
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    hung = subprocess.Popen([sys.executable, "-c", code, *reads_like], start_new_session=True)
    try:
        files.home.mkdir(parents=True)
        write_state(files, _state(hung.pid, free_port()))
        status = server_status(files)
        assert status.alive and status.version is None and not status.usable
        assert status.describe().startswith(f"not answering (pid {hung.pid}")
        assert stop(files, grace_s=10) is not None
        assert hung.wait(timeout=10) is not None and read_state(files) is None
        group = subprocess.run(["pgrep", "-g", str(hung.pid)], capture_output=True, text=True).stdout.split()
        assert [pid for pid in group if process_alive(int(pid))] == []  # its child too (gone, or a zombie)
    finally:
        if hung.poll() is None:
            hung.kill()
            hung.wait()


async def test_a_plain_get_of_a_ui_page_is_answered_like_a_browsers() -> None:
    """Prefect's UI answers its pages only to requests accepting HTML; tome's server app makes curl's GET one."""
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from flows.background_app import PagesForPlainGets, is_ui_page

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.headers.get("accept", ""))

    app = PagesForPlainGets(Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])]))

    async def accept(path: str, method: str = "GET", **headers: str) -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui") as client:
            return (await client.request(method, path, headers=headers)).text

    assert await accept("/runs/flow-run/1234", Accept="*/*") == "text/html, */*"
    assert await accept("/runs/flow-run/1234", Accept="text/html,application/xhtml+xml") == "text/html,application/xhtml+xml"
    assert await accept("/api/flow_runs/1234", Accept="*/*") == "*/*"  # the API: unchanged
    assert await accept("/assets/index.js", Accept="*/*") == "*/*"  # a static file: unchanged
    assert await accept("/runs/flow-run/1234", "POST", Accept="*/*") == "*/*"
    assert is_ui_page("/") and is_ui_page("/flow-runs/flow-run/1234") and not is_ui_page("/api")

