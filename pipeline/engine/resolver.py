"""The call resolver: one logical call's text from the cache or the backend, refitted or split on overflow.

- The cache is asked first (before the budget); an answer is stored the moment it returns, so reruns make no
  calls and a killed run repeats no completed call.
- A context-length rejection (received, cached, or predicted from the live calibration) sends the same prompt
  again with less output room when the server's count leaves room for the length asked, else splits the input
  into as many pieces as the window needs (pipeline.engine.overflow); decisions are recorded, so reruns go the
  same way without asking.
- A refusal that names a smaller window than the run's caps it for the rest of the run and for later runs
  against the same server (warned once). So does a silent cut: a "length" finish far below max_tokens, or at
  prompt + completion = the window, is an overflow, never an answer to retry with more room.
- A cut-off answer (finish_reason "length") is recovered per provider (pipeline.engine.cutoff): continued in
  partial mode or trimmed to its last complete sentence; a second full-prompt call is the last resort.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence

from pipeline.claims import Claims
from pipeline.config import ModelSpec
from pipeline.engine import calibration, cutoff, length
from pipeline.engine.overflow import Overflows
from pipeline.engine.sizing import PromptSizer
from pipeline.engine.splitting import split_call, splittable
from pipeline.engine.state import CallOutcome, CallSpec, LevelRun, Overflow, RunState, WindowCapped
from pipeline.errors import ContextLengthError
from pipeline.llm.types import ChatBackend, ChatRequest, Completion, Message
from pipeline.run_calls import inputs_label
from pipeline.settings import RunSettings
from pipeline.store import Store, cache_key
from pipeline.window import silent_cut

log = logging.getLogger("tome.engine")

# A server's count of one prompt runs up to a few % above the largest ratio seen so far (per-prompt ratios
# scatter): admission and the overflow prediction both allow for it. Prompts and cache keys do not depend on it.
ADMISSION_MARGIN = 1.03
# A prompt whose estimate comes within this factor of the window is counted by the server first, where it counts
# (Moonshot's endpoint): stretches of a document with code, tables or markup run 20-30 % above its average ratio,
# and a prompt the server would refuse is then refitted or split without being sent.
NEAR_WINDOW = 1.35

Answer = tuple[CallOutcome, Completion] | Overflow


def note(
    state: RunState,
    call: CallSpec,
    key: str,
    version: str,
    outcome: str,
    completion: Completion | None = None,
    cost: float = 0.0,
) -> None:
    """Record one request of ``call``'s node for `tome runs show` (pipeline.run_calls)."""
    usage = completion.usage if completion is not None else None
    state.log_call(
        level=call.level, node=call.index, key=key, kind=call.kind, prompt_version=version, outcome=outcome,
        cached=outcome == "cached", inputs=inputs_label(call.inputs),
        finish_reason=completion.finish_reason if completion is not None else None,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0, cost=cost,
    )  # fmt: skip


async def counted_in_turn(
    state: RunState, run: LevelRun, backend: ChatBackend, call: CallSpec, messages: Sequence[Message],
    *, near: bool = False,
) -> int | None:
    """The prompt tokens admission counts when the run counts exactly (a binding TPM limit): the server's own
    (exact for the overflow check too; None: the live calibration's estimate with its margin), once every call
    of the level before this one has reached the rate budget, so that they are admitted in their order.
    ``near``: the prompt may not fit the window: the server's count, when it offers one, for the overflow check."""
    if not state.count_exactly and not near:
        return None
    count = getattr(backend, "count_prompt_tokens", None)  # wrappers in tests may not forward it
    exact = await count(messages) if count is not None else None
    if state.count_exactly:
        await run.turn(call.index)
    return exact


