"""A local Prefect cluster for tests and benchmarks: `prefect server start` on a PostgreSQL database and
`prefect worker start` processes, driven as subprocesses (no Prefect import here), killed with their children."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from pipeline.testing.postgres import free_port

BIN = Path(sys.executable).parent
QUIET_PREFECT = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (a worker starts a process per flow run)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` and everything it started (a machine lost, as far as the others can tell)."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=30)


def start_prefect_server(database_url: str, home: Path, *, timeout_s: float = 180.0) -> tuple[subprocess.Popen[str], str]:
    """`prefect server start` with its database at ``database_url`` (postgresql+asyncpg://…); (process, API URL)."""
    port = free_port()
    env = {
        **os.environ,
        **QUIET_PREFECT,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited: {proc.stderr.read() if proc.stderr else ''}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        time.sleep(1)
    kill_tree(proc)
    raise RuntimeError("prefect server did not become healthy")


def start_worker(pool: str, name: str, env: Mapping[str, str], *, limit: int, cwd: Path) -> subprocess.Popen[bytes]:
    """`prefect worker start --pool POOL` in its own session (so it can be killed as one machine)."""
    return subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--limit", str(limit), "--name", name],
        env=dict(env), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def deploy(pool: str, env: Mapping[str, str], *, cwd: Path) -> None:
    """`tome deploy --pool POOL` (creates the pool, deploys the per-document and batch flows)."""
    done = subprocess.run(
        [str(BIN / "tome"), "deploy", "--pool", pool], env=dict(env), capture_output=True, text=True, timeout=300,
        cwd=cwd,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"tome deploy failed: {done.stderr[-2000:]}")
