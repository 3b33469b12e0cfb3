"""The LLM client's retry policy: which of its failures are retried, their server hints and reasons, run through
tome's one retry loop (pipeline/retry_loop.py)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pipeline.errors import (
    LLMConnectionError,
    LLMError,
    LLMStatusError,
    LLMTimeoutError,
    OverloadedError,
    RateLimitError,
    ServerError,
    ServerUnreachableError,
    StreamInterruptedError,
)
from pipeline.retry_loop import GaveUp, RetryHook, RetryPolicy, Verdict, retry_loop
from pipeline.retry_loop import retry_delay as _policy_delay

__all__ = ["RETRYABLE", "RetryHook", "RetryPolicy", "retry_delay", "retry_reason", "should_retry", "with_retries"]

log = logging.getLogger("tome.llm")

T = TypeVar("T")

# Transient failures: waiting can fix them. Quota, auth, 400/403/404 are never retried.
RETRYABLE: tuple[type[LLMError], ...] = (
    RateLimitError,
    OverloadedError,
    ServerError,
    LLMTimeoutError,
    LLMConnectionError,
    StreamInterruptedError,
)


def should_retry(exc: BaseException) -> bool:
    """Whether another attempt may succeed."""
    return isinstance(exc, RETRYABLE)


def verdict(exc: BaseException) -> Verdict:
    """How the retry loop treats an LLM failure: retried or not, the server's hint, the reason it shows."""
    hint = getattr(exc, "retry_after", None)
    return Verdict(
        retry=should_retry(exc),
        reason=retry_reason(exc),
        hint_s=float(hint) if isinstance(hint, int | float) else None,
        unreachable=isinstance(exc, ServerUnreachableError),
    )


def retry_delay(exc: BaseException, retries_taken: int, policy: RetryPolicy, rand: float) -> float:
    """Seconds to wait before retry number ``retries_taken + 1``; ``rand`` is uniform in [0, 1)."""
    return _policy_delay(verdict(exc), retries_taken, policy, rand)


def retry_reason(exc: BaseException) -> str:
    """A few words saying why a call is retried, for the progress line: "429 engine overloaded"."""
    if isinstance(exc, OverloadedError):
        return "429 engine overloaded"
    if isinstance(exc, RateLimitError):
        return f"429 rate limit ({exc.limit_kind})" if exc.limit_kind else "429 rate limit"
    if isinstance(exc, LLMStatusError):
        return f"{exc.status} server error" if exc.status >= 500 else f"{exc.status} {type(exc).__name__}"
    if isinstance(exc, ServerUnreachableError):
        return exc.cause or "server unreachable"
    if isinstance(exc, LLMTimeoutError):
        return "no answer in time"
    if isinstance(exc, StreamInterruptedError):
        return "the stream broke off"
    if isinstance(exc, LLMConnectionError):
        return "connection failed"
    return type(exc).__name__


def _give_up_note(exc: LLMError, attempts: int, waited_s: float) -> str:
    note = f" Gave up after {attempts} attempts over {waited_s:.0f} s of waiting."
    if isinstance(exc, OverloadedError | RateLimitError | ServerError):
        note += " Run the same command again later: finished work is cached and the run resumes."
    return note


def _gave_up(exc: LLMError, why: GaveUp) -> LLMError:
    if why.unreachable and isinstance(exc, ServerUnreachableError):
        return ServerUnreachableError(
            f"{exc} ({why.attempts} attempts over {why.waited_s:.0f} s)", url=exc.url, cause=exc.cause
        )
    exc.args = (f"{exc}{_give_up_note(exc, why.attempts, why.waited_s)}", *exc.args[1:])
    return exc


async def with_retries(
    attempt: Callable[[int], Awaitable[T]],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    on_failure: Callable[[LLMError], None] | None = None,
    on_retry: RetryHook | None = None,
    what: str = "call",
) -> tuple[T, int]:
    """Run ``attempt(retries_taken)`` until it succeeds or a failure must not be retried.

    Returns (result, attempts). ``on_failure`` sees every LLMError before the decision (the rate budget
    learns from 429s there); ``on_retry`` hears each wait and its reason before it starts (the progress
    line shows it). The last failure is re-raised with a note saying how many attempts were made. A server
    that cannot be reached at all gets ``policy.unreachable_wait_s`` of waiting, not the full backoff.
    """
    return await retry_loop(
        attempt,
        catch=LLMError,
        classify=verdict,
        policy=policy,
        give_up=_gave_up,
        sleep=sleep,
        rand=rand,
        on_failure=on_failure,
        on_retry=on_retry,
        log=log,
        what=what,
    )
