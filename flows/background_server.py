"""The local Prefect server tome starts in the background on first use and reuses (`tome server ...`).

With no PREFECT_API_URL, Prefect would start (and stop) a temporary server in every tome process: ~7-11 s per
command on 2 cores. Instead tome starts a Prefect server (flows/background_app.py: what ``prefect server start``
runs) once, detached, on a free loopback port, with
the same PREFECT_HOME (so the run history is the one ephemeral runs wrote), records it in
``$PREFECT_HOME/tome-server.json`` and points later commands at it. ``TOME_PREFECT_SERVER=ephemeral`` keeps
Prefect's temporary server; a PREFECT_API_URL the user set is always used as it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from flows.prefect_env import PREFECT_DEFAULTS, prefect_home
from flows.prefect_server import free_port
from pipeline.errors import ConfigError, TomeError
from pipeline.processes import process_alive

MODE_ENV = "TOME_PREFECT_SERVER"
SERVER_MODULE = "flows.background_app"  # the server's process: Prefect's app, as `prefect server start` runs it
BACKGROUND, EPHEMERAL = "background", "ephemeral"
STATE_FILE, LOG_FILE, LOCK_FILE = "tome-server.json", "tome-server.log", "tome-server.lock"
START_TIMEOUT_S = 180.0  # migrations of a fresh database take ~12-16 s on 2 cores; a loaded machine, much more
STOP_GRACE_S = 15.0
# A server nobody asked for must not grow forever: flow runs that ended 90 days ago (Prefect's retention
# period) are deleted, as are old events (Prefect's default). The user's own setting wins.
SERVER_DEFAULTS = {"PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": "events,flow_runs"}
# Secrets a long-lived server process has no use for: never handed to it.
_SECRET_SUFFIXES = ("_API_KEY", "_PASSWORD", "_TOKEN", "_SECRET")


class ServerStartError(TomeError):
    """tome's background Prefect server did not start (its log says why)."""

    exit_code = 1


@dataclass(frozen=True)
class ServerState:
    """What ``tome-server.json`` records about the server tome started."""

    pid: int
    port: int
    prefect_version: str
    started_at: str

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def age_s(self) -> float:
        """Seconds since it was started (a damaged timestamp counts as long ago)."""
        try:
            return (datetime.now(UTC) - datetime.fromisoformat(self.started_at)).total_seconds()
        except (ValueError, TypeError):
            return float("inf")


@dataclass(frozen=True)
class ServerFiles:
    """The server's files, all in its PREFECT_HOME: state, log and the lock that serialises starts."""

    home: Path

    @property
    def state(self) -> Path:
        return self.home / STATE_FILE

    @property
    def log(self) -> Path:
        return self.home / LOG_FILE

    @property
    def lock(self) -> Path:
        return self.home / LOCK_FILE

    @classmethod
    def of(cls, env: Mapping[str, str] | None = None) -> ServerFiles:
        return cls(prefect_home(dict(os.environ if env is None else env)))


def installed_prefect() -> str:
    """The installed Prefect's version (read from its metadata: no import of prefect)."""
    return version("prefect")


def wants_background(env: Mapping[str, str]) -> bool:
    """True unless PREFECT_API_URL is set (the user's server) or ``TOME_PREFECT_SERVER=ephemeral`` (or the
    system has no POSIX sessions and process groups to detach and stop a server with)."""
    if env.get("PREFECT_API_URL", "").strip() or os.name != "posix":
        return False
    mode = env.get(MODE_ENV, BACKGROUND).strip().lower() or BACKGROUND
    if mode not in (BACKGROUND, EPHEMERAL):
        raise ConfigError(f"{MODE_ENV}={mode!r}: use '{BACKGROUND}' (the default) or '{EPHEMERAL}'.")
    return mode == BACKGROUND


# --- the state file ---------------------------------------------------------------------------------------------


def read_state(files: ServerFiles) -> ServerState | None:
    """The recorded server, or None (no file, or one that is damaged: it is then ignored)."""
    try:
        data = json.loads(files.state.read_text(encoding="utf-8"))
        return ServerState(
            pid=int(data["pid"]), port=int(data["port"]), prefect_version=str(data["prefect_version"]),
            started_at=str(data["started_at"]),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(files: ServerFiles, state: ServerState) -> None:
    tmp = files.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state)), encoding="utf-8")
    tmp.replace(files.state)  # a reader never sees half a file


def forget_state(files: ServerFiles) -> None:
    files.state.unlink(missing_ok=True)


@contextlib.contextmanager
def start_lock(files: ServerFiles) -> Iterator[None]:
    """One tome process at a time checks and starts the server (two first runs must not start two)."""
    import fcntl  # POSIX only, like the background server itself (wants_background)

    files.home.mkdir(parents=True, exist_ok=True)
    with files.lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- processes and ports ------------------------------------------------------------------------------------------


def is_prefect_server(pid: int) -> bool:
    """The process runs tome's server app, or ``prefect server start`` (as earlier versions of tome did), not
    an unrelated process that got a recorded PID again."""
    if not process_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the state file
    if SERVER_MODULE.encode() in argv:
        return True
    return any(a.endswith(b"prefect") for a in argv) and b"server" in argv and b"start" in argv


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (so a server can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_port(previous: int | None) -> int:
    """The port the server had before when it is free (bookmarked run URLs keep working), else any free one."""
    return previous if previous and port_free(previous) else free_port()


def served_version(port: int, *, timeout_s: float = 2.0) -> str | None:
    """The Prefect version a server on 127.0.0.1:port reports, or None when nothing (or no Prefect) answers."""
    import httpx

    try:
        response = httpx.get(f"http://127.0.0.1:{port}/api/admin/version", timeout=timeout_s)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, str) else None


