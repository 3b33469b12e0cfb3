"""The budget in front of the project's Moonshot-compatible server: real HTTP, the server's own limits.

The budget reads the server's clock, and its sleeps move that clock forward, so minutes of rate-limited
traffic pass in well under a second while the server enforces its real sliding windows.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from pipeline.budget import InProcessBudget
from pipeline.config import RateLimits, load_catalog
from pipeline.llm.types import Usage
from pipeline.testing import Latency, MoonshotTestServer

TIER0_2024 = load_catalog().tier("tier0-2024")  # 1 / 3 / 32,000 / 1,500,000
MAX_TOKENS = 12_000  # prompt + 12,000 at admission: TPM 32,000 fits two calls a minute
TEXT = "The lighthouse keeper counted the ships that passed the point every night. " * 8


class GatewayClock:
    """The server's clock for the budget; sleeping advances it instead of waiting.

    The jump waits until the calls in flight have finished (they are fast: zero latency), so a request is
    never stamped with time that passed only for the sleeper.
    """

    def __init__(self, server: MoonshotTestServer) -> None:
        self.server = server
        self.budget: InProcessBudget | None = None

    def __call__(self) -> float:
        return self.server.gateway.now()

    async def sleep(self, delay: float) -> None:
        target = self() + max(0.0, delay)
        while self.budget is not None and self.budget.stats().in_flight:
            await asyncio.sleep(0.001)
        self.server.advance(max(0.0, target - self()))
        await asyncio.sleep(0)


@pytest.fixture
def server() -> Iterator[MoonshotTestServer]:
    with MoonshotTestServer(limits=TIER0_2024, latency=Latency.zero(), gid_tier=0) as srv:
        yield srv


async def summarise_once(
    client: httpx.AsyncClient, budget: InProcessBudget, server: MoonshotTestServer
) -> tuple[int, float]:
    """One call the way the LLM client makes it: admit, send, report 429s to the budget, record usage."""
    cost = len(TEXT) + 50 + MAX_TOKENS  # characters over-count tokens: a safe admission estimate
    while True:
        async with budget.admit(cost) as slot:
            sent_at = server.gateway.now()
            response = await client.post(
                "/chat/completions",
                json={
                    "model": "moonshot-v1-32k",
                    "messages": [{"role": "user", "content": "Summarise:\n" + TEXT}],
                    "max_tokens": MAX_TOKENS,
                },
            )
            budget.observe_tier(response.headers.get("Msh-Gid"))
            if response.status_code == 429:
                message = response.json()["error"]["message"]
                hint = re.search(r"try again after (\d+) seconds", message)
                kind = "rpm" if "max request" in message else "tpm" if "TPM" in message else None
                budget.on_rate_limited(limit_kind=kind, retry_after=float(hint.group(1)) if hint else None)
                continue
            response.raise_for_status()
            usage = response.json()["usage"]
            slot.record(
                Usage(prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"])
            )
            return response.status_code, sent_at


def client_for(server: MoonshotTestServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {server.api_key}"})


async def test_no_429s_against_the_gateways_own_windows(server: MoonshotTestServer) -> None:
    clock = GatewayClock(server)
    budget = clock.budget = InProcessBudget(TIER0_2024, clock=clock, sleep=clock.sleep, margin_s=0.5)
    start = clock()
    async with client_for(server) as client:
        results = await asyncio.gather(*(summarise_once(client, budget, server) for _ in range(8)))
    stats = server.stats()
    assert stats.rate_limited == {} and stats.by_status == {200: 8}
    assert stats.max_concurrency == 1
    offsets = sorted(sent - start for _, sent in results)
    # TPM-bound: two 12k-token calls per window of 60 s + the 0.5 s margin.
    assert all(60.5 * (k // 2) <= t < 60.5 * (k // 2) + 1.0 for k, t in enumerate(offsets)), offsets
    assert budget.stats().rate_limited == 0


async def test_a_429_pauses_for_the_hinted_time_and_costs_one_request(
    server: MoonshotTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = GatewayClock(server)
    budget = clock.budget = InProcessBudget(load_catalog().tier("tier1"), clock=clock, sleep=clock.sleep)
    server.configure(limits=RateLimits(concurrency=0))
    server.inject("rate_limit_rpm", wait=7)
    with caplog.at_level(logging.WARNING, logger="tome.budget"):
        async with client_for(server) as client:
            await asyncio.gather(*(summarise_once(client, budget, server) for _ in range(3)))
    log = server.chat_log()
    assert [r.status for r in log] == [429, 200, 200, 200]
    assert log[3].t - log[0].t >= 7.0  # the two calls already in flight went on; the retry waited
    assert budget.effective_limits.rpm < 200 and budget.stats().rate_limited == 1
    tier_warnings = [r for r in caplog.records if "higher than this account's tier (tier0" in r.getMessage()]
    assert len(tier_warnings) == 1