class CallResolver:
    """Resolves logical calls for any number of runs at once; everything a run changes is passed in."""

    def __init__(
        self,
        *,
        backend: ChatBackend,
        store: Store,
        settings: RunSettings,
        model: ModelSpec,
        sizer: PromptSizer,
        provider: str,
        cache_namespace: str,
        billable: bool,
        claims: Claims | None = None,
    ) -> None:
        self.backend = backend
        self.store = store
        self.settings = settings
        self.model = model
        self.sizer = sizer
        self.provider = provider
        self.cache_namespace = cache_namespace
        self.billable = billable
        self.claims = claims  # in-flight call claims shared with other processes
        self.overflows = Overflows(store=store, model=model, sizer=sizer, base_url=backend.base_url)

    def answered(self, state: RunState, call: CallSpec) -> bool:
        """Whether ``call``'s first request, as the run would send it now, is in the cache (or its overflow)."""
        messages = self.sizer.messages(state, call, strict=False)
        key = self._key(call, messages, self.sizer.send_max_tokens(state, call, messages))
        return self.store.cache_get(key) is not None or self.store.overflow_get(key) is not None

    def _key(self, call: CallSpec, messages: Sequence[Message], max_tokens: int) -> str:
        """The cache key of ``messages`` sent for ``call`` with ``max_tokens``."""
        params = {"max_tokens": max_tokens, "temperature": self.settings.temperature}
        return cache_key(provider=self.cache_namespace, model=self.model.name,
                         prompt_version=self.settings.prompt_version(call.kind), messages=messages, params=params)  # fmt: skip

    async def resolve(
        self, state: RunState, run: LevelRun, call: CallSpec, depth: int = 0, *, probe: bool = False
    ) -> CallOutcome:
        """The text for ``call``: from the cache or the backend, refitted or split on overflow; a cut-off answer
        is recovered per provider (pipeline.engine.cutoff).

        ``probe``: the level's first call, sent alone while the window is unconfirmed; when it shows the window
        is smaller than the one the level was planned for, :class:`WindowCapped` is raised instead of splitting,
        so the level is planned again for the real window.
        """
        messages = self.sizer.messages(state, call, strict=False)
        answer = await self.ask(state, run, call, messages, self.sizer.send_max_tokens(state, call, messages),
                                depth=depth)  # fmt: skip
        sent = 0
        if isinstance(answer, Overflow) and answer.max_tokens is not None:
            if probe and state.window.tokens < state.model.context_tokens:
                raise WindowCapped()
            # The same prompt with less output room: the server's count showed it fits (never split for that).
            sent = int(answer.sent)
            state.usage.refitted += 1
            answer = await self.ask(state, run, call, messages, answer.max_tokens, depth=depth,
                                    counted=answer.prompt_tokens)  # fmt: skip
        if isinstance(answer, Overflow):
            if probe and state.window.tokens < state.model.context_tokens:
                raise WindowCapped()
            split = await split_call(self, state, run, call, depth, answer.pieces)
            split.calls += sent + int(answer.sent)  # the refused (or cut) requests were calls too
            return split
        outcome, completion = answer
        outcome.calls += sent
        if completion.finish_reason != "length":
            return outcome
        return await cutoff.recover(cutoff.CutCall(self, state, run, call, depth), messages, outcome, completion)

    async def ask(
        self,
        state: RunState,
        run: LevelRun,
        call: CallSpec,
        messages: Sequence[Message],
        max_tokens: int,
        *,
        depth: int,
        first: bool = True,
        counted: int | None = None,
    ) -> Answer:
        """One request: the cache first, then (unless an overflow is recorded or predicted) the backend.

        ``first``: the call's own prompt (its length is learned from; an overflow refits or splits it). A
        follow-up (a continuation, a stricter retry) is overflow-checked the same way but never split.
        ``counted``: the server's own count of this prompt, which showed it fits (no prediction from the
        calibration; admission counts it).
        """
        version = self.settings.prompt_version(call.kind)
        key = self._key(call, messages, max_tokens)
        local = self.sizer.local_prompt(messages)
        hit = self.store.cache_get(key)
        if hit is None and self.claims is not None and self.store.overflow_get(key) is None:
            # Another process may be asking this very prompt: wait for its answer rather than pay twice.
            hit = await self.claims.call(key, lambda: self.store.cache_get(key))
            if hit is None:
                try:
                    return await self._ask_uncached(state, run, call, key, messages, local, max_tokens, version,
                                                    first, depth, counted)  # fmt: skip
                finally:
                    await asyncio.shield(asyncio.to_thread(self.claims.release_call, key))
        if hit is not None:
            state.usage.cached_calls += 1
            calibration.learn(state, hit.completion.usage.prompt_tokens, local, billable=self.billable)
            if first and self.billable:
                length.learn(state, call, hit.completion.usage.completion_tokens, hit.completion.finish_reason)
            note(state, call, key, version, "cached", hit.completion)
            outcome = CallOutcome(text=hit.completion.content, calls=0, cached_calls=1, cached=True)
            return outcome, hit.completion
        return await self._ask_uncached(
            state, run, call, key, messages, local, max_tokens, version, first, depth, counted
        )

    async def _ask_uncached(
        self,
        state: RunState,
        run: LevelRun,
        call: CallSpec,
        key: str,
        messages: Sequence[Message],
        local: int,
        max_tokens: int,
        version: str,
        first: bool,
        depth: int,
        counted: int | None = None,
    ) -> Answer:
        """A cache miss: a recorded or predicted overflow, else the backend."""
        recorded = self.store.overflow_get(key)
        if recorded is not None:
            replayed = self.overflows.replay(state, call, key, recorded, local, max_tokens)
            note(state, call, key, version, "refit-recorded" if replayed.max_tokens else "split-recorded")
            return replayed
        run.check()
        live = calibration.live_calibration(state)
        near = self.billable and counted is None and (
            math.ceil(local * live * NEAR_WINDOW) + max_tokens > state.window.tokens
        )
        exact = await counted_in_turn(state, run, self.backend, call, messages, near=near)
        async with run.slots:  # the level's in-flight cap
            run.check()
            # Checked once a slot is free (answers that came back meanwhile taught the calibration), unless exact.
            estimate = exact or math.ceil(local * calibration.live_calibration(state) * ADMISSION_MARGIN)
            if counted is not None:
                estimate = max(estimate, counted)  # the server will charge its own count at admission
            elif estimate + max_tokens > state.window.tokens:
                if not first:
                    return Overflow()  # a follow-up that would be refused is not sent
                if splittable(call, depth, self.sizer.counter):
                    predicted = self.overflows.predicted(state, call, key, estimate, local, max_tokens)
                    note(state, call, key, version, "refit-predicted" if predicted.max_tokens else "split-predicted")
                    return predicted
            request = ChatRequest(
                model=self.model.name,
                messages=tuple(messages),
                max_tokens=max_tokens,
                temperature=self.settings.temperature,
                estimated_prompt_tokens=estimate,  # never under the gateway's: one token over a full window is a 429
                source_text=call.text,
                order=(run.opened, call.index),  # the level's calls are admitted in their order
            )
            run.through(call.index)  # nothing awaits from here to the budget's line
            completion = await self._send(state, run, call, request, key, local, version)
        if isinstance(completion, Overflow):
            note(state, call, key, version, "rejected")
            return completion
        usage = completion.usage
        if first and self.billable:
            length.learn(state, call, usage.completion_tokens, completion.finish_reason)
        cost = self.model.cost(usage.prompt_tokens, usage.completion_tokens) if self.billable else 0.0
        state.usage.cost += cost
        note(state, call, key, version, "answer", completion, cost)
        outcome = CallOutcome(
            text=completion.content,
            calls=1,
            cached=False,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=cost,
            latency_s=completion.latency_s,
        )
        return outcome, completion

    async def _send(
        self,
        state: RunState,
        run: LevelRun,
        call: CallSpec,
        request: ChatRequest,
        key: str,
        local: int,
        version: str,
    ) -> Completion | Overflow:
        """Send through the backend (the caller holds a slot of the level's in-flight cap); cache at once.
        Overflow: a context-length rejection or a silent cut at the window (recorded, not cached as an answer)."""
        try:
            completion = await self.backend.complete(request)
        except ContextLengthError as exc:
            state.usage.calls += 1
            requested = exc.requested
            if requested is None and exc.prompt_tokens:
                requested = exc.prompt_tokens + request.max_tokens  # llama-server names the prompt alone
            return self.overflows.received(state, call, key, local, request.max_tokens, exc.limit, requested, "refused")
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                run.fail(exc)
            raise
        u = completion.usage
        totals = state.usage
        totals.calls += 1
        totals.prompt_tokens += u.prompt_tokens
        totals.completion_tokens += u.completion_tokens
        totals.cached_tokens += u.cached_tokens
        revealed = silent_cut(
            finish_reason=completion.finish_reason,
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            max_tokens=request.max_tokens,
            window=state.window.tokens,
            confirmed=state.window.confirmed,
        )
        if revealed is not None:
            # The server stopped at its window, not at max_tokens: the answer is a fragment. Counted, not kept.
            requested = u.prompt_tokens + request.max_tokens
            return self.overflows.received(
                state, call, key, local, request.max_tokens, revealed, requested, "cut off"
            )
        self.store.cache_put(
            key,
            provider=self.provider,
            model=self.model.name,
            prompt_version=version,
            completion=completion,
            messages=request.messages,
        )
        calibration.learn(state, u.prompt_tokens, local, billable=self.billable)
        return completion
