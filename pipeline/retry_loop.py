"""tome's one retry loop, for every remote call it makes: bounded exponential backoff with jitter, server hints
first, a short budget for a server that is not there, and a hook told of each wait.

What a failure means (retry it or not, the server's hint, a few words for the progress line) is the caller's
classification, a ``Verdict``; how long to wait and the loop itself live only here (the LLM client's policy in
pipeline/llm/retry.py and the Prefect REST recorder in flows/prefect_rest.py both run through it).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

RetryHook = Callable[[float, str], None]  # (seconds until the next attempt, why), e.g. (8.0, "429 engine overloaded")


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


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """How the loop treats one failure, as its caller classifies it."""

    retry: bool
    reason: str = ""  # a few words for the progress line: "429 engine overloaded"
    hint_s: float | None = None  # the server's own wait (Retry-After), believed up to ``policy.max_hint_s``
    unreachable: bool = False  # nothing listens: the policy's short unreachable budget, not the full backoff


@dataclass(frozen=True, kw_only=True)
class GaveUp:
    """Why the loop stopped retrying: the attempts made, the seconds waited, which limit ended it."""

    attempts: int
    waited_s: float
    unreachable: bool  # the unreachable budget was spent (else: ``policy.max_retries``)


def retry_delay(verdict: Verdict, retries_taken: int, policy: RetryPolicy, rand: float) -> float:
    """Seconds to wait before retry number ``retries_taken + 1``; ``rand`` is uniform in [0, 1)."""
    if verdict.unreachable:
        return policy.unreachable_base_delay_s * 2.0**retries_taken
    hint = verdict.hint_s
    if hint is not None and 0 <= hint <= policy.max_hint_s:
        return hint * (1.0 + policy.hint_jitter * rand)
    backoff = min(policy.base_delay_s * 2.0**retries_taken, policy.max_delay_s)
    return backoff * (1.0 - policy.jitter * rand)


def retry_after_from_headers(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date); None when absent or bad."""
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _as_raised(exc: E, _why: GaveUp) -> BaseException:
    return exc


async def retry_loop(
    attempt: Callable[[int], Awaitable[T]],
    *,
    catch: type[E],
    classify: Callable[[E], Verdict],
    policy: RetryPolicy,
    give_up: Callable[[E, GaveUp], BaseException] = _as_raised,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    on_failure: Callable[[E], None] | None = None,
    on_retry: RetryHook | None = None,
    log: logging.Logger,
    what: str = "call",
) -> tuple[T, int]:
    """Run ``attempt(retries_taken)`` until it succeeds or a ``catch`` failure must not be retried.

    Returns (result, attempts). ``on_failure`` sees every caught failure before the decision; ``on_retry`` hears
    each wait and its reason before it starts. A failure ``classify`` will not retry is re-raised as it is; when
    the retries or the unreachable budget run out, what ``give_up`` returns is raised (the last failure by
    default). Each wait is logged at DEBUG on ``log`` with its reason.
    """
    waited = 0.0
    for retries_taken in range(policy.max_retries + 1):
        try:
            return await attempt(retries_taken), retries_taken + 1
        except catch as exc:
            if on_failure is not None:
                on_failure(exc)
            verdict = classify(exc)
            if not verdict.retry:
                raise
            delay = retry_delay(verdict, retries_taken, policy, rand())
            if verdict.unreachable:
                delay = min(delay, policy.unreachable_wait_s - waited)
            spent = verdict.unreachable and delay <= 0
            if spent or retries_taken >= policy.max_retries:
                why = GaveUp(attempts=retries_taken + 1, waited_s=waited, unreachable=spent)
                final = give_up(exc, why)
                if final is exc:
                    raise
                raise final from exc
            if on_retry is not None:
                on_retry(delay, verdict.reason)
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
