"""The retry policy, in one place: which failures to retry, how long to wait, and the one loop that does it."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Bounded, capped exponential backoff with jitter; server hints win.

    Defaults wait 2, 4, 8, 16, 32, 60 s (minus up to 25 % jitter): about two minutes of a persistent
    overload before giving up, so a later run resumes instead of a tight loop burning requests.
    """

    max_retries: int = 6
    base_delay_s: float = 2.0
    max_delay_s: float = 60.0
    jitter: float = 0.25  # backoff is multiplied by (1 - jitter * random())
    hint_jitter: float = 0.1  # a server hint is multiplied by (1 + hint_jitter * random()), spreading a herd
    max_hint_s: float = 600.0  # hints longer than this are not believed; backoff is used instead
    # Nothing listening (connection refused, DNS failure) is a server not started or a wrong URL far more
    # often than a blip: a few quick attempts within this many seconds of waiting, then a clear failure.
    unreachable_wait_s: float = 6.0
    unreachable_base_delay_s: float = 0.5


RetryHook = Callable[[float, str], None]  # (seconds until the next attempt, why), e.g. (8.0, "429 engine overloaded")


def should_retry(exc: BaseException) -> bool:
    """Whether another attempt may succeed."""
    return isinstance(exc, RETRYABLE)


def retry_delay(exc: BaseException, retries_taken: int, policy: RetryPolicy, rand: float) -> float:
    """Seconds to wait before retry number ``retries_taken + 1``; ``rand`` is uniform in [0, 1)."""
    if isinstance(exc, ServerUnreachableError):
        return policy.unreachable_base_delay_s * 2.0**retries_taken
    hint = getattr(exc, "retry_after", None)
    if isinstance(hint, int | float) and 0 <= hint <= policy.max_hint_s:
        return float(hint) * (1.0 + policy.hint_jitter * rand)
    backoff = min(policy.base_delay_s * 2.0**retries_taken, policy.max_delay_s)
    return backoff * (1.0 - policy.jitter * rand)


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
    waited = 0.0
    for retries_taken in range(policy.max_retries + 1):
        try:
            return await attempt(retries_taken), retries_taken + 1
        except LLMError as exc:
            if on_failure is not None:
                on_failure(exc)
            if not should_retry(exc):
                raise
            delay = retry_delay(exc, retries_taken, policy, rand())
            if isinstance(exc, ServerUnreachableError):
                delay = min(delay, policy.unreachable_wait_s - waited)
                if delay <= 0:
                    raise ServerUnreachableError(
                        f"{exc} ({retries_taken + 1} attempts over {waited:.0f} s)", url=exc.url, cause=exc.cause
                    ) from exc
            if retries_taken >= policy.max_retries:
                exc.args = (f"{exc}{_give_up_note(exc, retries_taken + 1, waited)}", *exc.args[1:])
                raise
            if on_retry is not None:
                on_retry(delay, retry_reason(exc))
            log.debug(
                "%s failed (%s: %s); retry %d/%d in %.1f s",
                what,
                type(exc).__name__,
                exc,
                retries_taken + 1,
                policy.max_retries,
                delay,
            )
            await sleep(delay)
            waited += delay
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
