"""Calibration learning: provider tokens per local token, learned from every answer's usage and rejection.

The live ratio (``RunState.observed_calibration``) moves as answers arrive; the ratio that shapes prompts
(``RunState.calibration``) changes only between levels, so prompts within a level do not depend on timing.
"""

from __future__ import annotations

import math

from pipeline.engine.state import RunState

# A learned ratio never goes below this (Chinese on Moonshot ~0.45; lower means bogus usage).
MIN_CALIBRATION = 0.3
MIN_LEARNING_PROMPT = 300  # local tokens; shorter prompts are dominated by framing and scatter too much
OVERFLOW_MARGIN = 1.02  # "prompt too long" gives only a lower bound (the window): learn a little above it


def calibrated(state: RunState, local_tokens: int) -> int:
    """Provider tokens of a text, by the calibration this level runs with (for packing and room)."""
    return math.ceil(local_tokens * state.calibration)


def live_calibration(state: RunState) -> float:
    """The best current estimate: the largest ratio reported so far, else the level's calibration."""
    return state.observed_calibration or state.calibration


def learn(state: RunState, server_prompt: int, local_prompt: int, *, billable: bool) -> None:
    """Track the largest provider/local prompt ratio the server reported (prompts of 300+ tokens)."""
    if billable and local_prompt >= MIN_LEARNING_PROMPT and server_prompt > 0:
        ratio = max(MIN_CALIBRATION, server_prompt / local_prompt)
        state.observed_calibration = max(state.observed_calibration or 0.0, ratio)


def learn_overflow(
    state: RunState, *, limit: int | None, requested: int | None, local_prompt: int, max_tokens: int
) -> None:
    """Raise the live calibration from a context-length rejection (a received or a cached one)."""
    margin = 1.0
    if requested:
        server_prompt = requested - max_tokens  # the server's own count of the prompt: exact
    elif limit:
        server_prompt, margin = limit, OVERFLOW_MARGIN  # "Input token length too long": over the context
    else:
        server_prompt = 0
    if local_prompt > 0 and server_prompt > 0:
        ratio = server_prompt / local_prompt * margin
        state.observed_calibration = max(state.observed_calibration or 0.0, ratio, state.calibration)


def advance_level(state: RunState, level: int) -> None:
    """After ``level`` finished: remember the calibration it ran with; the next level uses the learned one."""
    del state.level_calibration[level:]
    state.level_calibration.append(state.calibration)
    if state.observed_calibration is not None:
        state.calibration = state.observed_calibration


def replay_level(state: RunState, level: int) -> None:
    """Before re-running ``level`` (a task retry): use the calibration it ran with, so prompts are the same."""
    if level < len(state.level_calibration):
        state.calibration = state.level_calibration[level]
