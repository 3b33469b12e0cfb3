"""Output length that fits the first time: ask for less than ``max_tokens``, by what the model really writes.

A call's planned output (``CallSpec.max_tokens``) is the room its answer gets. Calls below the final one keep
exactly that as ``max_tokens`` (what admission counts and the chunk budget reserved) and ask for
``max_tokens / headroom``. The final call asks for its whole planned length divided by the overshoot seen so
far (1 before any answer), and gets ``headroom`` times that as ``max_tokens`` where the context allows. Level 0
starts from a prior headroom (``prompt_room.PRIOR_HEADROOM``: models behind some gateways write up to twice what
they are asked for); every
answer reports how much it wrote for what it was asked, and the next level's headroom is the largest of those
ratios plus a margin. Like the calibration, both are fixed within a level (they shape prompts and cache keys),
so reruns build the same prompts.

An answer still cut off at ``max_tokens`` is recovered as its provider says (pipeline.engine.cutoff: trimmed to
its last complete sentence, or continued in partial mode); no second full-prompt call unless an answer has no
complete sentence at all.
"""

from __future__ import annotations

import math

from pipeline.engine.state import CallSpec, RunState
from pipeline.language import is_cjk
from pipeline.lengths import Length, dense_tokens
from pipeline.sentences import sentence_ends

LENGTH_HEADROOM = 1.0  # a final summary (the one tome eval sizes) is asked for its whole planned length
MARGIN = 1.15  # over the largest written/asked ratio seen
MIN_HEADROOM = 1.15
FINAL_HEADROOM = 2.0  # at most for the final call (one call: a rare cut is trimmed, not worth more admission)
MAX_HEADROOM = 3.0
UNIT_SHARE = 0.75  # of a final call's planned tokens, what its length in words or characters takes (sizing)
CUT_RATIO = 1.3  # a cut-off answer wanted at least this much more than it got
MIN_ASKED_TOKENS = 24  # asked lengths below this are too coarse to learn from
ONE_ANSWER_MARGIN = 1.4  # over the written/asked ratio of level 0's first answer, for the rest of level 0


def asked_tokens(state: RunState, call: CallSpec) -> float:
    """Provider tokens the prompt of ``call`` asks for."""
    if call.final:
        return call.max_tokens / state.overshoot
    return call.max_tokens / state.headroom


def max_tokens(state: RunState, call: CallSpec, room: int) -> int:
    """``max_tokens`` to send: the planned room, or for the final call headroom over what it asks for (within
    ``room``, what the context leaves after the prompt)."""
    if not call.final:
        return call.max_tokens
    headroom = min(state.headroom, FINAL_HEADROOM)
    if state.settings.target_unit != "tokens":
        # The length is stated in words or characters whatever the overshoot: room for all the model writes for
        # it (a cut answer kept to its last sentence can fall far short; one too long is held to the length).
        # Why a floor: the plan's tokens come from the document's average units per token and the headroom from
        # what chunk summaries wrote, but a short final summary is the document's densest part (an item's reading
        # of section numbers, its figures): 47 words of a council item that reads "sections 23.70 6.004 ..." took
        # ~90 tokens where the talk around it planned 70. So room for at least the length at the densest ordinary
        # ratio (pipeline.lengths.DENSE_PER_TOKEN: 2 tokens a word or a CJK character, 0.5 an English character).
        # Bound: only the final call's admission (prompt + max_tokens) grows, by at most the length x (2 - 1 /
        # (UNIT_SHARE x r)) tokens for a document of r words a token: 0.15 a word for prose (r 0.72), 0.67 for
        # talk (r 1.0), 45 and 200 tokens for 300 words beside a final prompt several times the length; never past
        # what the context leaves (``room``); nothing when the learned headroom already gives that much.
        asked = Length(state.settings.target_units, state.settings.target_unit)
        dense = math.ceil(dense_tokens(asked, cjk=is_cjk(state.language)) * state.calibration)
        return max(call.max_tokens, min(max(math.ceil(call.max_tokens * UNIT_SHARE * state.headroom), dense), room))
    return max(call.max_tokens, min(math.ceil(asked_tokens(state, call) * headroom), room))


def learn(state: RunState, call: CallSpec, completion_tokens: int, finish_reason: str | None) -> None:
    """Track the largest written/asked ratio of this run (a cut-off answer counts as more than it wrote)."""
    asked = asked_tokens(state, call)
    if asked < MIN_ASKED_TOKENS or completion_tokens <= 0:
        return
    ratio = completion_tokens / asked
    if finish_reason == "length":
        ratio *= CUT_RATIO
    state.observed_overshoot = max(state.observed_overshoot or 0.0, ratio)


def advance_level(state: RunState, level: int) -> None:
    """After ``level``: remember its headroom; the next level's comes from what the model wrote so far."""
    del state.level_headroom[level:]
    state.level_headroom.append((state.headroom, state.overshoot))
    if state.observed_overshoot is not None:
        state.overshoot = max(1.0, state.observed_overshoot)
        state.headroom = min(MAX_HEADROOM, max(MIN_HEADROOM, state.observed_overshoot * MARGIN))


def after_first_answer(state: RunState, output: int) -> int | None:
    """``max_tokens`` for the rest of level 0 by what its first answer wrote (None: keep ``output``).

    Level 0 starts from the prior headroom; once its first call has answered (alone, under a binding TPM limit),
    the other calls ask for the same length with headroom over what the model wrote (ONE_ANSWER_MARGIN: one
    answer is a small sample). Lower ``max_tokens`` costs the rate window less; it never asks for less.
    """
    if state.observed_overshoot is None:
        return None
    headroom = min(MAX_HEADROOM, max(MIN_HEADROOM, state.observed_overshoot * ONE_ANSWER_MARGIN))
    if headroom >= state.headroom:
        return None
    asked = output / state.headroom
    state.headroom = headroom
    return math.ceil(asked * headroom)


def replay_level(state: RunState, level: int) -> None:
    """Before re-running ``level``: the headroom it ran with, so its prompts are the same."""
    if level < len(state.level_headroom):
        state.headroom, state.overshoot = state.level_headroom[level]


def trim_to_sentence(text: str) -> str | None:
    """``text`` up to the end of its last complete sentence, or None when it has no complete sentence."""
    stripped = text.rstrip()
    ends = [end for end in sentence_ends(stripped) if end <= len(stripped)]
    if not ends:
        return None
    return stripped[: ends[-1]].rstrip() or None
