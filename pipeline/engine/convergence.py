"""When the tree is done: one summary near the target remains, or condensing it again stopped shortening it."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

from pipeline.engine.state import RunState
from pipeline.lengths import UNIT_TOLERANCE, counts, landing_error, measure
from pipeline.lengths import head as head_of
from pipeline.outputs import Node
from pipeline.sentences import sentence_spans
from pipeline.tokens import TokenCounter

log = logging.getLogger("tome.engine")

ELLIPSIS = "…"  # marks a summary held to its length inside a sentence

CUT_GAIN = 0.03  # a summary cut inside a sentence must land this much nearer than whole sentences
DONE_TOLERANCE = 1.25  # one summary at most this times the target ends the run


def check_done(state: RunState, level: int, nodes: list[Node], counter: TokenCounter | None = None) -> None:
    """Set ``state.done`` when one summary near the target remains (or condensing stopped shortening it).

    With ``counter``, a length asked in words or characters is held: see ``_hold_length``.
    """
    total_before = sum(n.tokens for n in state.levels[-2]) if level > 0 else None
    total_after = sum(n.tokens for n in nodes)
    shrank = total_before is None or total_after < total_before
    if not shrank:
        log.warning(
            "%s: level %d did not shrink the text (%d -> %d tokens)",
            state.document.path.name,
            level,
            total_before,
            total_after,
        )
    if len(nodes) != 1 or (level == 0 and len(state.chunks) != 1):
        return
    # In the units its length was asked in (the calibration this level ran with).
    asked = math.ceil(nodes[0].tokens * state.level_calibration[level])
    state.done = asked <= state.settings.target_tokens * DONE_TOLERANCE
    if state.settings.target_unit != "tokens":
        # Asked in words or characters: measured in them (its token count says little about its words).
        # Over by more than UNIT_TOLERANCE: condense it once more, asking for the length exactly.
        size = measure(nodes[0].text, state.settings.target_unit)
        state.done = size <= state.settings.target_units * UNIT_TOLERANCE
        if counter is not None:
            _hold_length(state, level, nodes, size, counter, shrank=shrank)
    if not state.done and not shrank:
        # Condensing one summary did not shorten it (the model cannot go shorter, e.g. it keeps every
        # marker or title): asking again would repeat the same call, so stop here.
        log.warning(
            "%s: the final summary has %d tokens, over the %d-token target; condensing it again did not "
            "shorten it, so it is kept",
            state.document.path.name,
            nodes[0].tokens,
            state.settings.target_tokens,
        )
        state.done = True


def _hold_length(
    state: RunState, level: int, nodes: list[Node], size: int, counter: TokenCounter, *, shrank: bool
) -> None:
    """A model that will not keep to a length in words or characters is held to it by whole sentences.

    Condensed once (or its level did not shorten the text, so condensing would not either) and still over by
    more than UNIT_TOLERANCE: the head of its sentences nearest the length is kept. Condensed to less than the length allows while the summary before was over: that one's head is kept
    instead (the condensed one is dropped). Either only when the head lands within the tolerance.
    """
    asked = state.settings.target_units
    unit = state.settings.target_unit
    before = state.levels[-2] if len(state.levels) >= 2 and level > 0 else []
    condensed = len(before) == 1  # this level condensed the one summary of the level before
    held = False
    if size > asked * UNIT_TOLERANCE and (condensed or not shrank):
        kept = _head_near(nodes[0].text, unit, asked)
        if kept is not None:
            nodes[0] = _with_text(nodes[0], kept, counter)
            held = True
    elif (
        condensed
        and size < asked * (2 - UNIT_TOLERANCE)
        and measure(before[0].text, unit) > asked * UNIT_TOLERANCE
    ):
        kept = _head_near(before[0].text, unit, asked)
        if kept is not None:
            state.levels.pop()
            before[0] = _with_text(before[0], kept, counter)
            held = True
    elif size <= asked * UNIT_TOLERANCE and landing_error(counts(nodes[0].text), unit, asked) >= 1:
        # Near the length by tome's count, but one reading over by more than the tolerance (its readings spread
        # apart): asking again would not narrow them; the head of its sentences nearest every reading is kept.
        kept = _head_near(nodes[0].text, unit, asked)
        if kept is not None and landing_error(counts(kept), unit, asked) < 1:
            nodes[0] = _with_text(nodes[0], kept, counter)
            held = True
    if held:
        state.done = True
        log.info("%s: final summary held to %d %s by whole sentences", state.document.path.name, asked, unit)


def _head_near(text: str, unit: str, asked: int) -> str | None:
    """The head of ``text``'s sentences whose readings are nearest ``asked`` (pipeline.lengths.landing_error),
    when every reading is within the tolerance or none over it; when no sentence ends there, its words up to
    the length and an ellipsis; None when even that falls short."""
    best: tuple[float, str] | None = None
    for _, end in sentence_spans(text):
        head = text[:end].strip()
        if measure(head, unit) > asked * UNIT_TOLERANCE:
            break
        found = counts(head)
        error = landing_error(found, unit, asked)
        if found.readings(unit)[1] >= asked * (2 - UNIT_TOLERANCE) and (best is None or error < best[0]):
            best = (error, head)
    if best is not None and best[0] <= UNIT_TOLERANCE - 1:
        return best[1]
    amount, spread = asked - 1, False
    cut = head_of(text, unit, amount).rstrip(" ,;:，；：、")
    for _ in range(6):  # readings spread apart: cut where the highest is within the tolerance
        high = counts(cut + ELLIPSIS).readings(unit)[1]
        if high <= asked * UNIT_TOLERANCE or amount <= 1:
            break
        size = min(amount, measure(cut, unit))
        spread, amount = True, max(1, min(size - 1, int(size * asked * UNIT_TOLERANCE / high)))
        cut = head_of(text, unit, amount).rstrip(" ,;:，；：、")
    if measure(cut, unit) >= asked * (2 - UNIT_TOLERANCE) or (spread and cut):
        cut += ELLIPSIS
        # Whole sentences read better: a cut only when they put a reading over, or land well farther.
        if best is None or landing_error(counts(cut), unit, asked) < min(best[0] - CUT_GAIN, 1):
            return cut
    return best[1] if best is not None else None


def _with_text(node: Node, text: str, counter: TokenCounter) -> Node:
    return replace(node, text=text, tokens=counter.count(text))
