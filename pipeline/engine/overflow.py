"""Context overflows: learn from a refusal or a silent cut, cap the window, and decide how the call goes on.

A refusal names the server's count of the prompt (``requested: N`` minus the max_tokens sent; or usage, for a
silent cut). When that prompt leaves room for at least the length the call asks for, the same prompt is sent
again with ``max_tokens`` = that room (nothing is paid twice: a refusal is free, and no instructions or context
are repeated as a split would); otherwise the input is split into as many pieces as the window needs. The
decision is recorded with the overflow, so a rerun goes the same way without asking.
"""

from __future__ import annotations

import logging
import math

from pipeline.config import ModelSpec
from pipeline.engine import calibration, length
from pipeline.engine.sizing import MIN_OUTPUT_TOKENS, PromptSizer
from pipeline.engine.state import CallSpec, Overflow, RunState
from pipeline.store import Overflow as Recorded
from pipeline.store import Store
from pipeline.window import pieces_needed

log = logging.getLogger("tome.engine")


class Overflows:
    """What the resolver does with an overflow; holds only run-independent parts (store, model, sizer)."""

    def __init__(self, *, store: Store, model: ModelSpec, sizer: PromptSizer, base_url: str | None) -> None:
        self.store = store
        self.model = model
        self.sizer = sizer
        self.base_url = base_url  # where learned windows are kept: one server's window says nothing of another's

    def refit(self, state: RunState, call: CallSpec, server_prompt: int, window: int, max_tokens: int) -> int | None:
        """``max_tokens`` for the same prompt when the server's count of it leaves room for the length asked."""
        # One token short of the window: an answer cut at exactly the window reads as a silent cut (window.py).
        room = min(window, state.window.tokens) - server_prompt - 1
        needed = max(MIN_OUTPUT_TOKENS, math.ceil(length.asked_tokens(state, call)))
        return room if needed <= room < max_tokens else None

    def replay(self, state: RunState, call: CallSpec, key: str, recorded: Recorded, local: int, max_tokens: int) -> Overflow:
        """A recorded overflow, learnt from exactly as when it happened (later levels are shaped the same)."""
        if recorded.limit is not None:  # a refusal or a silent cut (a prediction taught nothing)
            calibration.learn_overflow(
                state, limit=recorded.limit, requested=recorded.requested, local_prompt=local, max_tokens=max_tokens
            )
            self.cap(state, recorded.limit)
        if recorded.pieces == 1 and recorded.requested:
            window = recorded.limit or state.window.tokens
            prompt = recorded.requested - max_tokens
            refit = self.refit(state, call, prompt, window, max_tokens)
            if refit is not None:
                return Overflow(1, max_tokens=refit, prompt_tokens=prompt)
        return Overflow(max(2, recorded.pieces))

    def predicted(
        self, state: RunState, call: CallSpec, key: str, estimate: int, local: int, max_tokens: int
    ) -> Overflow:
        """An overflow foreseen by the live calibration (``estimate``: the server's likely count of the prompt);
        timing-dependent, so recorded: reruns do the same."""
        # ``estimate`` already allows for the scatter of per-prompt ratios: no further safety margin.
        refit = self.refit(state, call, estimate, state.window.tokens, max_tokens)
        n = 1 if refit is not None else self.pieces(state, call, local, max_tokens)
        requested = estimate + max_tokens if refit is not None else None
        self.store.overflow_put(key, model=self.model.name, limit=None, requested=requested, pieces=n)
        log.debug("level %d call %d: predicted over the context; %d pieces", call.level, call.index, n)
        return Overflow(n, max_tokens=refit, prompt_tokens=estimate if refit is not None else None)

    def received(
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
        """Learn from a refusal or a silent cut, cap the window, record how the call goes on."""
        calibration.learn_overflow(state, limit=limit, requested=requested, local_prompt=local, max_tokens=max_tokens)
        if limit:
            self.cap(state, limit)
        refit = prompt = None
        if limit and requested:
            prompt = requested - max_tokens
            refit = self.refit(state, call, prompt, limit, max_tokens)
        n = 1 if refit is not None else self.pieces(state, call, local, max_tokens)
        self.store.overflow_put(key, model=self.model.name, limit=limit, requested=requested, pieces=n)
        log.info(
            "level %d call %d: %s over the context (window %s, requested %s); %s",
            call.level,
            call.index,
            how,
            limit,
            requested,
            f"sent again with max_tokens {refit}" if refit is not None else f"{n} pieces",
        )
        return Overflow(n, sent=True, max_tokens=refit, prompt_tokens=prompt if refit is not None else None)

    def cap(self, state: RunState, limit: int) -> None:
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

    def pieces(self, state: RunState, call: CallSpec, local: int, max_tokens: int) -> int:
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
