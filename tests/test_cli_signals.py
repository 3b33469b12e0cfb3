"""SIGTERM stops tome cleanly: one line, exit 143, the run marked interrupted, no traceback; what was answered
is cached, so the same command resumes. (Through Prefect: tests/integration/test_signals.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from flows.commands.common import TERMINATED_EXIT_CODE, run_async, run_cli
from flows.sigterm import run_handler
from flows.summarise import flow_run_line, folder_run_line
from pipeline.document_runs import DocumentRun, Outcome
from pipeline.testing import Latency
from tests.conftest import LIGHTHOUSE, wait_for_line

REPO = Path(__file__).resolve().parents[1]


def test_sigterm_during_a_run_prints_one_line_and_the_run_resumes(moonshot_server_factory, tmp_path: Path) -> None:
    if not LIGHTHOUSE.is_file():
        pytest.skip("data/the_lighthouse_keeper.md is absent")
    srv = moonshot_server_factory(latency=Latency(ttft_s=3.0, per_token_s=0.0))
    env = {**os.environ, "TOME_HOME": str(tmp_path / "home"), "MOONSHOT_API_KEY": srv.api_key}
    cmd = [sys.executable, "-m", "flows", "summarise", str(LIGHTHOUSE), "--no-prefect", "--base-url", srv.base_url,
           "--tier", "unlimited", "--json"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        before = wait_for_line(proc, "level 0: 0/")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = "".join(before) + err
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and out == ""
    assert stderr.strip().splitlines()[-1].startswith("Stopped (SIGTERM). Answers received so far are cached")
    runs = subprocess.run([sys.executable, "-m", "flows", "runs", "--json"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert json.loads(runs.stdout.splitlines()[0])["status"] == "interrupted"
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["final"]


@pytest.fixture
def sigterm_handler() -> Iterator[None]:
    """run_cli installs tome's SIGTERM handler in this process: the test's own is put back after it."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


class _Collected:
    """An object whose collection runs a weakref callback (as a finished task leaving asyncio's task set does)."""


def test_a_sigterm_handled_inside_a_weakref_callback_still_stops_the_run(sigterm_handler: None) -> None:
    # Python drops an exception raised in a weakref callback ("Exception ignored in ..."): a handler that raised
    # there lost the SIGTERM, and the run went on to the end (recorded Completed, exit 0).
    steps: list[str] = []

    async def run() -> str:
        thing = _Collected()
        weakref.finalize(thing, os.kill, os.getpid(), signal.SIGTERM)
        del thing  # the finalizer runs now: the signal's handler runs inside it
        steps.append("signalled")
        for _ in range(100):
            await asyncio.sleep(0)
        steps.append("went on")
        return "done"

    with pytest.raises(typer.Exit) as stopped:
        run_cli(lambda: run_async(run()))
    assert stopped.value.exit_code == TERMINATED_EXIT_CODE
    assert steps == ["signalled"]


def test_a_sigterm_stops_an_async_run_at_its_await_and_it_unwinds(sigterm_handler: None) -> None:
    unwound: list[type[BaseException]] = []

    async def run() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.Event().wait()
        except BaseException as exc:
            unwound.append(type(exc))
            await asyncio.sleep(0)  # cleanup that awaits (the recorder's final state) still runs
            unwound.append(type(exc))
            raise

    with pytest.raises(typer.Exit) as stopped:
        run_cli(lambda: run_async(run()))
    assert stopped.value.exit_code == TERMINATED_EXIT_CODE
    assert unwound == [asyncio.CancelledError, asyncio.CancelledError]
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # tome's handler is back after the run


class _EngineSignal(BaseException):
    """What a flow engine's own SIGTERM handler raises (Prefect's raises TerminationSignal wherever it runs)."""


def _engine_handler(signum: int, frame: object) -> None:
    raise _EngineSignal()


def test_inside_a_flow_tomes_handler_is_put_back_over_the_engines(sigterm_handler: None) -> None:
    steps: list[str] = []

    async def run() -> None:
        signal.signal(signal.SIGTERM, _engine_handler)  # as Prefect's flow engine does around the flow body
        with run_handler():  # the flow body
            thing = _Collected()
            weakref.finalize(thing, os.kill, os.getpid(), signal.SIGTERM)
            del thing
            for _ in range(100):
                await asyncio.sleep(0)
            steps.append("went on")
        assert signal.getsignal(signal.SIGTERM) is _engine_handler  # the engine's own again after the body

    with pytest.raises(typer.Exit) as stopped:
        run_cli(lambda: run_async(run()))
    assert stopped.value.exit_code == TERMINATED_EXIT_CODE and steps == []


def test_outside_tomes_cli_a_flow_keeps_the_engines_handler(sigterm_handler: None) -> None:
    async def run() -> object:
        with run_handler():  # a worker's flow run: SIGTERM is Prefect's cancel, its handler stays
            return signal.getsignal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _engine_handler)
    assert asyncio.run(run()) is _engine_handler


def test_a_served_run_is_one_line() -> None:
    done = DocumentRun(Outcome(name="a.txt", path="a.txt", status="done"))
    bad = DocumentRun(Outcome(name="b.pdf", path="b.pdf", status="failed", error="b.pdf is encrypted"))
    line = folder_run_line("/srv/inbox", new=3, changed=0, unchanged=12, runs=[done])
    assert line.endswith(" inbox: 3 new, 12 unchanged") and "\n" not in line
    line = folder_run_line("/srv/inbox", new=1, changed=1, unchanged=0, runs=[done, bad])
    assert line.endswith(" inbox: 1 new, 1 changed, 0 unchanged, 1 failed (b.pdf: b.pdf is encrypted)")
    assert folder_run_line("/srv/inbox", new=0, changed=0, unchanged=5, runs=[]).endswith("inbox: 0 new, 5 unchanged")


def test_the_flow_run_line_names_the_run_and_its_address() -> None:
    assert flow_run_line(None, None, None) is None
    line = flow_run_line("1234", "alice.txt", "http://127.0.0.1:4200/runs/flow-run/1234")
    assert line == "Prefect flow run 'alice.txt' (1234): http://127.0.0.1:4200/runs/flow-run/1234"
    assert "set PREFECT_API_URL" in (flow_run_line("1234", "alice.txt", None) or "")
