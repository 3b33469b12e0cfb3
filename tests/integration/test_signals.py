"""SIGTERM during `tome summarise` under Prefect: one line, exit 143, no Prefect traceback or crash report, and the
flow run (recorded in tome's background server) ends Cancelled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from flows.background_server import ServerFiles, read_state, stop
from pipeline.testing import Latency
from tests.conftest import wait_for_line

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENGLISH = REPO / "data" / "the_lighthouse_keeper.md"


@pytest.mark.parametrize("mode", ["ephemeral", "background"])
def test_sigterm_under_prefect_stops_cleanly(moonshot_server_factory, tmp_path: Path, mode: str) -> None:
    """Prefect's engine on a temporary server, and tome's REST recording in its background server."""
    if not ENGLISH.is_file():
        pytest.skip("data/the_lighthouse_keeper.md is missing")
    srv = moonshot_server_factory(latency=Latency(ttft_s=5.0, per_token_s=0.0))
    env = {**os.environ, "TOME_HOME": str(tmp_path / "home"), "MOONSHOT_API_KEY": srv.api_key,
           "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
           "TOME_PREFECT_SERVER": mode}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    env.pop("TOME_PREFECT_CLIENT", None)
    files = ServerFiles(tmp_path / "prefect")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows", "summarise", str(ENGLISH), "--base-url", srv.base_url, "--tier", "unlimited"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen: list[str] = []
    try:
        seen = wait_for_line(proc, "level 0: 0/", timeout_s=240)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        server = read_state(files)
        if mode == "background":
            assert server is not None, "".join(seen) + err
            runs = httpx.post(f"{server.api_url}/flow_runs/filter", json={}, timeout=30).json()
            tasks = httpx.post(f"{server.api_url}/task_runs/filter", json={}, timeout=30).json()
            why = f"exit {proc.returncode}\n" + "".join(seen) + err  # a lost SIGTERM shows as exit 0
            assert [(r["name"], r["state_type"]) for r in runs] == [("the_lighthouse_keeper.md", "CANCELLED")], why
            assert {t["state_type"] for t in tasks if " · level 0 " in t["name"]} == {"CANCELLED"}
        else:
            assert server is None  # no background server in ephemeral mode
    finally:
        if proc.poll() is None:
            proc.kill()
        stop(files)  # the background server this test's tome started (none in ephemeral mode)
    stderr = "".join(seen) + err
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "Crash detected" not in stderr, "\n" + stderr
    assert stderr.strip().splitlines()[-1].startswith("Stopped (SIGTERM).")
    assert out == ""
