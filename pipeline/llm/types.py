"""Values that cross the LLM boundary: what we ask for and what comes back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    role: Role
    content: str
    # Moonshot's partial mode: a last assistant message the answer continues (the prefix is not repeated).
    partial: bool = False

    def as_dict(self) -> dict[str, str | bool]:
        if self.partial:
            return {"role": self.role, "content": self.content, "partial": True}
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    """A chat-completion request plus what the rate budget needs to admit it.

    ``estimated_prompt_tokens`` is the calibrated local estimate; admission cost is it + ``max_tokens``.
    ``source_text`` is the text being summarised, for backends that do not read prompts (never sent).
    """

    model: str
    messages: tuple[Message, ...]
    max_tokens: int
    temperature: float = 0.3
    estimated_prompt_tokens: int = 0
    stream: bool = False
    source_text: str | None = field(default=None, repr=False, compare=False)
    # Where the call waits in the rate budget's line among others that give one (lowest first; None: arrival
    # order): the engine gives (when its level started, the call's place in the level).
    order: tuple[float, int] | None = field(default=None, compare=False)

    @property
    def admission_tokens(self) -> int:
        """Tokens the gateway counts at admission: prompt + max_tokens."""
        return self.estimated_prompt_tokens + self.max_tokens


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens billed for one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, kw_only=True)
class Completion:
    """The answer to one call."""

    content: str
    finish_reason: str | None
    usage: Usage
    model: str
    request_id: str | None = None
    latency_s: float = 0.0
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One entry of GET /models (``context_length`` only where the provider reports it)."""

    id: str
    context_length: int | None = None
    owned_by: str | None = None


class ChatBackend(Protocol):
    """Anything that answers chat requests: the HTTP client, or the offline extractive backend.

    Everything the engine, the runtime and the judge read from a backend is declared here.
    """

    on_retry: Callable[[float, str], None] | None  # told (seconds, reason) before each retry wait

    @property
    def name(self) -> str:
        """Provider/backend name, recorded with each run."""

    @property
    def cache_namespace(self) -> str:
        """Part of the cache key: the provider, or a local backend's own code version."""

    @property
    def billable(self) -> bool:
        """Its calls cost money, and its usage reports the provider's real token counts."""

    @property
    def calibration(self) -> float | None:
        """Provider tokens per local token when it counts tokens itself, else None (learned from usage)."""

    @property
    def headroom(self) -> float | None:
        """How much larger max_tokens is than the length asked for, when the backend knows (else learned)."""

    @property
    def base_url(self) -> str | None:
        """The server it talks to (a learned context window is kept per model and server); None offline."""

    @property
    def planning_window(self) -> int | None:
        """Tokens a call may hold when the backend has a window of its own (the offline backend); None: the model's."""

    @property
    def reads_prompts(self) -> bool:
        """It follows instructions (an LLM); False for the extractive backend, which cannot judge."""

    @property
    def cutoff_recovery(self) -> str:
        """How an answer cut off at max_tokens is recovered: "continue" (partial mode) or "trim"."""

    @property
    def extracts_files(self) -> bool:
        """``extract_file`` can read an image-only PDF (the provider's file-extract service)."""

    async def complete(self, request: ChatRequest) -> Completion: ...

    async def extract_file(self, path: str | Path) -> str:
        """The text of an image-only document, read by the provider (only when ``extracts_files``)."""
        ...

    async def aclose(self) -> None: ...


class CountsPrompts(Protocol):
    """A backend that can ask its server for a prompt's token count before sending it (optional: the engine
    looks for ``count_prompt_tokens`` and counts by its calibration without it)."""

    async def count_prompt_tokens(self, messages: Sequence[Message]) -> int | None:
        """The server's own count of a prompt before it is sent (None: the server offers none)."""
        ...
