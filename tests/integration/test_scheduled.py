"""Scheduled and triggered runs, for real: `prefect server start`, `tome serve`, `prefect deployment run`.

Offline: the extractive backend writes the summaries. Generous timeouts: a fresh server needs ~12-20 s on
2 cores, the served process polls every ~10 s, and each flow run starts a fresh Python process.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.prefect_server import RunningServer, prefect_executable, stop_process_group
from pipeline.inputs import file_sha256
from tests.conftest import LIGHTHOUSE, api

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENGLISH = LIGHTHOUSE
CHINESE = REPO / "data" / "zh_shanju_ji.txt"
WAIT_S = 150.0


if not CHINESE.is_file():
    pytest.skip(f"{CHINESE.name} is not in data/", allow_module_level=True)


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def source_sha(summary_json: Path) -> str | None:
    try:
        return json.loads(summary_json.read_text(encoding="utf-8"))["source"]["sha256"]
    except (OSError, ValueError, KeyError):
        return None


def test_serve_runs_on_its_interval_and_when_triggered(prefect_api: RunningServer, tmp_path: Path) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "summaries"
    inbox.mkdir()
    shutil.copy(CHINESE, inbox / "shanju.txt")
    env = prefect_api.client_env()
    env["TOME_HOME"] = str(tmp_path / "tome-home")
    env.pop("MOONSHOT_API_KEY", None)
    log = tmp_path / "serve.log"
    with log.open("w") as log_file:
        serve = subprocess.Popen(
            [sys.executable, "-m", "flows", "serve", "--interval", "10", "--input", str(inbox), "--output", str(out),
             "--name", "inbox"],
            cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        # 1. The interval schedule fires by itself: the first document gets summarised with no trigger.
        wait_for("the scheduled run's summary", lambda: (out / "shanju.summary.md").is_file())
        assert (out / "shanju.summary.md").read_text(encoding="utf-8").startswith("# ")
        deployment = wait_for(
            "the deployment", lambda: api(prefect_api, "deployments/filter", {"deployments": {"name": {"any_": ["inbox"]}}})
        )[0]
        assert deployment["parameters"]["input_dir"] == str(inbox.resolve())

        def runs() -> list[dict[str, Any]]:
            return api(prefect_api, "flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}})

        wait_for(
            "a completed scheduled run",
            lambda: any(r["auto_scheduled"] and r["state_type"] == "COMPLETED" for r in runs()),
        )

        # 2. Triggered from another process: a new document and an edited one are (re)summarised.
        shutil.copy(ENGLISH, inbox / "keeper.md")
        with (inbox / "shanju.txt").open("a", encoding="utf-8") as fh:
            fh.write("\n第七章 后记\n\n多年以后，周远又回到了青石村。书屋还在，登记簿已经写满了三本。\n")
        trigger = subprocess.run(
            [prefect_executable(), "deployment", "run", "summarise-folder/inbox"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert trigger.returncode == 0, trigger.stdout + trigger.stderr
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", trigger.stdout).group(1)  # type: ignore[union-attr]
        state = wait_for(
            "the triggered run to finish",
            lambda: (lambda s: s if s in ("COMPLETED", "FAILED", "CRASHED") else None)(
                httpx.get(f"{prefect_api.api_url}/flow_runs/{run_id}", timeout=30).json()["state_type"]
            ),
        )
        assert state == "COMPLETED", log.read_text()
        new_sha = file_sha256(inbox / "shanju.txt")
        wait_for("the edited document's new summary", lambda: source_sha(out / "shanju.summary.json") == new_sha)
        assert (out / "keeper.summary.md").is_file() and source_sha(out / "keeper.summary.json")
        triggered = [r for r in runs() if not r["auto_scheduled"]]
        assert [r["id"] for r in triggered] == [run_id]
    finally:
        stop_process_group(serve)
    text = log.read_text()
    assert "Serving summarise-folder/inbox" in text
    assert "Traceback" not in text, text
    # One line per run: the first scheduled run found one new document; the new and the edited document were
    # found by the triggered run or a scheduled one just before it (whichever ran first).
    run_lines = re.findall(r" inbox: (\d+) new, (?:(\d+) changed, )?(\d+) unchanged$", text, re.MULTILINE)
    assert run_lines and run_lines[0] == ("1", "", "0"), text
    assert sum(int(n) for n, _, _ in run_lines) == 2 and sum(int(c or 0) for _, c, _ in run_lines) == 1, text
    assert "level 0" not in text  # no progress lines from a service
