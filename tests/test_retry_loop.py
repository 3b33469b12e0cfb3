"""tome's one retry loop on its own: the caller's verdict decides, the policy times, nothing really sleeps."""

from __future__ import annotations

import logging

import pytest

from pipeline.retry_loop import GaveUp, RetryPolicy, Verdict, retry_delay, retry_loop
from tests.conftest import record_sleep

LOG = logging.getLogger("tome.test")
POLICY = RetryPolicy(max_retries=3, base_delay_s=1.0, max_delay_s=3.0, unreachable_wait_s=2.0)


class Busy(Exception):
    def __init__(self, hint: float | None = None, *, unreachable: bool = False) -> None:
        super().__init__("busy")
        self.hint, self.unreachable = hint, unreachable


class Refused(Exception):
    pass


def classify(exc: Exception) -> Verdict:
    if isinstance(exc, Busy):
        return Verdict(retry=True, reason="busy", hint_s=exc.hint, unreachable=exc.unreachable)
    return Verdict(retry=False)


def failing(*failures: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    async def attempt(retries_taken: int) -> str:
        calls.append(retries_taken)
        if failures[len(calls) - 1 :]:
            raise failures[len(calls) - 1]
        return "ok"

    return calls, attempt


@pytest.mark.parametrize(
    ("verdict", "retries_taken", "rand", "delay"),
    [
        (Verdict(retry=True), 0, 0.0, 1.0),
        (Verdict(retry=True), 1, 0.0, 2.0),
        (Verdict(retry=True), 5, 0.0, 3.0),  # capped
        (Verdict(retry=True), 1, 1.0, 1.5),  # jitter takes up to 25 % off
        (Verdict(retry=True, hint_s=7.0), 0, 0.0, 7.0),  # the server's hint wins
        (Verdict(retry=True, hint_s=7.0), 0, 1.0, 7.7),  # spread by up to 10 %
        (Verdict(retry=True, hint_s=601.0), 0, 0.0, 1.0),  # beyond max_hint_s: not believed
        (Verdict(retry=True, unreachable=True), 2, 0.0, 2.0),  # 0.5 * 2**2
    ],
)
def test_delay_table(verdict: Verdict, retries_taken: int, rand: float, delay: float) -> None:
    assert retry_delay(verdict, retries_taken, POLICY, rand) == pytest.approx(delay)


async def test_retried_with_each_wait_heard_then_succeeds() -> None:
    waits: list[float] = []
    heard: list[tuple[float, str]] = []
    calls, attempt = failing(Busy(), Busy(hint=0.25))
    result = await retry_loop(
        attempt, catch=Busy, classify=classify, policy=POLICY, sleep=record_sleep(waits), rand=lambda: 0.0,
        on_retry=lambda s, why: heard.append((s, why)), log=LOG,
    )  # fmt: skip
    assert result == ("ok", 3) and calls == [0, 1, 2]
    assert waits == [1.0, 0.25] and heard == [(1.0, "busy"), (0.25, "busy")]


async def test_a_failure_the_verdict_refuses_is_raised_at_once() -> None:
    waits: list[float] = []
    seen: list[Exception] = []
    calls, attempt = failing(Refused("no"))
    with pytest.raises(Refused, match="no"):
        await retry_loop(attempt, catch=Exception, classify=classify, policy=POLICY, sleep=record_sleep(waits),
                         on_failure=seen.append, log=LOG)  # fmt: skip
    assert calls == [0] and waits == [] and len(seen) == 1


async def test_an_exception_outside_catch_passes_through_untouched() -> None:
    calls, attempt = failing(KeyError("k"))
    with pytest.raises(KeyError):
        await retry_loop(attempt, catch=Busy, classify=classify, policy=POLICY, sleep=record_sleep([]), log=LOG)
    assert calls == [0]


async def test_giving_up_after_max_retries_raises_what_give_up_returns() -> None:
    waits: list[float] = []
    why: list[GaveUp] = []

    def give_up(exc: Busy, gave_up: GaveUp) -> BaseException:
        why.append(gave_up)
        return RuntimeError(f"gave up after {gave_up.attempts}")

    calls, attempt = failing(*[Busy() for _ in range(10)])
    with pytest.raises(RuntimeError, match="gave up after 4") as info:
        await retry_loop(attempt, catch=Busy, classify=classify, policy=POLICY, give_up=give_up,
                         sleep=record_sleep(waits), rand=lambda: 0.0, log=LOG)  # fmt: skip
    assert isinstance(info.value.__cause__, Busy)
    assert calls == [0, 1, 2, 3] and waits == [1.0, 2.0, 3.0]
    assert why == [GaveUp(attempts=4, waited_s=6.0, unreachable=False)]


async def test_nothing_listening_gets_the_short_unreachable_budget() -> None:
    waits: list[float] = []
    why: list[GaveUp] = []

    def give_up(exc: Busy, gave_up: GaveUp) -> BaseException:
        why.append(gave_up)
        return exc

    _, attempt = failing(*[Busy(unreachable=True) for _ in range(10)])
    policy = RetryPolicy(max_retries=10, unreachable_wait_s=2.0)
    with pytest.raises(Busy):
        await retry_loop(attempt, catch=Busy, classify=classify, policy=policy, give_up=give_up,
                         sleep=record_sleep(waits), rand=lambda: 0.0, log=LOG)  # fmt: skip
    assert waits == [0.5, 1.0, 0.5] and why == [GaveUp(attempts=4, waited_s=2.0, unreachable=True)]
