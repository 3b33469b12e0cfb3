"""The retry policy as a table: what is retried, how long it waits, and the one loop (never really sleeping)."""

from __future__ import annotations

import logging

import pytest

from pipeline import errors as E
from pipeline.llm.retry import RetryPolicy, retry_delay, should_retry, with_retries

POLICY = RetryPolicy()


def _status(cls: type[E.LLMStatusError], status: int, **kw: object) -> E.LLMStatusError:
    return cls("x", status=status, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (_status(E.RateLimitError, 429, limit_kind="rpm"), True),
        (_status(E.RateLimitError, 429, limit_kind="concurrency"), True),
        (_status(E.RateLimitError, 429, limit_kind="tpm"), True),
        (_status(E.OverloadedError, 429), True),
        (_status(E.ServerError, 500), True),
        (_status(E.ServerError, 504), True),
        (E.LLMTimeoutError("t"), True),
        (E.LLMConnectionError("c"), True),
        (E.StreamInterruptedError("s"), True),
        (_status(E.InvalidRequestError, 400), False),
        (_status(E.ContextLengthError, 400), False),
        (_status(E.ContentFilterError, 400), False),
        (_status(E.AuthenticationError, 401), False),
        (_status(E.PermissionDeniedError, 403), False),
        (_status(E.ModelNotFoundError, 404), False),
        (_status(E.QuotaExhaustedError, 429, quota="tpd"), False),
        (_status(E.QuotaExhaustedError, 403, quota="balance"), False),
        (E.ConfigError("c"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_should_retry(exc: Exception, retry: bool) -> None:
    assert should_retry(exc) is retry


@pytest.mark.parametrize(
    ("retries_taken", "rand", "delay"),
    [
        (0, 0.0, 2.0),
        (1, 0.0, 4.0),
        (2, 0.0, 8.0),
        (4, 0.0, 32.0),
        (5, 0.0, 60.0),  # capped
        (9, 0.0, 60.0),
        (0, 1.0, 1.5),  # full jitter takes 25 % off
        (5, 0.5, 52.5),
    ],
)
def test_backoff_without_hint(retries_taken: int, rand: float, delay: float) -> None:
    assert retry_delay(E.OverloadedError("o", status=429), retries_taken, POLICY, rand) == pytest.approx(delay)


@pytest.mark.parametrize(
    ("hint", "rand", "delay"),
    [(20.0, 0.0, 20.0), (1.0, 0.0, 1.0), (20.0, 1.0, 22.0), (0.0, 0.0, 0.0), (5000.0, 0.0, 8.0)],
)
def test_server_hint_wins_over_backoff(hint: float, rand: float, delay: float) -> None:
    exc = E.RateLimitError("r", status=429, limit_kind="rpm", retry_after=hint)
    assert retry_delay(exc, 2, POLICY, rand) == pytest.approx(delay)


class Flaky:
    """An attempt function failing with the given errors, then answering "ok"."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self, retries_taken: int) -> str:
        assert retries_taken == self.calls
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


async def test_loop_retries_then_succeeds_and_reports_attempts() -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    flaky = Flaky(E.ServerError("a", status=500), E.LLMTimeoutError("b"))
    result = await with_retries(flaky, policy=POLICY, sleep=sleep, rand=lambda: 0.0)
    assert result == ("ok", 3)
    assert waits == [2.0, 4.0]


async def test_loop_never_retries_a_400() -> None:
    flaky = Flaky(E.InvalidRequestError("bad", status=400))
    with pytest.raises(E.InvalidRequestError):
        await with_retries(flaky, policy=POLICY, sleep=_no_sleep)
    assert flaky.calls == 1


async def test_persistent_overload_is_bounded_with_growing_waits_and_a_resume_hint() -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    flaky = Flaky(*[E.OverloadedError("The engine is currently overloaded", status=429) for _ in range(50)])
    seen: list[E.LLMError] = []
    with pytest.raises(E.OverloadedError) as info:
        await with_retries(flaky, policy=POLICY, sleep=sleep, rand=lambda: 0.0, on_failure=seen.append)
    assert flaky.calls == POLICY.max_retries + 1 == 7
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert "Gave up after 7 attempts" in str(info.value) and "resumes" in str(info.value)
    assert len(seen) == 7


async def test_each_retry_is_logged_at_debug_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tome.llm")
    flaky = Flaky(E.RateLimitError("max request: 3", status=429, limit_kind="rpm", retry_after=20.0))
    await with_retries(flaky, policy=POLICY, sleep=_no_sleep, rand=lambda: 0.0, what="moonshot-v1-8k")
    [record] = [r for r in caplog.records if r.name == "tome.llm"]
    assert record.levelno == logging.DEBUG
    assert "RateLimitError" in record.getMessage() and "20.0 s" in record.getMessage()


async def _no_sleep(_s: float) -> None:
    return None
