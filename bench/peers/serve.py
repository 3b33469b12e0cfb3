"""One fresh project test server per bench cell (runs in the project's venv, in the runner's process)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.config import RateLimits
from pipeline.testing import Latency, MoonshotTestServer

# Identical for every system: 0.5 s to first token + 5 ms per output token.
TTFT_S = 0.5
PER_TOKEN_S = 0.005
LATENCY = {"ttft_s": TTFT_S, "per_token_s": PER_TOKEN_S}


@dataclass
class Served:
    """What a cell needs from its server: where it is, its key, and its counters."""

    server: MoonshotTestServer

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def api_key(self) -> str:
        return self.server.api_key

    def counters(self) -> dict[str, Any]:
        stats = self.server.stats()
        data = stats.as_dict()
        data.pop("log", None)
        data.pop("in_flight", None)
        data["rate_limited_by_kind"] = data.pop("rate_limited")
        data["rate_limited"] = sum(stats.rate_limited.values())
        data["ok"] = stats.by_status.get(200, 0)
        data["bad_request"] = stats.by_status.get(400, 0)
        return data


@contextmanager
def serve(*, concurrency: int, rpm: int, tpm: int, tpd: int = 0, **modes: Any) -> Iterator[Served]:
    """``modes``: the test server's model behaviour (obedience=, token_scale=, prefix_cache=); default obedient."""
    limits = RateLimits(concurrency=concurrency, rpm=rpm, tpm=tpm, tpd=tpd)
    with MoonshotTestServer(limits=limits, latency=Latency(TTFT_S, PER_TOKEN_S), **modes) as server:
        yield Served(server)
