"""What one run and one level carry between steps: the run state, the logical calls and their outcomes.

The engine itself holds no per-run state: everything a document's run changes lives in :class:`RunState`
(per document) and :class:`LevelRun` (per level: the in-flight cap and the stop signal), so one engine can
run several documents at once and one document's failure stops only its own calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pipeline.chunking import Chunk
from pipeline.config import ModelSpec
from pipeline.documents.model import Document
from pipeline.language import LengthUnit
from pipeline.outputs import Node, UsageTotals
from pipeline.planning import Plan
from pipeline.progress_events import NullProgress, ProgressSink
from pipeline.prompt_room import PromptRoom
from pipeline.prompts import MergeInput
from pipeline.run_calls import CallRecord
from pipeline.settings import RunSettings
from pipeline.window import Window

if TYPE_CHECKING:
    from pipeline.engine.early import EarlyLevels


@dataclass(frozen=True, kw_only=True)
class CallSpec:
    """One logical call: a chunk to summarise (map) or summaries to merge (reduce), before context."""

    level: int
    index: int
    kind: str  # "map" | "reduce"
    inputs: tuple[int, ...]  # map: (chunk index,); reduce: indexes of the nodes merged
    text: str  # map: the chunk; reduce: the merged summaries (extractive backend, raw-tail context)
    parts: tuple[MergeInput, ...] = ()
    part: int = 1
    total_parts: int = 1
    section: str = ""
    final: bool = False
    max_tokens: int
    context: str = ""
    final_share: float = 0.0  # a half of the final call split in two (0.5, 0.25...): its share of the length
    # A map call as the scheduler plans it: its chunk's span of Document.text, and ``text`` "" until the call
    # starts (``with_text``), so a level's calls hold no copy of a big document.
    span: tuple[int, int] | None = None

    def with_text(self, document_text: str) -> CallSpec:
        """This call with its text (a planned map call's span sliced from ``document_text``)."""
        if self.span is None:
            return self
        start, end = self.span
        return replace(self, text=document_text[start:end], span=None)

    @property
    def length(self) -> int:
        """Characters of the call's text (known before the text is sliced)."""
        return self.span[1] - self.span[0] if self.span is not None else len(self.text)


@dataclass
class CallOutcome:
    """The text one logical call produced, and what it took."""

    text: str
    calls: int = 0  # requests the backend answered (or rejected) for it in this run: billed
    cached_calls: int = 0  # requests answered from the cache: not billed
    splits: int = 0  # inputs cut in two on the way
    cached: bool = True
    truncated: bool = False
    trimmed: bool = False  # cut off at max_tokens and kept up to its last complete sentence
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_s: float = 0.0

    def join(self, other: CallOutcome) -> CallOutcome:
        """The two halves of a split input as one outcome (the halves ran at once)."""
        return CallOutcome(
            text=f"{self.text.strip()}\n\n{other.text.strip()}".strip(),
            calls=self.calls + other.calls,
            cached_calls=self.cached_calls + other.cached_calls,
            splits=self.splits + other.splits,
            cached=self.cached and other.cached,
            truncated=self.truncated or other.truncated,
            trimmed=self.trimmed or other.trimmed,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=self.cost + other.cost,
            latency_s=max(self.latency_s, other.latency_s),
        )


@dataclass(frozen=True)
class Overflow:
    """A context-length rejection (received, cached, or predicted), or a silent cut at the window.

    ``pieces``: into how many pieces the input is split (recorded with the overflow, so reruns split alike);
    1 with ``max_tokens``: the same prompt fits with less output room (sent again so, not split), the server
    counting it ``prompt_tokens`` (its own count, or the prediction's estimate);
    ``sent``: the server saw the request (it refused it, or cut its answer at the window).
    """

    pieces: int = 2
    sent: bool = False
    max_tokens: int | None = None
    prompt_tokens: int | None = None


class WindowCapped(Exception):
    """The level's first call found the model's window smaller than the one its calls were planned for."""


class Stopped(Exception):
    """A call not started because its level is stopping (quota or another failure)."""


@dataclass
class LevelRun:
    """One level of one document in flight: the cap on calls sent at once and the signal that stops the rest.

    Made per level, because a level may run in another event loop than the last (one Prefect task each).
    """

    slots: asyncio.Semaphore
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # When the level started: with a call's index, its place in the rate budget's line (ChatRequest.order), so
    # that the level's calls are admitted in their order however they reach it (cache, claims and the server's
    # count before admission take each call its own time).
    opened: float = field(default_factory=time.monotonic)
    error: BaseException | None = None  # the first failure, the one the level re-raises
    # The turnstile (a binding TPM limit): the lowest call index not yet through, those through, and a signal.
    low: int = 0
    passed: set[int] = field(default_factory=set)
    moved: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def open(cls, max_in_flight: int) -> LevelRun:
        return cls(slots=asyncio.Semaphore(max_in_flight))

    def check(self) -> None:
        """Raise :class:`Stopped` when the level is stopping."""
        if self.stop.is_set():
            raise Stopped()

    def fail(self, exc: BaseException) -> None:
        """Stop starting calls; remember the first failure."""
        if self.error is None:
            self.error = exc
        self.stop.set()
        self.moved.set()

    async def turn(self, index: int) -> None:
        """Wait until every call of the level before ``index`` has reached the rate budget or finished: a call
        that fits the window now would otherwise take the room an earlier one was cut to fill."""
        while self.low < index and not self.stop.is_set():
            await self.moved.wait()

    def through(self, index: int) -> None:
        """Call ``index`` has reached the rate budget (or finished): later calls may go."""
        self.passed.add(index)
        while self.low in self.passed:
            self.low += 1
        moved, self.moved = self.moved, asyncio.Event()
        moved.set()


@dataclass
class RunState:
    """Everything one run needs between levels (each level may run as its own Prefect task)."""

    document: Document
    chunks: list[Chunk]
    plan: Plan
    settings: RunSettings
    model: ModelSpec
    run_id: str
    language: str
    unit: LengthUnit
    lag: int
    # Provider tokens per local token. ``calibration`` shapes prompts (lengths, context room, packing), so it is
    # fixed within a level: the model's configured value for level 0, then the largest ratio the server
    # reported so far (lower than configured for Chinese, where the provider counts fewer tokens than cl100k).
    calibration: float
    room: PromptRoom  # level-0 prompt room for this document's language
    input_budget: Callable[[int], int]  # merge input budget by output size
    # The model's real window: the planned one (state.model.context_tokens), capped by refusals and silent cuts.
    window: Window
    progress: ProgressSink = field(default_factory=NullProgress)
    # A binding TPM limit: admission counts each prompt as the server does (its token-count endpoint), so that
    # windows fill as planned rather than to the calibrated estimate's margin.
    count_exactly: bool = False
    map_max_tokens: int | None = None  # level 0's max_tokens after its first answer (engine.length), if lowered
    observed_calibration: float | None = None  # live: the largest ratio reported so far (None: none yet)
    level_calibration: list[float] = field(default_factory=list)  # the calibration each level ran with
    # max_tokens over the length a prompt asks for (pipeline.engine.length): fixed within a level, learned
    # between levels from how much the model wrote for what it was asked.
    headroom: float = 3.0
    overshoot: float = 1.0  # the largest written/asked ratio learned before this level (final calls ask less)
    observed_overshoot: float | None = None  # live: the largest written/asked ratio so far
    level_headroom: list[tuple[float, float]] = field(default_factory=list)  # (headroom, overshoot) per level
    levels: list[list[Node]] = field(default_factory=list)
    usage: UsageTotals = field(default_factory=UsageTotals)
    done: bool = False
    status: str = "running"
    started_s: float = field(default_factory=time.monotonic)
    last_recorded_s: float = 0.0  # when the run record was last updated (it is throttled)
    calls_log: list[CallRecord] = field(default_factory=list)  # requests not yet written to the store
    calls_seq: dict[tuple[int, int], int] = field(default_factory=dict)  # requests so far per (level, node)
    early: EarlyLevels | None = None  # the levels above started while level 0 runs (engine.early)

    def log_call(self, **fields: object) -> None:
        """Note one request of node (level, node) for `tome runs show` (written with the run's usage)."""
        where = (int(fields["level"]), int(fields["node"]))  # type: ignore[call-overload]
        seq = self.calls_seq.get(where, 0)
        self.calls_seq[where] = seq + 1
        self.calls_log.append(CallRecord(seq=seq, **fields))  # type: ignore[arg-type]

    @property
    def final(self) -> Node | None:
        return self.levels[-1][0] if self.done else None

    @property
    def next_level(self) -> int:
        return len(self.levels)
