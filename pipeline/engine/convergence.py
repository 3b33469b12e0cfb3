"""When the tree is done: one summary near the target remains, or condensing it again stopped shortening it."""

from __future__ import annotations

import logging
import math

from pipeline.engine.state import RunState
from pipeline.lengths import UNIT_TOLERANCE, measure
from pipeline.outputs import Node

log = logging.getLogger("tome.engine")

DONE_TOLERANCE = 1.25  # one summary at most this times the target ends the run


def check_done(state: RunState, level: int, nodes: list[Node]) -> None:
    """Set ``state.done`` when one summary near the target remains (or condensing stopped shortening it)."""
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
