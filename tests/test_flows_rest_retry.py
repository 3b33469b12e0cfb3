"""The REST recorder's retries for a busy Prefect server go through tome's one retry loop (pipeline/retry_loop.py).

Against a real HTTP server on 127.0.0.1 that answers as scripted (503s, then 200s); the waits are recorded, never
really slept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest

from flows.prefect_rest import RECORDER_RETRY, FlowRunRecorder
from pipeline.retry_loop import RetryPolicy, Verdict, retry_delay
from tests.conftest import free_port, local_http_server, record_sleep


@dataclass
class Script:
    """What the server answers: each scripted (status, Retry-After) once, in order; then 200 with an id."""

    answers: list[tuple[int, str | None]]
    seen: list[str] = field(default_factory=list)  # "POST /api/flows/" per request received


@pytest.fixture
def busy_server() -> Iterator[tuple[str, Script]]:
    script = Script(answers=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            script.seen.append(f"POST {self.path}")
            status, retry_after = script.answers.pop(0) if script.answers else (200, None)
            body = json.dumps({"id": f"id-{len(script.seen)}"} if status == 200 else {"detail": "busy"}).encode()
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
            return None

    with local_http_server(Handler) as port:
        yield f"http://127.0.0.1:{port}/api", script


async def test_a_503_then_200_is_retried_after_the_servers_retry_after(busy_server: tuple[str, Script]) -> None:
    url, script = busy_server
    script.answers = [(503, "0.5")]
    waits: list[float] = []
    heard: list[tuple[float, str]] = []
    recorder = FlowRunRecorder(url, sleep=record_sleep(waits), on_retry=lambda s, why: heard.append((s, why)))
    try:
        assert await recorder.start("summarise-document", "busy.md", {"path": "busy.md"})
    finally:
        await recorder.aclose()
    assert script.seen == ["POST /api/flows/", "POST /api/flows/", "POST /api/flow_runs/"]
    assert recorder.flow_run_id == "id-3"
    [wait] = waits
    assert 0.5 <= wait <= 0.5 * (1 + RECORDER_RETRY.hint_jitter)  # the hint, spread by its jitter
    assert heard == [(wait, "503 Prefect server busy")]


async def test_without_a_hint_the_waits_grow_and_the_run_goes_on_unrecorded(
    busy_server: tuple[str, Script], capsys: pytest.CaptureFixture[str]
) -> None:
    url, script = busy_server
    script.answers = [(503, None)] * 7 + [(429, "999")]  # a hint longer than max_hint_s is not believed
    waits: list[float] = []
    recorder = FlowRunRecorder(url, sleep=record_sleep(waits), retry=RetryPolicy(max_retries=7, base_delay_s=0.1,
                               max_delay_s=3.2, max_hint_s=10.0, unreachable_wait_s=0.0))  # fmt: skip
    try:
        assert not await recorder.start("summarise-document", "busy.md", {"path": "busy.md"})
    finally:
        await recorder.aclose()
    assert script.seen == ["POST /api/flows/"] * 8
    backoff = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 3.2]
    assert all(b * (1 - RECORDER_RETRY.jitter) <= w <= b for w, b in zip(waits, backoff, strict=True))
    err = capsys.readouterr().err
    assert err.count("did not record the run") == 1 and "HTTP 429" in err


async def test_other_errors_and_a_refused_connection_are_not_retried(busy_server: tuple[str, Script]) -> None:
    url, script = busy_server
    script.answers = [(400, None)]
    waits: list[float] = []
    for api_url in (url, f"http://127.0.0.1:{free_port()}/api"):
        recorder = FlowRunRecorder(api_url, sleep=record_sleep(waits))
        try:
            assert not await recorder.start("summarise-document", "bad.md", {"path": "bad.md"})
        finally:
            await recorder.aclose()
    assert script.seen == ["POST /api/flows/"] and waits == []


@pytest.mark.parametrize(
    ("verdict", "retries_taken", "rand", "delay"),
    [
        (Verdict(retry=True), 0, 0.0, 0.1),
        (Verdict(retry=True), 3, 0.0, 0.8),
        (Verdict(retry=True), 9, 0.0, 3.2),  # capped
        (Verdict(retry=True), 0, 1.0, 0.075),  # full jitter takes 25 % off
        (Verdict(retry=True, hint_s=2.0), 5, 0.0, 2.0),  # the server's hint wins
        (Verdict(retry=True, hint_s=2.0), 5, 1.0, 2.2),
        (Verdict(retry=True, hint_s=11.0), 1, 0.0, 0.2),  # beyond max_hint_s: backoff
    ],
)
def test_the_recorders_policy(verdict: Verdict, retries_taken: int, rand: float, delay: float) -> None:
    assert retry_delay(verdict, retries_taken, RECORDER_RETRY, rand) == pytest.approx(delay)
