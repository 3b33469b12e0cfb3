"""SIGTERM during `tome summarise` under Prefect: one line, exit 143, no Prefect traceback or crash report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.testing import Latency

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENGLISH = REPO / "data" / "the_lighthouse_keeper.md"


def test_sigterm_under_prefect_stops_cleanly(moonshot_server_factory, tmp_path: Path) -> None:
    if not ENGLISH.is_file():
        pytest.skip("data/the_lighthouse_keeper.md is missing")
    srv = moonshot_server_factory(latency=Latency(ttft_s=5.0, per_token_s=0.0))
    env = {**os.environ, "TOME_HOME": str(tmp_path / "home"), "MOONSHOT_API_KEY": srv.api_key,
           "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows", "summarise", str(ENGLISH), "--base-url", srv.base_url, "--tier", "unlimited"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if "level 0: 0/" in line:
                break
        assert any("level 0: 0/" in line for line in seen), "".join(seen)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = "".join(seen) + err
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "Crash detected" not in stderr, "\n" + stderr
    assert stderr.strip().splitlines()[-1].startswith("Stopped (SIGTERM).")
    assert out == ""
