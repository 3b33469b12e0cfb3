"""The call resolver: one logical call's text from the cache or the backend, split on overflow, retried on cut-off.

- The cache is asked first (before the budget); an answer is stored the moment it returns, so reruns make no
  calls and a killed run repeats no completed call.
- A context-length rejection (received, cached, or predicted from the live calibration) splits the input into
  as many pieces as the window needs; predictions are recorded, so reruns split the same way without asking.
- A refusal that names a smaller window than the run's caps it for the rest of the run and for later runs
  against the same server (warned once). So does a silent cut: a "length" finish far below max_tokens, or at
  prompt + completion = the window, is an overflow to split, never an answer to retry with more room.
- A cut-off answer (finish_reason "length") is kept up to its last complete sentence and flagged trimmed; only
  an answer without one is retried with a stricter length (its room sized by the live calibration, so the
  retry is never refused), and a second cut is kept and flagged truncated.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence

from pipeline.claims import Claims
from pipeline.config import ModelSpec
from pipeline.engine import calibration, length
from pipeline.engine.sizing import MIN_OUTPUT_TOKENS, PromptSizer
from pipeline.engine.splitting import pieces, splittable
from pipeline.engine.state import CallOutcome, CallSpec, LevelRun, Overflow, RunState, WindowCapped
from pipeline.errors import ContextLengthError
from pipeline.llm.types import ChatBackend, ChatRequest, Completion, Message
from pipeline.run_calls import inputs_label
from pipeline.settings import RunSettings
from pipeline.store import Store, cache_key
from pipeline.window import pieces_needed, silent_cut

log = logging.getLogger("tome.engine")

ADMISSION_MARGIN = 1.03  # on the admission estimate only; prompts and cache keys do not depend on it


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
        # Where learned windows are kept: one server's window says nothing about another's.
        self.base_url: str | None = backend.base_url
        self.store = store
        self.settings = settings
        self.model = model
        self.sizer = sizer
        self.provider = provider
        self.cache_namespace = cache_namespace
        self.billable = billable
        self.claims = claims  # in-flight call claims shared with other processes

    async def resolve(
        self, state: RunState, run: LevelRun, call: CallSpec, depth: int = 0, *, probe: bool = False
    ) -> CallOutcome:
        """The text for ``call``: from the cache or the backend, split on overflow; a cut-off answer is kept to
        its last complete sentence (flagged ``trimmed``), and only without one retried with a stricter length.

        ``probe``: the level's first call, sent alone while the window is unconfirmed; when it shows the window
        is smaller than the one the level was planned for, :class:`WindowCapped` is raised instead of splitting,
        so the level is planned again for the real window.
        """
        answer = await self._ask(state, run, call, strict=False, depth=depth)
        if isinstance(answer, Overflow):
            if probe and state.window.tokens < state.model.context_tokens:
                raise WindowCapped()
            split = await self._split(state, run, call, depth, answer.pieces)
            split.calls += int(answer.sent)  # the refused (or cut) request was a call too
            return split
        outcome, completion = answer
        if completion.finish_reason != "length":
            return outcome
        kept = length.trim_to_sentence(completion.content)
        if kept is not None:
            # Paying the whole prompt again for the last sentence or two is the worst deal on offer.
            state.usage.trimmed += 1
            log.info(
                "level %d call %d: cut off at max_tokens %d; kept up to its last complete sentence",
                call.level,
                call.index,
                completion.usage.completion_tokens,
            )
            outcome.text, outcome.trimmed = kept, True
            return outcome
        state.usage.retries += 1
        retry = await self._ask(state, run, call, strict=True, depth=depth)
        if isinstance(retry, Overflow):
            outcome.truncated = True
            outcome.calls += int(retry.sent)
        else:
            again, completion2 = retry
            outcome = CallOutcome(
                text=again.text,
                calls=outcome.calls + again.calls,
                cached_calls=outcome.cached_calls + again.cached_calls,
                splits=outcome.splits + again.splits,
                cached=outcome.cached and again.cached,
                truncated=completion2.finish_reason == "length",
                prompt_tokens=outcome.prompt_tokens + again.prompt_tokens,
                completion_tokens=outcome.completion_tokens + again.completion_tokens,
                cost=outcome.cost + again.cost,
                latency_s=outcome.latency_s + again.latency_s,
            )
        if outcome.truncated:
            log.warning(
                "%s: level %d call %d: the summary was cut off at max_tokens without a complete sentence, even "
                "after a stricter retry; kept and flagged truncated",
                state.document.path.name,  # in a batch, every warning names its document
                call.level,
                call.index,
            )
        return outcome

    async def _ask(
        self, state: RunState, run: LevelRun, call: CallSpec, *, strict: bool, depth: int
    ) -> tuple[CallOutcome, Completion] | Overflow:
        """One request: the cache first, then (unless an overflow is recorded or predicted) the backend."""
        messages = self.sizer.messages(state, call, strict=strict)
        live = calibration.live_calibration(state)
        if strict:
            first = self.sizer.send_max_tokens(state, call, self.sizer.messages(state, call, strict=False))
            max_tokens = self.sizer.retry_max_tokens(state, call, first, calibration=live)
            if max_tokens <= first:
                return Overflow()  # the context leaves a retry no more room than the cut answer had
        else:
            max_tokens = self.sizer.send_max_tokens(state, call, messages)
        version = self.settings.prompt_version(call.kind)
        params = {"max_tokens": max_tokens, "temperature": self.settings.temperature}
        key = cache_key(
            provider=self.cache_namespace,
            model=self.model.name,
            prompt_version=version,
            messages=messages,
            params=params,
        )
        local = self.sizer.local_prompt(messages)
        hit = self.store.cache_get(key)
        if hit is None and self.claims is not None and self.store.overflow_get(key) is None:
            # Another process may be asking this very prompt: wait for its answer rather than pay twice.
            hit = await self.claims.call(key, lambda: self.store.cache_get(key))
            if hit is None:
                try:
                    return await self._ask_uncached(
                        state, run, call, key, messages, local, max_tokens, version, strict, depth
                    )
                finally:
                    await asyncio.shield(asyncio.to_thread(self.claims.release_call, key))
        if hit is not None:
            state.usage.cached_calls += 1
            calibration.learn(state, hit.completion.usage.prompt_tokens, local, billable=self.billable)
            if not strict and self.billable:
                length.learn(state, call, hit.completion.usage.completion_tokens, hit.completion.finish_reason)
            self._note(state, call, key, version, "cached", hit.completion)
            outcome = CallOutcome(text=hit.completion.content, calls=0, cached_calls=1, cached=True)
            return outcome, hit.completion
        return await self._ask_uncached(state, run, call, key, messages, local, max_tokens, version, strict, depth)

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
        strict: bool,
        depth: int,
    ) -> tuple[CallOutcome, Completion] | Overflow:
        """A cache miss: a recorded or predicted overflow, else the backend."""
        overflow = self.store.overflow_get(key)
        if overflow is not None:
            # Learn from it exactly as when it happened, so later levels are shaped the same on a rerun.
            calibration.learn_overflow(
                state,
                limit=overflow.limit,
                requested=overflow.requested,
                local_prompt=local,
                max_tokens=max_tokens,
            )
            if overflow.limit:
                self._cap(state, overflow.limit)
            self._note(state, call, key, version, "split-recorded")
            return Overflow(overflow.pieces)
        live = calibration.live_calibration(state)
        predicted = math.ceil(local * live) + max_tokens > state.window.tokens
        if predicted and not strict and splittable(call, depth, self.sizer.counter):
            # The decision used the live calibration (timing-dependent), so it is recorded: reruns split this
            # call the same way without asking.
            n = self._pieces(state, call, local, max_tokens)
            log.debug("level %d call %d: predicted over the context; %d pieces", call.level, call.index, n)
            self.store.overflow_put(key, model=self.model.name, limit=None, requested=None, pieces=n)
            self._note(state, call, key, version, "split-predicted")
            return Overflow(n)
        request = ChatRequest(
            model=self.model.name,
            messages=tuple(messages),
            max_tokens=max_tokens,
            temperature=self.settings.temperature,
            # Per-prompt ratios scatter a few % around the largest seen so far; the budget must not under-count
            # (the gateway refuses a call that overfills the TPM window by a single token).
            estimated_prompt_tokens=math.ceil(local * live * ADMISSION_MARGIN),
            source_text=call.text,
        )
        completion = await self._send(state, run, call, request, key, local, version)
        if isinstance(completion, Overflow):
            self._note(state, call, key, version, "rejected")
            return completion
        usage = completion.usage
        if not strict and self.billable:
            length.learn(state, call, usage.completion_tokens, completion.finish_reason)
        cost = self.model.cost(usage.prompt_tokens, usage.completion_tokens) if self.billable else 0.0
        state.usage.cost += cost
        self._note(state, call, key, version, "answer", completion, cost)
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

    @staticmethod
    def _note(
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
        """Send through the backend (under the level's in-flight cap); cache at once. Overflow: a context-length
        rejection or a silent cut at the window (recorded, not cached as an answer)."""
        run.check()
        async with run.slots:
            run.check()
            try:
                completion = await self.backend.complete(request)
            except ContextLengthError as exc:
                state.usage.calls += 1
                requested = exc.requested
                if requested is None and exc.prompt_tokens:
                    requested = exc.prompt_tokens + request.max_tokens  # llama-server names the prompt alone
                return self._overflowed(state, call, key, local, request.max_tokens, exc.limit, requested, "refused")
            except BaseException as exc:
                if not isinstance(exc, asyncio.CancelledError):
                    run.fail(exc)
                raise
        u = completion.usage
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
            state.usage.calls += 1
            state.usage.prompt_tokens += u.prompt_tokens
            state.usage.completion_tokens += u.completion_tokens
            requested = u.prompt_tokens + request.max_tokens
            return self._overflowed(state, call, key, local, request.max_tokens, revealed, requested, "cut off")
        self.store.cache_put(
            key,
            provider=self.provider,
            model=self.model.name,
            prompt_version=version,
            completion=completion,
            messages=request.messages,
        )
        totals = state.usage
        totals.calls += 1
        totals.prompt_tokens += completion.usage.prompt_tokens
        totals.completion_tokens += completion.usage.completion_tokens
        calibration.learn(state, completion.usage.prompt_tokens, local, billable=self.billable)
        return completion

    def _overflowed(
        self,
        state: RunState,
        call: CallSpec,
        key: str,
        local: int,
        max_tokens: int,
        limit: int | None,
        requested: int | None,
        how: str,
    ) -> Overflow:
        """Learn from a refusal or a silent cut, cap the window, record how the call is split."""
        calibration.learn_overflow(state, limit=limit, requested=requested, local_prompt=local, max_tokens=max_tokens)
        if limit:
            self._cap(state, limit)
        n = self._pieces(state, call, local, max_tokens)
        self.store.overflow_put(key, model=self.model.name, limit=limit, requested=requested, pieces=n)
        log.info(
            "level %d call %d: %s over the context (window %s, requested %s); %d pieces",
            call.level,
            call.index,
            how,
            limit,
            requested,
            n,
        )
        return Overflow(n, sent=True)

    def _cap(self, state: RunState, limit: int) -> None:
        """Cap the run's window at ``limit``; the first time it falls below the configured one, say so once."""
        if state.window.cap(limit) and self.base_url:
            self.store.window_put(self.model.name, self.base_url, state.window.tokens)
        if state.window.tokens < state.window.configured and not state.window.warned:
            state.window.warned = True
            log.warning(
                "The server runs %s with a %d-token window, not the %d configured; using %d for this run%s. "
                "Set context_tokens = %d for it in tome.toml.",
                self.model.name,
                state.window.tokens,
                state.window.configured,
                state.window.tokens,
                f" and later runs against {self.base_url}" if self.base_url else "",
                state.window.tokens,
            )

    def _pieces(self, state: RunState, call: CallSpec, local: int, max_tokens: int) -> int:
        """Into how many pieces ``call`` must be split to fit the run's window (at least two)."""
        live = calibration.live_calibration(state)
        text = self.sizer.counter.count(call.text)
        n = pieces_needed(
            input_tokens=math.ceil(text * live),
            fixed_tokens=math.ceil(max(0, local - text) * live),
            max_tokens=max_tokens,
            window=state.window.tokens,
            margin=self.model.safety_margin_tokens,
            min_output=MIN_OUTPUT_TOKENS,
        )
        return max(2, n or 2)

    async def _split(self, state: RunState, run: LevelRun, call: CallSpec, depth: int, n: int = 2) -> CallOutcome:
        """Summarise ``call``'s input as ``n`` pieces (concurrently) and join their summaries."""
        if not splittable(call, depth, self.sizer.counter):
            raise ContextLengthError(
                f"Level {call.level} call {call.index} does not fit the model's {state.window.tokens}-token "
                "context even after splitting; use a model with a larger context or a shorter --length.",
                status=400,
                limit=state.window.tokens,
            )
        state.usage.splits += 1
        parts = pieces(state, call, self.sizer, n)
        outcomes = await asyncio.gather(*(self.resolve(state, run, p, depth + 1) for p in parts))
        joined = outcomes[0]
        for outcome in outcomes[1:]:
            joined = joined.join(outcome)
        joined.splits += 1
        return joined
