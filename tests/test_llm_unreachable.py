"""A server that is not there fails fast with one line naming the URL; every retry wait is announced."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import httpx
import pytest

from flows.progress import LineReporter, ProgressBoard
from pipeline import errors as E
from pipeline.llm.client import MoonshotClient
from pipeline.llm.retry import RetryPolicy, retry_reason, with_retries
from pipeline.llm.transport_errors import error_from_transport
from pipeline.llm.types import ChatRequest, Message
from pipeline.testing import MoonshotTestServer
from tests.conftest import free_port, record_sleep


def chat() -> ChatRequest:
    return ChatRequest(model="moonshot-v1-8k", messages=(Message("user", "Hello there."),), max_tokens=50)


async def test_connection_refused_gives_up_within_seconds_naming_the_url() -> None:
    waits: list[float] = []
    url = f"http://127.0.0.1:{free_port()}/v1"
    async with MoonshotClient(base_url=url, api_key="sk-x", sleep=record_sleep(waits)) as client:
        with pytest.raises(E.ServerUnreachableError) as info:
            await client.complete(chat())
    message = str(info.value)
    assert url in message and "connection refused" in message and "not started" in message
    assert "\n" not in message
    assert 0 < sum(waits) <= RetryPolicy().unreachable_wait_s  # not the ~2 minutes of the overload backoff
    assert len(waits) >= 2  # a server that is just coming up still gets a few chances


def test_dns_failure_maps_to_unreachable_with_its_cause() -> None:
    try:
        raise socket.gaierror(-2, "Name or service not known")
    except socket.gaierror as dns:
        try:
            raise httpx.ConnectError("[Errno -2] Name or service not known") from dns
        except httpx.ConnectError as exc:
            error = error_from_transport(exc, url="http://no-such-host.invalid/v1/chat/completions")
    assert isinstance(error, E.ServerUnreachableError) and error.cause == "DNS failure"
    assert "no-such-host.invalid" in str(error) and "host name" in str(error)


def test_other_connect_errors_keep_the_ordinary_backoff() -> None:
    error = error_from_transport(httpx.ConnectError("reset by peer"), url="http://h/v1")
    assert type(error) is E.LLMConnectionError


async def test_unreachable_budget_is_the_policy_s() -> None:
    waits: list[float] = []
    policy = RetryPolicy(unreachable_wait_s=2.0)
    failure = E.ServerUnreachableError("Nothing answers at u", url="u", cause="connection refused")

    async def attempt(_n: int) -> str:
        raise failure

    with pytest.raises(E.ServerUnreachableError, match=r"attempts over 2 s"):
        await with_retries(attempt, policy=policy, sleep=record_sleep(waits), rand=lambda: 0.0)
    assert waits == [0.5, 1.0, 0.5]


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (E.OverloadedError("o", status=429), "429 engine overloaded"),
        (E.RateLimitError("r", status=429, limit_kind="tpm"), "429 rate limit (tpm)"),
        (E.ServerError("s", status=503), "503 server error"),
        (E.LLMTimeoutError("t"), "no answer in time"),
        (E.StreamInterruptedError("s"), "the stream broke off"),
        (E.ServerUnreachableError("u", cause="connection refused"), "connection refused"),
    ],
)
def test_retry_reason_is_a_few_words(exc: Exception, reason: str) -> None:
    assert retry_reason(exc) == reason


async def test_client_tells_its_hook_each_wait_and_the_progress_line_shows_it(
    moonshot_server: MoonshotTestServer,
) -> None:
    moonshot_server.inject("overload", times=2)
    heard: list[tuple[float, str]] = []
    async with MoonshotClient(
        base_url=moonshot_server.base_url,
        api_key=moonshot_server.api_key,
        sleep=record_sleep([]),
        rand=lambda: 0.0,
        on_retry=lambda s, why: heard.append((s, why)),
    ) as client:
        completion = await client.complete(chat())
    assert completion.attempts == 3
    assert heard == [(2.0, "429 engine overloaded"), (4.0, "429 engine overloaded")]

    now = [100.0]
    out = io.StringIO()
    board = ProgressBoard(LineReporter(out), clock=lambda: now[0])
    doc = board.sink("alice.txt")
    doc.level_started(0, 8)
    board.retrying(8.0, "429 engine overloaded")
    assert out.getvalue().splitlines()[-1].startswith("alice.txt · level 0: 0/8 summaries")
    assert "retrying in 8 s: 429 engine overloaded" in out.getvalue().splitlines()[-1]
    now[0] += 9
    assert "retrying" not in doc.line()


def test_cli_with_nothing_listening_fails_with_one_line(monkeypatch: pytest.MonkeyPatch, lighthouse: Path) -> None:
    from tests.test_cli_summarise import summarise

    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-tome-test-unreachable")
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = summarise(str(lighthouse), "--backend", "moonshot", "--base-url", url, "--tier", "unlimited")
    assert result.exit_code == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: Nothing answers at ") and url in last and "not started" in last
    assert "retrying in 1 s: connection refused" in result.stderr  # the wait showed on the progress line
    assert "Traceback" not in result.stderr and result.stdout == ""
