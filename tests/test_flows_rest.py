"""Runs recorded over a Prefect server's REST API (flows/summarise_rest.py), read back from that server's API.

Against one real `prefect server start` for the module (~12-20 s on 2 cores, shared with nothing else); the runs
execute in this process, with the offline backend, and must look in Prefect like the Prefect engine's runs.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.background_server import ServerFiles, ServerState, forget_state, installed_prefect, write_state
from flows.prefect_rest import FlowRunRecorder
from flows.prefect_server import RunningServer
from flows.summarise_rest import recorded_batch, recorded_document, records_over_rest
from pipeline.errors import ConfigError, TomeError
from pipeline.options import SummariseOptions
from tests.conftest import LIGHTHOUSE, api, flow_run, free_port
from tests.test_flows_runner import CHINESE_STORY

REPO = Path(__file__).resolve().parents[1]
OFFLINE = SummariseOptions(backend="extractive")


def task_runs(srv: RunningServer, flow_run_id: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in api(srv, "task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})}


def test_a_document_run_is_a_flow_run_with_task_runs_artifacts_and_logs(
    prefect_api: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "keeper-rest.md"
    shutil.copy(LIGHTHOUSE, doc)
    out = tmp_path / "out"
    report = asyncio.run(recorded_document(prefect_api.api_url, str(doc), str(out), OFFLINE, progress=False))
    assert report["outcome"]["status"] == "done" and report["markdown"].startswith("# ")
    assert (out / "keeper-rest.summary.md").is_file()

    run = flow_run(prefect_api, "keeper-rest.md")
    flow = httpx.get(f"{prefect_api.api_url}/flows/{run['flow_id']}", timeout=30).json()
    assert flow["name"] == "summarise-document"  # the same flow as Prefect's engine runs
    assert run["state_type"] == "COMPLETED" and run["start_time"] and run["end_time"]
    assert run["parameters"]["path"] == str(doc) and run["parameters"]["options"]["backend"] == "extractive"
    tasks = task_runs(prefect_api, run["id"])
    plan = tasks["keeper-rest.md · load and plan"]
    assert plan["state_type"] == "COMPLETED" and plan["start_time"] <= plan["end_time"]
    levels = [n for n in tasks if n.startswith("keeper-rest.md · level 0 (") and n.endswith(" calls)")]
    assert len(levels) == 1 and tasks[levels[0]]["state_type"] == "COMPLETED"
    assert len({t["dynamic_key"] for t in tasks.values() if t["task_key"] == "summarise-level"}) == len(tasks) - 1
    graph = httpx.get(f"{prefect_api.api_url}/flow_runs/{run['id']}/graph-v2", timeout=30).json()
    assert sorted(node["label"] for _, node in graph["nodes"]) == sorted(tasks)  # the UI's run graph

    artifacts = {a["key"]: a for a in api(prefect_api, "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})}
    assert artifacts["summary-keeper-rest-md"]["data"] == report["markdown"]
    assert artifacts["tome-usage"]["data"].startswith("**Backend:** extractive\n\n") and "| keeper-rest.md | done |" in artifacts["tome-usage"]["data"]
    logs = [entry["message"] for entry in api(prefect_api, "logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}})]
    assert any(m.startswith("Using the offline extractive backend") for m in logs)
    assert "Finished in state Completed" in logs

    err = capsys.readouterr().err
    ui = prefect_api.api_url.removesuffix("/api")
    assert f"Prefect flow run 'keeper-rest.md' ({run['id']}): {ui}/flow-runs/flow-run/{run['id']}\n" in err


def test_a_failed_document_fails_its_flow_run_with_the_error_and_a_batch_goes_on(
    prefect_api: RunningServer, tmp_path: Path
) -> None:
    torn = tmp_path / "torn-rest.pdf"
    torn.write_bytes(b"%PDF-1.4\n%%EOF\n")
    with pytest.raises(TomeError) as raised:
        asyncio.run(recorded_document(prefect_api.api_url, str(torn), None, OFFLINE, progress=False))
    run = flow_run(prefect_api, "torn-rest.pdf")
    assert run["state_type"] == "FAILED"
    assert run["state"]["message"] == f"{type(raised.value).__name__}: {' '.join(str(raised.value).split())}"
    assert task_runs(prefect_api, run["id"])["torn-rest.pdf · load and plan"]["state_type"] == "FAILED"

    shelf = tmp_path / "shelf-rest"
    shelf.mkdir()
    (shelf / "dengta-rest.txt").write_text(CHINESE_STORY, encoding="utf-8")
    shutil.copy(torn, shelf / "torn-rest.pdf")
    reports = asyncio.run(recorded_batch(prefect_api.api_url, [str(shelf)], None, OFFLINE, progress=False))
    assert sorted((r["outcome"]["name"], r["outcome"]["status"]) for r in reports) == [
        ("dengta-rest.txt", "done"), ("torn-rest.pdf", "failed")
    ]  # fmt: skip
    batch = flow_run(prefect_api, "shelf-rest")
    assert batch["state_type"] == "FAILED"  # as Prefect's engine ends it: the batch went on, the run is red
    assert batch["state"]["message"].startswith("1 of 2 documents failed: torn-rest.pdf (")
    states = {n: t["state_type"] for n, t in task_runs(prefect_api, batch["id"]).items()}
    assert states["torn-rest.pdf · load and plan"] == "FAILED"
    assert states["dengta-rest.txt · load and plan"] == "COMPLETED"


def test_an_interrupted_run_is_cancelled_with_its_open_task(prefect_api: RunningServer) -> None:
    async def interrupted() -> None:
        recorder = FlowRunRecorder(prefect_api.api_url)
        assert await recorder.start("summarise-document", "interrupted-rest.md", {"path": "interrupted-rest.md"})
        try:
            await recorder.task("summarise-level", "interrupted-rest.md · level 0 (3 calls)", asyncio.Event().wait)
        except asyncio.CancelledError as exc:
            await recorder.finish(exc)
        finally:
            await recorder.aclose()

    async def main() -> None:
        running = asyncio.create_task(interrupted())
        await asyncio.sleep(1.0)
        running.cancel()  # what asyncio.run does to the run on Ctrl+C or tome's SIGTERM
        await running

    asyncio.run(main())
    run = flow_run(prefect_api, "interrupted-rest.md")
    assert run["state_type"] == "CANCELLED" and run["state"]["message"].startswith("Interrupted")
    assert task_runs(prefect_api, run["id"])["interrupted-rest.md · level 0 (3 calls)"]["state_type"] == "CANCELLED"


def test_a_server_that_does_not_answer_leaves_the_run_unrecorded_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "unrecorded.md"
    shutil.copy(LIGHTHOUSE, doc)
    dead = f"http://127.0.0.1:{free_port()}/api"
    report = asyncio.run(recorded_document(dead, str(doc), None, OFFLINE, progress=False))
    assert report["outcome"]["status"] == "done" and report["markdown"].startswith("# ")
    err = capsys.readouterr().err
    assert err.count("did not record the run") == 1 and f"Prefect server at {dead}" in err
    assert "Prefect flow run" not in err


def test_the_client_choice() -> None:
    assert records_over_rest({}) and records_over_rest({"TOME_PREFECT_CLIENT": " REST "})
    assert not records_over_rest({"TOME_PREFECT_CLIENT": "prefect"})
    with pytest.raises(ConfigError, match="TOME_PREFECT_CLIENT='engine'"):
        records_over_rest({"TOME_PREFECT_CLIENT": "engine"})


def test_a_bad_client_choice_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TOME_HOME": str(tmp_path / "home"), "TOME_PREFECT_CLIENT": "engine"}
    proc = subprocess.run(
        [sys.executable, "-m", "flows", "summarise", str(LIGHTHOUSE), "--backend", "extractive"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "Error: TOME_PREFECT_CLIENT='engine': use 'rest' (the default) or 'prefect'."
    ]
    assert not (tmp_path / "home" / "prefect" / "tome-server.json").exists()  # refused before any server start


def test_tome_batch_with_nothing_configured_records_over_rest_without_importing_prefect(
    prefect_api: RunningServer, tmp_path: Path
) -> None:
    """The CLI's choice: tome's background server (here: the module's server, recorded as tome records its own)
    means a REST-recorded run, and Prefect is never imported."""
    files = ServerFiles(prefect_api.home)
    port = int(prefect_api.api_url.rsplit(":", 1)[1].split("/")[0])
    write_state(files, ServerState(pid=prefect_api.process.pid, port=port, prefect_version=installed_prefect(),
                                   started_at=datetime.now(UTC).isoformat(timespec="seconds")))  # fmt: skip
    try:
        shelf = tmp_path / "shelf-cli"
        shelf.mkdir()
        shutil.copy(LIGHTHOUSE, shelf / "keeper-cli.md")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TOME_HOME": str(tmp_path / "home"),
               "PREFECT_HOME": str(prefect_api.home)}  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "flows", "batch", str(shelf), "--backend", "extractive",
             "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        forget_state(files)  # the module's server is stopped by its fixture, not by tome
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "keeper-cli.md" in proc.stdout and "Starting a local Prefect server" not in proc.stderr
    assert re.findall(r"^import time:.*\|\s+((?:prefect|fastapi)\S*)$", proc.stderr, re.M) == []
    run = flow_run(prefect_api, "shelf-cli")
    assert run["state_type"] == "COMPLETED"
    assert f"Prefect flow run 'shelf-cli' ({run['id']}): http://127.0.0.1:{port}/flow-runs/flow-run/{run['id']}" in proc.stderr
    states = {n: t["state_type"] for n, t in task_runs(prefect_api, run["id"]).items()}
    assert states["keeper-cli.md · load and plan"] == "COMPLETED" and len(states) >= 2
