"""Real flow runs: `tome summarise` and `tome batch` through Prefect, against one real `prefect server start`.

The server starts once for the module (~12-20 s on 2 cores); each command is a real subprocess with
PREFECT_API_URL set (~3-8 s). We then read the server's API: flow runs, task-run names and states, artifacts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from flows.prefect_server import RunningServer
from pipeline.config import RateLimits
from tests.conftest import LIGHTHOUSE, api, flow_run
from tests.test_flows_runner import CHINESE_STORY

REPO = Path(__file__).resolve().parents[1]
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def tome(srv: RunningServer, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = srv.client_env()
    full["TOME_HOME"] = str(home)
    for var in ("MOONSHOT_API_KEY", "TOME_PDF_PASSWORD", "TOME_RAISE_ERRORS"):
        full.pop(var, None)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "flows", *args], cwd=REPO, env=full, capture_output=True, text=True, timeout=300
    )


def settled_task_runs(srv: RunningServer, flow_run_id: str, *, at_least: int) -> dict[str, str]:
    """Task-run name -> state type once the server has recorded them all (its recorder lags behind events)."""
    deadline = time.monotonic() + 60
    while True:
        runs = api(srv, "task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
        states = {r["name"]: r["state_type"] for r in runs}
        if len(states) >= at_least and set(states.values()) <= TERMINAL or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def test_summarise_runs_coarse_named_tasks_and_publishes_artifacts(
    prefect_api: RunningServer, tmp_path: Path, moonshot_server
) -> None:
    doc = tmp_path / "keeper.md"
    shutil.copy(LIGHTHOUSE, doc)
    out = tmp_path / "out"
    proc = tome(
        prefect_api, tmp_path / "home", "summarise", str(doc), "-o", str(out), "--base-url", moonshot_server.base_url,
        MOONSHOT_API_KEY=moonshot_server.api_key,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert (out / "keeper.summary.md").read_text(encoding="utf-8").startswith("# ")
    assert "Using moonshot (moonshot-v1-8k)" in proc.stderr and "keeper.md: done" in proc.stderr
    assert moonshot_server.stats().requests >= 2

    run = flow_run(prefect_api, "keeper.md")
    assert run["state_type"] == "COMPLETED"
    assert moonshot_server.api_key not in json.dumps(run["parameters"])  # the key never becomes a parameter
    assert run["parameters"]["options"]["base_url"] == moonshot_server.base_url
    states = settled_task_runs(prefect_api, run["id"], at_least=3)
    assert states["keeper.md · load and plan"] == "COMPLETED"
    level0 = [n for n in states if n.startswith("keeper.md · level 0 (")]
    assert len(level0) == 1 and level0[0].endswith(" calls)") and states[level0[0]] == "COMPLETED"
    assert any(n.startswith("keeper.md · level 1") for n in states)
    assert len(states) <= 2 + 8  # coarse: one task per level, never one per call

    artifacts = {a["key"]: a for a in api(prefect_api, "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})}
    assert artifacts["summary-keeper-md"]["data"].startswith("# ")
    usage = artifacts["tome-usage"]["data"]
    assert "| keeper.md | done |" in usage and "¥" in usage
    assert usage.startswith("**Backend:** moonshot  \n**Model:** moonshot-v1-8k\n")  # the name, not the notice
    # the flow run, named with its id and UI address, so it can be opened
    assert f"Prefect flow run 'keeper.md' ({run['id']}): " in proc.stderr and f"/{run['id']}" in proc.stderr


def test_batch_through_prefect_keeps_going_past_a_corrupt_file(prefect_api: RunningServer, tmp_path: Path) -> None:
    docs = tmp_path / "shelf"
    docs.mkdir()
    shutil.copy(LIGHTHOUSE, docs / "keeper2.md")
    (docs / "dengta2.txt").write_text(CHINESE_STORY, encoding="utf-8")
    (docs / "torn.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    proc = tome(prefect_api, tmp_path / "home", "batch", str(docs), "--no-progress")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()[1:4]}
    assert rows == {"dengta2.txt": "done", "keeper2.md": "done", "torn.pdf": "failed"}
    assert (docs / "summaries" / "keeper2.summary.json").is_file()

    run = flow_run(prefect_api, "shelf")
    assert run["state_type"] == "FAILED"  # the batch went on past it, and the run says a document failed
    assert run["state"]["message"].startswith("1 of 3 documents failed: torn.pdf (")
    states = settled_task_runs(prefect_api, run["id"], at_least=5)
    assert states["torn.pdf · load and plan"] == "FAILED"
    assert states["keeper2.md · load and plan"] == "COMPLETED"
    assert states["dengta2.txt · level 0 (1 calls)"] == "COMPLETED"
    artifacts = {a["key"]: a for a in api(prefect_api, "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})}
    usage = artifacts["tome-usage"]["data"]
    assert usage.startswith("**Backend:** extractive\n\n") and "¥" not in usage and "moonshot" not in usage


def test_quota_through_prefect_exits_3_with_one_line(
    prefect_api: RunningServer, tmp_path: Path, moonshot_server_factory
) -> None:
    srv = moonshot_server_factory(limits=RateLimits(concurrency=0, tpd=6000))
    doc = tmp_path / "quota.md"
    shutil.copy(LIGHTHOUSE, doc)
    proc = tome(
        prefect_api, tmp_path / "home", "summarise", str(doc), "--base-url", srv.base_url, "--no-progress",
        MOONSHOT_API_KEY=srv.api_key,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr and "Finished in state" not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("Error: The daily token quota (TPD) is used up")
    assert flow_run(prefect_api, "quota.md")["state_type"] == "FAILED"
