"""A budget that admits every call at once: for local servers, tests, and clients given no budget."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from pipeline.llm.types import Usage


@dataclass
class _Slot:
    owner: UnlimitedBudget

    def record(self, usage: Usage, *, charged_tokens: int | None = None) -> None:
        self.owner.calls += 1
        self.owner.prompt_tokens += usage.prompt_tokens
        self.owner.completion_tokens += usage.completion_tokens


@dataclass
class UnlimitedBudget:
    """Never waits and never refuses; only counts what passed through (handy in tests)."""

    admitted: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rate_limited: list[tuple[str | None, float | None]] = field(default_factory=list)

    @asynccontextmanager
    async def admit(self, tokens: int, *, order: tuple[float, int] | None = None) -> AsyncIterator[_Slot]:
        self.admitted += 1
        yield _Slot(self)

    def on_rate_limited(
        self, *, limit_kind: str | None, retry_after: float | None, limit_value: int | None = None
    ) -> None:
        self.rate_limited.append((limit_kind, retry_after))

    def estimated_wait(self, tokens: int, calls: int) -> float:
        return 0.0

    def observe_tier(self, gid: str | None) -> None:
        return None
