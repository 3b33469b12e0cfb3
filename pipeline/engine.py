"""The recursive summary engine: map every chunk, then merge summaries level by level until one remains.

- Map (level 0) summarises every chunk concurrently, at most ``max_in_flight`` calls at once; the backend
  applies the rate budget. Later levels pack the previous level's ACTUAL summaries into merge calls
  (``planning.plan_merge``) and run them concurrently, one level after another (a loop, never recursion).
- Carry-forward context ("lagged", see pipeline.context): call i of a level carries the summary of call i-k,
  or for i < k the tail of call i-1's input, inside <context>, bounded by the budget and cut at a sentence.
  k = max(context_lag, concurrency), so the lag never idles a slot the budget would grant.
- Every call goes through the cache first (before the budget) and is stored the moment it returns, so reruns
  make no calls and a killed run repeats no completed call. Every decision that shapes a prompt depends only
  on the document, the settings and cached answers, so reruns build byte-identical prompts.
- A cut-off answer (finish_reason "length") is retried once with a stricter length; a second cut is kept and
  flagged. A context-length rejection (or a predicted one) splits the input in two and raises the in-memory
  calibration; rejections are cached too, so reruns split without asking again.
- Calibration (provider tokens per local token) is learned from every answer's usage; it changes only between
  levels (it shapes prompts), so levels above 0 pack, bound context and state lengths in the provider's real
  tokens (e.g. ~0.45 for Chinese on Moonshot, where the configured 1.10 only suits English).
- QuotaExhaustedError stops new calls, lets in-flight ones finish (cached), marks the run "quota" and re-raises.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from pipeline.chunking import Chunk, TokenBudget, chunk_budget, chunk_document
from pipeline.config import ModelSpec, RateLimits
from pipeline.context import ContextSource, context_source, effective_lag, tail_sentences
from pipeline.document import Document
from pipeline.errors import ChunkingError, ContextLengthError, DepthLimitError, QuotaExhaustedError
from pipeline.language import LengthUnit, length_unit, resolve_language, sample_text, sentence_spans
from pipeline.llm.types import ChatBackend, ChatRequest, Completion, Message
from pipeline.outputs import Node, SummaryResult, UsageTotals, section_summaries
from pipeline.planning import Plan, merge_input_budget, plan_document, plan_merge
from pipeline.progress import NullProgress, ProgressSink
from pipeline.prompts import MergeInput, map_messages, merge_messages, merged_source, strict_words
from pipeline.provenance import link_tree
from pipeline.settings import RunSettings, model_and_limits
from pipeline.store import Store, cache_key, document_hash
from pipeline.tokens import TokenCounter, counter_for

log = logging.getLogger("tome.engine")

LENGTH_HEADROOM = 0.9  # ask for 90 % of max_tokens, so a model that overshoots a little is not cut off
MIN_OUTPUT_TOKENS = 32  # no call is asked to write less
MIN_SPLIT_TOKENS = 48  # an input below twice this is not split further
MAX_SPLIT_DEPTH = 6  # halvings of one input after context-length errors
DONE_TOLERANCE = 1.25  # one summary at most this times the target ends the run
ADMISSION_MARGIN = 1.03  # on the admission estimate only; prompts and cache keys do not depend on it
MIN_CALIBRATION = 0.3  # a learned ratio never goes below this (Chinese on Moonshot ~0.45; lower = bogus usage)
CONTEXT_WRAPPER_TOKENS = 60  # the <context> tags and the "background only" note
_MESSAGE_TOKENS, _REPLY_TOKENS = 4, 3  # chat framing around each message / the reply
_PROGRESS_EVERY_S = 2.0


@dataclass(frozen=True, kw_only=True)
class _Call:
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


@dataclass
class _Outcome:
    """The text one logical call produced, and what it took."""

    text: str
    calls: int = 0
    cached: bool = True
    truncated: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_s: float = 0.0

    def join(self, other: _Outcome) -> _Outcome:
        return _Outcome(
            text=f"{self.text.strip()}\n\n{other.text.strip()}".strip(),
            calls=self.calls + other.calls,
            cached=self.cached and other.cached,
            truncated=self.truncated or other.truncated,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=self.cost + other.cost,
            latency_s=max(self.latency_s, other.latency_s),  # the halves run at once
        )


class _Overflow:
    """A context-length rejection (received, cached, or predicted)."""


class _Stopped(Exception):
    """A call not started because the run is stopping (quota or another failure)."""


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
    budget: TokenBudget  # level-0 budget for this document's language
    input_budget: Callable[[int], int]  # merge input budget by output size
    observed_calibration: float | None = None  # live: the largest ratio reported so far (None: none yet)
    level_calibration: list[float] = field(default_factory=list)  # the calibration each level ran with
    levels: list[list[Node]] = field(default_factory=list)
    usage: UsageTotals = field(default_factory=UsageTotals)
    done: bool = False
    status: str = "running"
    started_s: float = field(default_factory=time.monotonic)

    @property
    def final(self) -> Node | None:
        return self.levels[-1][0] if self.done else None

    @property
    def next_level(self) -> int:
        return len(self.levels)


class SummaryEngine:
    """Runs the summary tree for documents through a backend, a cache/run store and a progress sink."""

    def __init__(
        self,
        *,
        backend: ChatBackend,
        store: Store,
        settings: RunSettings,
        model: ModelSpec,
        counter: TokenCounter | None = None,
        progress: ProgressSink | None = None,
        max_in_flight: int = 8,
        limits: RateLimits | None = None,
        lag: int | None = None,
    ) -> None:
        """Args:
        backend: answers chat requests (the HTTP client with its rate budget, or the extractive backend).
        store: the cache and run records.
        max_in_flight: calls sent at once (the budget may admit fewer).
        limits: the rate tier (default: settings.tier from configs/); its concurrency caps the lag too.
        lag: force this carry-forward lag instead of max(context_lag, concurrency) (benchmarks compare them).
        """
        self.backend = backend
        self.store = store
        self.settings = settings
        self.model = model
        self.counter = counter or counter_for(model)
        self.progress: ProgressSink = progress or NullProgress()
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self.limits = limits or model_and_limits(settings)[1]
        self.lag_override = lag
        self.provider = getattr(backend, "name", "backend")
        # A local backend's answers change with its code, not with a model name: it names its own version.
        self.cache_namespace = getattr(backend, "cache_namespace", self.provider)
        self.billable = bool(getattr(backend, "billable", True))
        chunk_budget(model, settings)  # fail at construction when the model cannot hold a chunk at all
        self._slots: asyncio.Semaphore | None = None
        self._stop: asyncio.Event | None = None
        self._stop_error: BaseException | None = None
        self._last_update = 0.0

    def __repr__(self) -> str:
        return f"SummaryEngine(backend={self.provider!r}, model={self.model.name!r}, max_in_flight={self.max_in_flight})"

    # --- public steps ----------------------------------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        """Calls that can be in flight at once: ``max_in_flight`` capped by the tier's concurrency."""
        tier = self.limits.concurrency
        return min(self.max_in_flight, tier) if tier > 0 else self.max_in_flight

    def chunk(self, document: Document) -> list[Chunk]:
        """The chunks level 0 will summarise (no calls, no run record)."""
        budget = chunk_budget(self.model.for_language(document.language), self.settings)
        return chunk_document(document, self.counter, budget)

    def prepare(self, document: Document) -> RunState:
        """Chunk, plan and record the run (no calls)."""
        plan = plan_document(document, self.model, self.settings, self.limits, counter=self.counter)
        model, chunks = plan.model, plan.chunks
        language = resolve_language(self.settings.language, document.language)
        same = resolve_language("auto", document.language) == language
        unit = length_unit(language, sample_text(document.text) if same else "", self.counter)
        lag = self.lag_override or effective_lag(self.settings.context_lag, self.concurrency)
        recorded = {
            **self.settings.as_dict(),
            "backend": self.provider,
            "max_in_flight": self.max_in_flight,
            "effective_lag": lag,
            "language_resolved": language,
        }
        run_id = self.store.start_run(
            document=str(document.path), document_hash=document_hash(document.text), settings=recorded
        )
        state = RunState(
            document=document,
            chunks=list(chunks),
            plan=plan,
            settings=self.settings,
            model=model,
            run_id=run_id,
            language=language,
            unit=unit,
            lag=lag,
            # A backend that counts tokens itself (the extractive one: locally) states its own ratio.
            calibration=getattr(self.backend, "calibration", None) or model.calibration,
            budget=chunk_budget(model, self.settings),
            input_budget=merge_input_budget(model, self.settings),
        )
        state.usage.currency = self.model.currency
        log.info(
            "run %s: %s, %d chunks, %d planned calls in %d levels, lag %d, language %s",
            run_id,
            document.path.name,
            len(chunks),
            plan.total_calls,
            len(plan.levels),
            lag,
            language,
        )
        self.progress.plan_ready(plan)
        return state

    async def run_level(self, state: RunState, level: int) -> list[Node]:
        """Run one level of the tree (all its calls, concurrently) and record it in ``state``.

        Raises:
            DepthLimitError: ``level`` is beyond settings.max_depth.
            QuotaExhaustedError: after in-flight calls finished; the run is marked "quota".
            TomeError: any other failure; the run is marked "failed" (the cache keeps what was done).
        """
        if state.done and level >= len(state.levels):
            raise ValueError("the run is already done")
        if level > len(state.levels):
            raise ValueError(f"level {level} cannot run before level {len(state.levels)}")
        del state.levels[level:]  # a re-run level (task retry) replaces its earlier result
        state.done = False
        if level < len(state.level_calibration):
            state.calibration = state.level_calibration[level]  # and builds the same prompts as before
        try:
            if level > self.settings.max_depth:
                raise DepthLimitError(
                    f"The summary tree did not converge within max_depth={self.settings.max_depth} levels "
                    "(the model's summaries are not getting shorter). Use a shorter --length or a larger model."
                )
            calls = self._level_calls(state, level)
            nodes = await self._run_calls(state, level, calls)
        except QuotaExhaustedError as exc:
            self._close(state, "quota", str(exc))
            raise
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
                self._close(state, "interrupted", "interrupted")
            else:
                self._close(state, "failed", f"{type(exc).__name__}: {exc}")
            raise
        state.levels.append(nodes)
        del state.level_calibration[level:]
        state.level_calibration.append(state.calibration)
        if state.observed_calibration is not None:
            state.calibration = state.observed_calibration
        total_before = sum(n.tokens for n in state.levels[-2]) if level > 0 else None
        total_after = sum(n.tokens for n in nodes)
        if total_before is not None and total_after >= total_before:
            log.warning(
                "level %d did not shrink the text (%d -> %d tokens)", level, total_before, total_after
            )
        if len(nodes) == 1 and (level > 0 or len(state.chunks) == 1):
            # In the units its length was asked in (the calibration this level ran with).
            asked = math.ceil(nodes[0].tokens * state.level_calibration[level])
            state.done = asked <= self.settings.target_tokens * DONE_TOLERANCE
            if not state.done and total_before is not None and total_after >= total_before:
                # Condensing one summary did not shorten it (the model cannot go shorter, e.g. it keeps
                # every marker or title): asking again would repeat the same call, so stop here.
                log.warning(
                    "the final summary has %d tokens, over the %d-token target; condensing it again did not "
                    "shorten it, so it is kept",
                    nodes[0].tokens,
                    self.settings.target_tokens,
                )
                state.done = True
        self._update(state, force=True)
        self.progress.level_finished(level)
        log.info("level %d: %d summaries, %d tokens", level, len(nodes), total_after)
        return nodes

    def finish(self, state: RunState) -> SummaryResult:
        """Mark the run done and build its outputs."""
        if not state.done:
            raise ValueError("the run has not finished its levels")
        self._close(state, "done", None)
        # Provenance is lexical alignment after the calls: any backend, no extra calls, same tree -> same links.
        levels = link_tree(state.levels, state.chunks, state.document)
        final = levels[-1][0]
        return SummaryResult(
            title=state.document.title,
            document=str(state.document.path),
            language=state.language,
            final=final.text,
            sections=section_summaries(state.levels[0]) if state.document.sections else [],
            levels=levels,
            usage=state.usage,
            run_id=state.run_id,
            backend=self.provider,
            model=self.model.name,
            settings={
                **self.settings.as_dict(),
                "effective_lag": state.lag,
                "language_resolved": state.language,
            },
        )

    async def summarise(self, document: Document) -> SummaryResult:
        """Prepare, run every level until one summary remains, finish."""
        state = self.prepare(document)
        while not state.done:
            await self.run_level(state, state.next_level)
        return self.finish(state)

    # --- levels ----------------------------------------------------------------------------------------------

    def _level_calls(self, state: RunState, level: int) -> list[_Call]:
        """The calls of ``level``: one per chunk, or merges packed from the previous level's actual sizes."""
        if level == 0:
            n = len(state.chunks)
            output = state.plan.levels[0].output_tokens
            return [
                _Call(
                    level=0,
                    index=c.index,
                    kind="map",
                    inputs=(c.index,),
                    text=c.text,
                    part=c.index + 1,
                    total_parts=n,
                    section=self._section(state.document, c.start, c.end),
                    final=n == 1,
                    max_tokens=max(MIN_OUTPUT_TOKENS, output),
                )
                for c in state.chunks
            ]
        prev = state.levels[level - 1]
        target = self.settings.target_tokens
        parts = [MergeInput(j + 1, node.section or None, node.text) for j, node in enumerate(prev)]
        if len(prev) == 1:
            # One summary over the target: condense it (output strictly below its size).
            size = self._calibrated(state, prev[0].tokens)
            groups, output = [[0]], max(MIN_OUTPUT_TOKENS, min(target, size - 1))
        else:
            sizes = [self._calibrated(state, self.counter.count(self._wrapped(p))) for p in parts]
            try:
                output, groups = plan_merge(
                    sizes,
                    target_tokens=target,
                    max_output_tokens=self.settings.chunk_output_tokens,
                    input_budget=state.input_budget,
                    max_depth=max(1, self.settings.max_depth - level + 1),
                )
            except ChunkingError as exc:
                # Only a model that ignores max_tokens writes a summary too big for a merge call.
                raise DepthLimitError(
                    f"Level {level} cannot merge the summaries of level {level - 1}: {exc} The model's summaries "
                    "are not getting shorter; try another model."
                ) from exc
        calls = []
        for i, group in enumerate(groups):
            members = tuple(replace(parts[j], n=k + 1) for k, j in enumerate(group))
            calls.append(
                _Call(
                    level=level,
                    index=i,
                    kind="reduce",
                    inputs=tuple(group),
                    text=merged_source(list(members)),
                    parts=members,
                    part=i + 1,
                    total_parts=len(groups),
                    section=self._section(state.document, prev[group[0]].span[0], prev[group[-1]].span[1]),
                    final=len(groups) == 1,
                    max_tokens=max(MIN_OUTPUT_TOKENS, output),
                )
            )
        return calls

    async def _run_calls(self, state: RunState, level: int, calls: list[_Call]) -> list[Node]:
        """All calls of a level at once; call i waits only for the call its context comes from."""
        # Made per level: a level may run in another event loop than the last (one Prefect task each).
        self._slots = asyncio.Semaphore(self.max_in_flight)
        self._stop = asyncio.Event()
        self._stop_error = None
        self.progress.level_started(level, len(calls))
        finished = [asyncio.Event() for _ in calls]
        summaries: dict[int, str] = {}
        inputs = {c.index: c.text for c in calls}
        strategy = self.settings.context_strategy

        async def one(call: _Call) -> Node:
            try:
                source = context_source(call.index, strategy=strategy, lag=state.lag)
                if source.summary_of is not None:
                    await finished[source.summary_of].wait()
                    if source.summary_of not in summaries:
                        raise _Stopped()
                if self._stop is not None and self._stop.is_set():
                    raise _Stopped()
                node = await self._node(state, call, source, summaries, inputs, level)
                summaries[call.index] = node.text
                return node
            finally:
                finished[call.index].set()

        results = await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            real = [e for e in errors if not isinstance(e, _Stopped)]
            quota = next((e for e in real if isinstance(e, QuotaExhaustedError)), None)
            raise quota or self._stop_error or (real[0] if real else RuntimeError("calls stopped"))
        return [r for r in results if isinstance(r, Node)]

    async def _node(
        self,
        state: RunState,
        call: _Call,
        source: ContextSource,
        summaries: dict[int, str],
        inputs: dict[int, str],
        level: int,
    ) -> Node:
        context, label = "", "none"
        if source.carries:
            room = self._context_room(state, call)
            if source.summary_of is not None:
                context, label = (
                    tail_sentences(summaries[source.summary_of], room, self.counter),
                    f"summary:{source.summary_of}",
                )
            elif source.tail_of is not None:
                context, label = (
                    tail_sentences(inputs[source.tail_of], room, self.counter),
                    f"tail:{source.tail_of}",
                )
            if not context:
                label = "none"
        outcome = await self._resolve(state, replace(call, context=context), 0)
        if outcome.truncated:
            state.usage.truncated += 1
        doc = state.document
        if call.kind == "map":
            chunk = state.chunks[call.index]
            span = (chunk.start, chunk.end)
        else:
            prev = state.levels[level - 1]
            span = (prev[call.inputs[0]].span[0], prev[call.inputs[-1]].span[1])
        node = Node(
            level=level,
            index=call.index,
            inputs=call.inputs,
            span=span,
            pages=doc.pages_for(*span),
            section=call.section,
            text=outcome.text.strip(),
            tokens=self.counter.count(outcome.text.strip()),
            cached=outcome.cached,
            truncated=outcome.truncated,
            calls=outcome.calls,
            context=label,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            cost=outcome.cost,
            latency_s=outcome.latency_s,
        )
        self.progress.call_finished(
            level,
            cached=node.cached,
            prompt_tokens=node.prompt_tokens,
            completion_tokens=node.completion_tokens,
            cost=node.cost,
        )
        self._update(state)
        return node

    # --- one logical call: cache, overflow, split, retry ------------------------------------------------------

    async def _resolve(self, state: RunState, call: _Call, depth: int) -> _Outcome:
        """The text for ``call``: from the cache or the backend, split on overflow, retried once if cut off."""
        answer = await self._ask(state, call, strict=False, depth=depth)
        if isinstance(answer, _Overflow):
            return await self._split(state, call, depth)
        outcome, completion = answer
        if completion.finish_reason != "length":
            return outcome
        state.usage.retries += 1
        retry = await self._ask(state, call, strict=True, depth=depth)
        if isinstance(retry, _Overflow):
            outcome.truncated = True
        else:
            again, completion2 = retry
            again = _Outcome(
                text=again.text,
                calls=outcome.calls + again.calls,
                cached=outcome.cached and again.cached,
                truncated=completion2.finish_reason == "length",
                prompt_tokens=outcome.prompt_tokens + again.prompt_tokens,
                completion_tokens=outcome.completion_tokens + again.completion_tokens,
                cost=outcome.cost + again.cost,
                latency_s=outcome.latency_s + again.latency_s,
            )
            outcome = again
        if outcome.truncated:
            log.warning(
                "level %d call %d: the summary was cut off at max_tokens even after a stricter retry; "
                "kept and flagged truncated",
                call.level,
                call.index,
            )
        return outcome

    async def _ask(
        self, state: RunState, call: _Call, *, strict: bool, depth: int
    ) -> tuple[_Outcome, Completion] | _Overflow:
        """One request: the cache first, then (unless an overflow is recorded or predicted) the backend."""
        max_tokens = self._retry_max_tokens(state, call) if strict else call.max_tokens
        messages = self._messages(state, call, max_tokens=max_tokens, strict=strict)
        version = self.settings.prompt_version(call.kind)
        params = {"max_tokens": max_tokens, "temperature": self.settings.temperature}
        key = cache_key(
            provider=self.cache_namespace,
            model=self.model.name,
            prompt_version=version,
            messages=messages,
            params=params,
        )
        hit = self.store.cache_get(key)
        if hit is not None:
            state.usage.cached_calls += 1
            self._learn(state, hit.completion.usage.prompt_tokens, self._local_prompt(messages))
            return _Outcome(text=hit.completion.content, calls=0, cached=True), hit.completion
        local = self._local_prompt(messages)
        overflow = self.store.overflow_get(key)
        if overflow is not None:
            # Learn from it exactly as when it happened, so later levels are shaped the same on a rerun.
            self._learn_overflow(state, overflow.limit, overflow.requested, local, max_tokens)
            return _Overflow()
        live = state.observed_calibration or state.calibration
        predicted = math.ceil(local * live) + max_tokens > self.model.context_tokens
        if predicted and not strict and self._splittable(call, depth):
            # The decision used the live calibration (timing-dependent), so it is recorded: reruns split this
            # call the same way without asking.
            log.debug("level %d call %d: predicted over the context; splitting", call.level, call.index)
            self.store.overflow_put(key, model=self.model.name, limit=None, requested=None)
            return _Overflow()
        request = ChatRequest(
            model=self.model.name,
            messages=messages,
            max_tokens=max_tokens,
            temperature=self.settings.temperature,
            # Per-prompt ratios scatter a few % around the largest seen so far; the budget must not under-count
            # (the gateway refuses a call that overfills the TPM window by a single token).
            estimated_prompt_tokens=math.ceil(local * live * ADMISSION_MARGIN),
            source_text=call.text,
        )
        completion = await self._send(state, request, key, local, version)
        if completion is None:
            return _Overflow()
        cost = (
            self.model.cost(completion.usage.prompt_tokens, completion.usage.completion_tokens)
            if self.billable
            else 0.0
        )
        state.usage.cost += cost
        return (
            _Outcome(
                text=completion.content,
                calls=1,
                cached=False,
                prompt_tokens=completion.usage.prompt_tokens,
                completion_tokens=completion.usage.completion_tokens,
                cost=cost,
                latency_s=completion.latency_s,
            ),
            completion,
        )

    async def _send(
        self, state: RunState, request: ChatRequest, key: str, local: int, version: str
    ) -> Completion | None:
        """Send through the backend (under the in-flight cap); cache at once. None = context-length rejection."""
        stop = self._stop
        if stop is not None and stop.is_set():
            raise _Stopped()
        assert self._slots is not None, "calls are sent only while a level runs"
        async with self._slots:
            if stop is not None and stop.is_set():
                raise _Stopped()
            try:
                completion = await self.backend.complete(request)
            except ContextLengthError as exc:
                state.usage.calls += 1
                self._learn_overflow(state, exc.limit, exc.requested, local, request.max_tokens)
                self.store.overflow_put(key, model=self.model.name, limit=exc.limit, requested=exc.requested)
                log.info(
                    "context-length rejection (limit %s, requested %s); splitting", exc.limit, exc.requested
                )
                return None
            except BaseException as exc:
                if stop is not None and not isinstance(exc, asyncio.CancelledError):
                    if self._stop_error is None:
                        self._stop_error = exc
                    stop.set()
                raise
        self.store.cache_put(
            key,
            provider=self.provider,
            model=self.model.name,
            prompt_version=version,
            completion=completion,
            messages=request.messages,
        )
        u = state.usage
        u.calls += 1
        u.prompt_tokens += completion.usage.prompt_tokens
        u.completion_tokens += completion.usage.completion_tokens
        self._learn(state, completion.usage.prompt_tokens, local)
        return completion

    async def _split(self, state: RunState, call: _Call, depth: int) -> _Outcome:
        """Summarise ``call``'s input as two halves (concurrently) and join the two summaries."""
        if not self._splittable(call, depth):
            raise ContextLengthError(
                f"Level {call.level} call {call.index} does not fit the model's {self.model.context_tokens}-token "
                "context even after splitting; use a model with a larger context or a shorter --length.",
                status=400,
                limit=self.model.context_tokens,
            )
        state.usage.splits += 1
        first, second = self._halves(state, call)
        a, b = await asyncio.gather(
            self._resolve(state, first, depth + 1), self._resolve(state, second, depth + 1)
        )
        return a.join(b)

    def _splittable(self, call: _Call, depth: int) -> bool:
        if depth >= MAX_SPLIT_DEPTH:
            return False
        if call.kind == "reduce":
            return len(call.parts) >= 2 or self.counter.count(call.text) >= 2 * MIN_SPLIT_TOKENS
        return self.counter.count(call.text) >= 2 * MIN_SPLIT_TOKENS

    def _halves(self, state: RunState, call: _Call) -> tuple[_Call, _Call]:
        """Two calls covering ``call``'s input (a sentence boundary near the middle, or half the summaries)."""
        output = max(MIN_OUTPUT_TOKENS, call.max_tokens // 2)
        if call.kind == "reduce" and len(call.parts) >= 2:
            cut = _balanced_cut([self.counter.count(p.text) for p in call.parts])
            left = tuple(replace(p, n=i + 1) for i, p in enumerate(call.parts[:cut]))
            right = tuple(replace(p, n=i + 1) for i, p in enumerate(call.parts[cut:]))
            a = replace(call, parts=left, text=merged_source(list(left)), final=False, max_tokens=output)
            b = replace(call, parts=right, text=merged_source(list(right)), final=False, max_tokens=output)
        else:
            head, tail = split_text(call.text, self.counter)
            if call.kind == "reduce":
                # One over-long summary: condense its halves as two summaries of their own.
                left = (replace(call.parts[0], text=head),)
                right = (replace(call.parts[0], text=tail),)
                a = replace(call, parts=left, text=head, final=False, max_tokens=output)
                b = replace(call, parts=right, text=tail, final=False, max_tokens=output)
            else:
                a = replace(call, text=head, final=False, max_tokens=output)
                b = replace(call, text=tail, final=False, max_tokens=output)
        # The second half carries the first half's raw tail as context (available at once, deterministic).
        room = self._context_room(state, b) if self.settings.context_strategy != "none" else 0
        b = replace(b, context=tail_sentences(a.text, room, self.counter) if room else "")
        return a, b

    # --- prompts and sizes -----------------------------------------------------------------------------------

    def _messages(
        self, state: RunState, call: _Call, *, max_tokens: int, strict: bool
    ) -> tuple[Message, ...]:
        # Budgets are provider tokens; the unit ratio is per local token. ``max_tokens`` (a retry's larger
        # room) never changes the length asked for: only ``strict`` does.
        words = state.unit.units(call.max_tokens * LENGTH_HEADROOM / state.calibration)
        if strict:
            words = strict_words(words)
        title = state.document.title
        if call.kind == "map":
            return map_messages(
                call.text,
                title=title,
                part=call.part,
                parts=call.total_parts,
                section=call.section or None,
                context=call.context,
                words=words,
                language=state.language,
                strict=strict,
            )
        return merge_messages(
            list(call.parts),
            title=title,
            final=call.final,
            context=call.context,
            words=words,
            language=state.language,
            strict=strict,
        )

    def _local_prompt(self, messages: Sequence[Message]) -> int:
        return sum(self.counter.count(m.content) + _MESSAGE_TOKENS for m in messages) + _REPLY_TOKENS

    def _calibrated(self, state: RunState, local_tokens: int) -> int:
        """Provider tokens of a text, by the calibration learned so far (for packing and room)."""
        return math.ceil(local_tokens * state.calibration)

    def _wrapped(self, part: MergeInput) -> str:
        """A summary as it appears in a merge prompt (tags and section title count against the budget)."""
        section = f' section="{part.section}"' if part.section else ""
        return f'<summary n="{part.n}"{section}>\n{part.text}\n</summary>\n'

    def _context_room(self, state: RunState, call: _Call) -> int:
        """Local tokens of context ``call`` may carry: its share of the budget, within what its prompt leaves."""
        if self.settings.context_strategy == "none":
            return 0
        planned = state.budget.with_output(call.max_tokens).carried_context_tokens
        bare = self._local_prompt(
            self._messages(state, replace(call, context=""), max_tokens=call.max_tokens, strict=True)
        )
        left = (
            self.model.context_tokens
            - self.model.safety_margin_tokens
            - call.max_tokens
            - math.ceil(bare * state.calibration)
            - CONTEXT_WRAPPER_TOKENS
        )
        return max(0, int(min(planned, left) / state.calibration))

    def _retry_max_tokens(self, state: RunState, call: _Call) -> int:
        """Output room for a stricter retry: up to twice the original, as far as the context allows."""
        messages = self._messages(state, call, max_tokens=call.max_tokens, strict=True)
        room = (
            self.model.context_tokens
            - self.model.safety_margin_tokens
            - math.ceil(self._local_prompt(messages) * state.calibration)
        )
        return max(call.max_tokens, min(2 * call.max_tokens, room))

    def _learn(self, state: RunState, server_prompt: int, local_prompt: int) -> None:
        """Track the largest provider/local prompt ratio the server reported (prompts of 300+ tokens)."""
        if self.billable and local_prompt >= 300 and server_prompt > 0:
            ratio = max(MIN_CALIBRATION, server_prompt / local_prompt)
            state.observed_calibration = max(state.observed_calibration or 0.0, ratio)

    def _learn_overflow(
        self, state: RunState, limit: int | None, requested: int | None, local_prompt: int, max_tokens: int
    ) -> None:
        """Raise the live calibration from a context-length rejection (a received or a cached one)."""
        if requested:
            server_prompt = requested - max_tokens
        elif limit:
            server_prompt = limit  # "Input token length too long": the prompt alone exceeded the context
        else:
            server_prompt = 0
        if local_prompt > 0 and server_prompt > 0:
            ratio = server_prompt / local_prompt * 1.02
            state.observed_calibration = max(state.observed_calibration or 0.0, ratio, state.calibration)

    def _section(self, doc: Document, start: int, end: int) -> str:
        """The title of the section(s) a span touches: "A" or "A … B" ("" without sections)."""
        sections = doc.sections
        if not sections:
            return ""
        ends = [s.end for s in sections]
        i = bisect_right(ends, start)
        touched = [s for s in sections[i:] if s.start < max(end, start + 1)]
        if not touched:
            return ""
        first, last = touched[0].title, touched[-1].title
        return first if first == last else f"{first} … {last}"

    # --- run record ------------------------------------------------------------------------------------------

    def _update(self, state: RunState, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_update < _PROGRESS_EVERY_S:
            return
        self._last_update = now
        u = state.usage
        self.store.update_run(
            state.run_id,
            calls=u.calls,
            cached_calls=u.cached_calls,
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            cost=u.cost,
        )

    def _close(self, state: RunState, status: str, error: str | None) -> None:
        state.status = status
        try:
            self._update(state, force=True)
            self.store.finish_run(state.run_id, status=status, error=error)
        except Exception:  # noqa: BLE001 - recording the end must not hide the error that ended the run
            log.exception("could not record the end of run %s", state.run_id)


def split_text(text: str, counter: TokenCounter) -> tuple[str, str]:
    """Two halves of ``text`` split at the sentence boundary nearest its token midpoint (else a space/char)."""
    spans = sentence_spans(text)
    if len(spans) >= 2:
        # Per-sentence counts are nearly additive; one pass finds the boundary nearest the middle.
        sizes = [counter.count(text[a:b]) for a, b in spans]
        cut = spans[_balanced_cut(sizes)][0]
    else:
        mid = len(text) // 2
        space = text.rfind(" ", 0, mid)
        cut = space + 1 if space > len(text) // 4 else mid
    return text[:cut], text[cut:]


def _balanced_cut(sizes: list[int]) -> int:
    """Where to cut a list in two so the halves' totals are closest (at least one item each)."""
    total = sum(sizes)
    best, best_gap, running = 1, math.inf, 0
    for i in range(1, len(sizes)):
        running += sizes[i - 1]
        gap = abs(running - total / 2)
        if gap < best_gap:
            best, best_gap = i, gap
    return best


__all__ = ["Node", "RunState", "SummaryEngine", "SummaryResult", "split_text"]
