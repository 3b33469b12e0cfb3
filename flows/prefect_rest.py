"""A flow run, its task runs, artifacts and logs recorded through a Prefect server's REST API, without Prefect.

Importing Prefect and running its flow engine cost a tome process ~1.4 s of CPU (bench/results/prefect_overhead.md),
which a loaded 2-core machine stretches to 3-4 s. Against tome's own background server (the installed Prefect
version, on loopback) the same records take ~12 small HTTP calls over one kept-alive connection: the flow (by
name), the flow run with its parameters, a task run per step with its states, markdown artifacts and log lines.
The server orchestrates the states as it does for Prefect's client, so the UI shows the run as any other.

Recording is a view of the run and never fails it: after a call that fails, a warning, and the run goes on unrecorded.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from pipeline.retry_loop import RetryHook, RetryPolicy, Verdict, retry_after_from_headers, retry_loop

T = TypeVar("T")
log = logging.getLogger("tome.flows")

TIMEOUT_S = 30.0  # a busy SQLite server answers within seconds; a dead one refuses the connection at once
FINAL_TIMEOUT_S = 5.0  # the last state of an interrupted run: short, the user is waiting for the prompt
INTERRUPTED = (asyncio.CancelledError, KeyboardInterrupt)
BUSY = {429, 502, 503}
# Waits about 0.1, 0.2, ... 3.2 s (6.3 s in all) for a busy server, or its Retry-After up to 10 s; nothing listening
# (a refused connection) fails at once: a view of the run is not worth a wait.
RECORDER_RETRY = RetryPolicy(max_retries=6, base_delay_s=0.1, max_delay_s=3.2, max_hint_s=10.0, unreachable_wait_s=0.0)
LEVELS = {logging.DEBUG: 10, logging.INFO: 20, logging.WARNING: 30, logging.ERROR: 40}


class RecordingFailed(Exception):
    """The Prefect server refused or did not answer a call (the run goes on unrecorded)."""


class ServerBusy(RecordingFailed):
    """The Prefect server answered 429/502/503 (SQLite write collisions): worth another try after a wait."""

    def __init__(self, message: str, *, status: int, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def busy_verdict(exc: RecordingFailed) -> Verdict:
    """Only a busy answer is retried; a refused connection, a timeout or another error status is not."""
    if isinstance(exc, ServerBusy):
        return Verdict(retry=True, reason=f"{exc.status} Prefect server busy", hint_s=exc.retry_after)
    return Verdict(retry=False)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class FlowRunRecorder:
    """Records one flow run in a Prefect server; once a call has failed, only the final state is still tried."""

    def __init__(
        self,
        api_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        retry: RetryPolicy = RECORDER_RETRY,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        on_retry: RetryHook | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._retry, self._sleep, self.on_retry = retry, sleep, on_retry
        self._own_client = client is None
        # trust_env off: tome's server is on loopback, never behind the user's HTTP(S)_PROXY
        self._http = client or httpx.AsyncClient(timeout=TIMEOUT_S, trust_env=False)
        self.flow_run_id: str | None = None
        self.name: str | None = None
        self._broken = False
        self._keys: dict[str, int] = {}  # task key -> runs so far (Prefect's dynamic key)
        self._logs: list[dict[str, Any]] = []

    @property
    def ui_url(self) -> str | None:
        """The flow run's page, as Prefect's client builds it (the UI is served beside the API)."""
        if self.flow_run_id is None:
            return None
        return f"{self.api_url.removesuffix('/api')}/flow-runs/flow-run/{self.flow_run_id}"

    async def start(self, flow: str, name: str, parameters: dict[str, Any]) -> bool:
        """Create the flow (idempotent, by name) and a Running flow run; False when the server refused."""
        try:
            flow_id = (await self._call("POST", "/flows/", {"name": flow}))["id"]
            body = {"flow_id": flow_id, "name": name, "parameters": parameters, "state": {"type": "RUNNING"}}
            self.flow_run_id = (await self._call("POST", "/flow_runs/", body))["id"]
        except RecordingFailed as exc:
            self._give_up(exc)
            return False
        self.name = name
        return True

    async def task(self, task_key: str, name: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` as a task run of this flow run: Running, then Completed, Failed or Cancelled."""
        task_run_id = await self._create_task_run(task_key, name)
        try:
            result = await fn()
        except BaseException as exc:
            if task_run_id is not None:
                kind = "CANCELLED" if isinstance(exc, INTERRUPTED) else "FAILED"
                await self._set_state(f"/task_runs/{task_run_id}", kind, _message(exc), final=True)
            raise
        if task_run_id is not None:
            await self._set_state(f"/task_runs/{task_run_id}", "COMPLETED", None)
        return result

    async def artifact(self, key: str, markdown: str, description: str) -> None:
        if self.flow_run_id is None or self._broken:
            return
        body = {"key": key, "type": "markdown", "data": markdown, "description": description,
                "flow_run_id": self.flow_run_id}  # fmt: skip
        try:
            await self._call("POST", "/artifacts/", body)
        except RecordingFailed as exc:
            self._give_up(exc)

    def log(self, message: str, level: int = logging.INFO) -> None:
        """A log line of the flow run (sent with its final state)."""
        if self.flow_run_id is not None:
            self._logs.append({"name": "tome.flows", "level": LEVELS.get(level, level), "message": message,
                               "timestamp": _now(), "flow_run_id": self.flow_run_id})  # fmt: skip

    async def finish(self, exc: BaseException | None, *, failed: str | None = None) -> None:
        """The flow run's final state: Completed, Failed (the error's one line, or ``failed``: a batch's failed
        documents) or Cancelled; its logs."""
        if self.flow_run_id is None:
            return
        kind = "COMPLETED" if exc is None else "CANCELLED" if isinstance(exc, INTERRUPTED) else "FAILED"
        message = _message(exc) if exc is not None else None
        if exc is None and failed is not None:
            kind, message = "FAILED", failed
        self.log(f"Finished in state {kind.capitalize()}" + (f": {message}" if message else ""),
                 logging.INFO if kind == "COMPLETED" else logging.ERROR)  # fmt: skip
        if self._logs and not self._broken:
            try:
                await self._call("POST", "/logs/", self._logs, timeout=None if exc is None else FINAL_TIMEOUT_S)
            except RecordingFailed as failed:
                self._give_up(failed)
            self._logs = []
        # Even after a failed call: a run left Running forever would say it still runs.
        await self._set_state(f"/flow_runs/{self.flow_run_id}", kind, message, final=True, always=True)

    async def aclose(self) -> None:
        if self._own_client:
            await self._http.aclose()

    async def _create_task_run(self, task_key: str, name: str) -> str | None:
        if self.flow_run_id is None or self._broken:
            return None
        index = self._keys.get(task_key, 0)
        self._keys[task_key] = index + 1
        body = {"flow_run_id": self.flow_run_id, "name": name, "task_key": task_key, "dynamic_key": str(index),
                "state": {"type": "RUNNING"}}  # fmt: skip
        try:
            return str((await self._call("POST", "/task_runs/", body))["id"])
        except RecordingFailed as exc:
            self._give_up(exc)
            return None

    async def _set_state(
        self, run_path: str, kind: str, message: str | None, *, final: bool = False, always: bool = False
    ) -> None:
        if self._broken and not always:
            return
        body = {"state": {"type": kind, "message": message}, "force": final}
        try:
            await self._call("POST", f"{run_path}/set_state", body, timeout=FINAL_TIMEOUT_S if final else None)
        except RecordingFailed as exc:
            self._give_up(exc)

    async def _call(self, method: str, path: str, body: object, *, timeout: float | None = None) -> Any:
        """One API call; RecordingFailed when it cannot be made or the server answers with an error.

        Like Prefect's client, a busy answer (429/502/503: SQLite write collisions on the server) is tried again
        after a short, growing wait, through tome's one retry loop; a refused connection is not (nothing listens).
        """

        async def attempt(_retries_taken: int) -> Any:
            try:
                response = await self._http.request(
                    method, self.api_url + path, json=body, timeout=timeout or TIMEOUT_S
                )
            except httpx.HTTPError as exc:
                raise RecordingFailed(f"{method} {path}: {type(exc).__name__} {exc}".strip()) from exc
            if response.status_code >= 400:
                message = f"{method} {path}: HTTP {response.status_code} {response.text[:200]}"
                if response.status_code in BUSY:
                    hint = retry_after_from_headers(response.headers)
                    raise ServerBusy(message, status=response.status_code, retry_after=hint)
                raise RecordingFailed(message)
            return response.json() if response.content else None

        result, _ = await retry_loop(
            attempt,
            catch=RecordingFailed,
            classify=busy_verdict,
            policy=self._retry,
            sleep=self._sleep,
            on_retry=self.on_retry,
            log=log,
            what=f"Prefect API {method} {path}",
        )
        return result

    def _give_up(self, exc: Exception) -> None:
        if not self._broken:
            self._broken = True
            print(f"Warning: the Prefect server at {self.api_url} did not record the run ({exc}); "
                  "the summary goes on.", file=sys.stderr, flush=True)  # fmt: skip


def _message(exc: BaseException) -> str:
    if isinstance(exc, INTERRUPTED):
        return "Interrupted: answers received so far are cached, the same command resumes from them."
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
