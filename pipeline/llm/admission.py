"""What the client admits its calls through: the rate budget's interface, declared on the client's side.

Budgets (pipeline/budget/: in-process, or shared through SQL) implement it; the client depends only on this.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from pipeline.llm.types import Usage


class Admission(Protocol):
    """A granted slot: the call runs while it is held; ``record`` stores the real usage."""

    def record(self, usage: Usage, *, charged_tokens: int | None = None) -> None: ...


class RateBudget(Protocol):
    """Admits calls under concurrency, RPM, TPM and TPD; learns from the server's 429s.

    ``admit(tokens)`` waits (FIFO) until a call costing ``tokens`` at admission fits every limit, and
    raises QuotaExhaustedError when the day's token quota cannot fit it.
    """

    def admit(self, tokens: int, *, order: tuple[float, int] | None = None) -> AbstractAsyncContextManager[Admission]:
        """``order``: where the call waits among others that give one (lowest first), else arrival order."""
        ...

    def on_rate_limited(
        self, *, limit_kind: str | None, retry_after: float | None, limit_value: int | None = None
    ) -> None: ...

    def estimated_wait(self, tokens: int, calls: int) -> float: ...

    def observe_tier(self, gid: str | None) -> None:
        """The server named the account's tier (Moonshot's Msh-Gid); a budget may warn when it was set higher."""
