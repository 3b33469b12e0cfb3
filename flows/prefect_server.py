"""Start a real ``prefect server start`` on 127.0.0.1 and wait until it is healthy (benchmarks, integration tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from flows.prefect_env import PREFECT_DEFAULTS


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prefect_executable() -> str:
    """The ``prefect`` command next to this interpreter (the project's venv)."""
    candidate = Path(sys.executable).with_name("prefect")
    return str(candidate) if candidate.exists() else "prefect"


@dataclass(frozen=True)
class RunningServer:
    """A started server: its API URL and process."""

    api_url: str
    process: subprocess.Popen[bytes]
    home: Path
    log: Path

    def client_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for processes that should use this server (not an ephemeral one)."""
        env = dict(os.environ if base is None else base)
        env.update(PREFECT_DEFAULTS)
        env["PREFECT_API_URL"] = self.api_url
        env["PREFECT_HOME"] = str(self.home)
        return env


def wait_healthy(api_url: str, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> float:
    """Poll ``/health`` until it answers; returns the seconds waited. Raises RuntimeError on timeout/exit."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"prefect server exited with code {process.returncode} before it was healthy")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api_url}/health", timeout=2.0).status_code == 200:
                return time.monotonic() - start
        time.sleep(0.25)
    raise RuntimeError(f"prefect server at {api_url} was not healthy after {timeout_s:.0f} s")


@contextlib.contextmanager
def prefect_server(home: Path, *, port: int | None = None, timeout_s: float = 180.0) -> Iterator[RunningServer]:
    """Run ``prefect server start`` with ``PREFECT_HOME=home`` on 127.0.0.1 until the block exits."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = dict(os.environ)
    env.update(PREFECT_DEFAULTS)
    env["PREFECT_HOME"] = str(home)
    env.pop("PREFECT_API_URL", None)
    env["PREFECT_UI_ENABLED"] = "false"  # nobody looks at it here; saves start-up work
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [prefect_executable(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stopping it stops uvicorn's children too
        )
    try:
        wait_healthy(api_url, timeout_s=timeout_s, process=process)
        yield RunningServer(api_url, process, home, log)
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes], *, grace_s: float = 15.0) -> None:
    """SIGTERM the process's group, then SIGKILL it if it has not exited within ``grace_s``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