# --- status, start, stop ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerStatus:
    """The recorded server (if any) and whether it can be used as it is."""

    state: ServerState | None
    alive: bool  # the recorded process runs and is a Prefect server
    version: str | None  # what its port answers, None when nothing answers

    @property
    def usable(self) -> bool:
        return self.state is not None and self.alive and self.version == self.state.prefect_version == installed_prefect()

    def describe(self) -> str:
        if self.state is None:
            return "not running"
        if self.usable:
            return f"running at {self.state.ui_url} (pid {self.state.pid}, prefect {self.version}, since {self.state.started_at})"
        if not self.alive:
            return f"not running (the recorded process {self.state.pid} is gone)"
        if self.version is None:
            return f"not answering (pid {self.state.pid}, port {self.state.port})"
        return f"running prefect {self.version}, but {installed_prefect()} is installed: restarted on the next run"


def server_status(files: ServerFiles) -> ServerStatus:
    state = read_state(files)
    if state is None:
        return ServerStatus(None, False, None)
    alive = is_prefect_server(state.pid)
    return ServerStatus(state, alive, served_version(state.port) if alive else None)


def server_env(files: ServerFiles, base: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: tome's Prefect defaults, its PREFECT_HOME, no API URL and no secrets (none of
    tome's own settings either: TOME_DATABASE_URL may carry a password, and the server reads none of them)."""
    env = {
        k: v for k, v in base.items()
        if not k.endswith(_SECRET_SUFFIXES) and not k.startswith("TOME_") and k != "PREFECT_API_URL"
    }  # fmt: skip
    for name, value in {**PREFECT_DEFAULTS, **SERVER_DEFAULTS}.items():
        env.setdefault(name, value)
    env["PREFECT_HOME"] = str(files.home)
    return env


def launch(files: ServerFiles, port: int, base_env: Mapping[str, str]) -> ServerState:
    """Start the server detached (its own session: it outlives tome and Ctrl+C) and record it."""
    files.home.mkdir(parents=True, exist_ok=True)
    with files.log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", SERVER_MODULE, "--port", str(port)],
            env=server_env(files, base_env),
            cwd=files.home,  # not the user's folder: a prefect.toml there must not change a shared server
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state = ServerState(
        pid=process.pid, port=port, prefect_version=installed_prefect(),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )  # fmt: skip
    write_state(files, state)
    return state


def wait_ready(state: ServerState, *, timeout_s: float) -> None:
    """Until the server answers with its version; ServerStartError when it exits or the time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process_alive(state.pid):
            raise ServerStartError("the Prefect server exited while starting")
        if served_version(state.port) is not None:
            return
        time.sleep(0.25)
    raise ServerStartError(f"the Prefect server did not answer within {timeout_s:.0f} s")


def stop(files: ServerFiles, *, grace_s: float = STOP_GRACE_S) -> ServerState | None:
    """Stop the recorded server (SIGTERM its process group, SIGKILL after ``grace_s``); the state it had."""
    state = read_state(files)
    if state is None:
        return None
    if is_prefect_server(state.pid):
        _signal_group(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while process_alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_alive(state.pid):
            _signal_group(state.pid, signal.SIGKILL)
    forget_state(files)
    return state


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The server leads its own session (start_new_session), so its group is its PID: uvicorn's children too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def ensure_server(
    files: ServerFiles, base_env: Mapping[str, str], *, say: Callable[[str], None], timeout_s: float = START_TIMEOUT_S
) -> ServerState:
    """The running server, started (or restarted: dead, or another Prefect version) when needed."""
    with start_lock(files):
        status = server_status(files)
        if status.usable and status.state is not None:
            return status.state
        previous = status.state
        if previous is not None and status.alive and status.version is None:
            # A Prefect server that does not answer yet: one whose starter died mid-start may still be migrating
            # (wait out the rest of its start-up time); one that stopped answering later is restarted at once.
            left = timeout_s - previous.age_s()
            with contextlib.suppress(ServerStartError):
                if left > 0:
                    wait_ready(previous, timeout_s=left)
            if server_status(files).usable:
                return previous
        if previous is not None:
            stop(files)
        say(
            "Starting a local Prefect server in the background (the first time takes ~10-20 s; later runs reuse "
            "it; `tome server stop` stops it)."
        )
        return _start(files, base_env, previous_port=previous.port if previous else None, say=say, timeout_s=timeout_s)


def _start(
    files: ServerFiles, base_env: Mapping[str, str], *, previous_port: int | None, say: Callable[[str], None],
    timeout_s: float,
) -> ServerState:
    started = time.monotonic()
    port = choose_port(previous_port)
    while True:
        state = launch(files, port, base_env)
        try:
            wait_ready(state, timeout_s=timeout_s)
        except ServerStartError as exc:
            stop(files)
            # Another process may have taken the port between choosing and binding: once more, on another.
            if port_free(port) or time.monotonic() - started > timeout_s / 2:
                raise ServerStartError(f"{exc}; see {files.log}") from None
            port = free_port()
            continue
        say(f"Prefect server ready at {state.ui_url} ({time.monotonic() - started:.1f} s).")
        return state


def connect(env: MutableMapping[str, str], *, say: Callable[[str], None]) -> str | None:
    """Point this process at tome's background server (PREFECT_API_URL in ``env``); its API URL, or None when
    the user's own configuration applies (their PREFECT_API_URL, or the ephemeral opt-out)."""
    if not wants_background(env):
        return None
    state = ensure_server(ServerFiles.of(env), env, say=say)
    env["PREFECT_API_URL"] = state.api_url
    return state.api_url
