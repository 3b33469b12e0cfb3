"""With TOME_PREFECT_SERVER=ephemeral (and nothing else set), `tome summarise FILE` runs through Prefect's
ephemeral server, offline. (With nothing at all set, tome's background server: test_background_server.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENGLISH = REPO / "data" / "the_lighthouse_keeper.md"


def test_the_ephemeral_opt_out_runs_prefect_in_ephemeral_mode(tmp_path: Path) -> None:
    """`tome summarise FILE` with only the opt-out set: no API URL, no PREFECT_HOME, no key — a real summary."""
    if not ENGLISH.is_file():
        pytest.skip("data/the_lighthouse_keeper.md is missing")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "user"),
           "TOME_HOME": str(tmp_path / "tome-home"), "TOME_PREFECT_SERVER": "ephemeral"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "flows", "summarise", str(ENGLISH)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Summary: The Lighthouse Keeper")
    assert proc.stderr.startswith("MOONSHOT_API_KEY is not set: using the offline extractive backend")
    # the flow run is named, with its id (no UI address: a temporary server is gone when tome exits)
    assert "Prefect flow run 'the_lighthouse_keeper.md' (" in proc.stderr and "set PREFECT_API_URL" in proc.stderr
    noise = [line for line in proc.stderr.splitlines() if "| WARNING |" in line or "| ERROR |" in line]
    assert noise == []
    assert (tmp_path / "tome-home" / "prefect" / "prefect.db").is_file()
    assert not (tmp_path / "user" / ".prefect").exists()
    assert not (tmp_path / "tome-home" / "prefect" / "tome-server.json").exists()  # no background server
