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
    LLMTimeoutError,
    OverloadedError,
    RateLimitError,
    ServerError,
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


def should_retry(exc: BaseException) -> bool:
    """Whether another attempt may succeed."""
    return isinstance(exc, RETRYABLE)


def retry_delay(exc: BaseException, retries_taken: int, policy: RetryPolicy, rand: float) -> float:
    """Seconds to wait before retry number ``retries_taken + 1``; ``rand`` is uniform in [0, 1)."""
    hint = getattr(exc, "retry_after", None)
    if isinstance(hint, int | float) and 0 <= hint <= policy.max_hint_s:
        return float(hint) * (1.0 + policy.hint_jitter * rand)
    backoff = min(policy.base_delay_s * 2.0**retries_taken, policy.max_delay_s)
    return backoff * (1.0 - policy.jitter * rand)


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
    what: str = "call",
) -> tuple[T, int]:
    """Run ``attempt(retries_taken)`` until it succeeds or a failure must not be retried.

    Returns (result, attempts). ``on_failure`` sees every LLMError before the decision (the rate budget
    learns from 429s there). The last failure is re-raised with a note saying how many attempts were made.
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
            if retries_taken >= policy.max_retries:
                exc.args = (f"{exc}{_give_up_note(exc, retries_taken + 1, waited)}", *exc.args[1:])
                raise
            delay = retry_delay(exc, retries_taken, policy, rand())
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
