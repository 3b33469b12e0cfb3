"""Prompts and their sizes: the messages a call sends, its local token count, and the room left in it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from pipeline.config import ModelSpec
from pipeline.documents.model import Document
from pipeline.engine import length
from pipeline.engine.state import CallSpec, RunState
from pipeline.language import is_cjk, resolve_language, sample_text
from pipeline.lengths import units_per_token
from pipeline.llm.types import Message
from pipeline.prompts import map_messages, merge_messages, strict_words
from pipeline.settings import RunSettings
from pipeline.tokens import TokenCounter

# Tokens planned for a length in words or characters: its size at the document's average units per token,
# with this headroom. Summary sentences are denser than the average (fewer fillers), and the length stated in
# the final prompt must be what binds, not max_tokens.
UNIT_HEADROOM = length.UNIT_SHARE
MIN_UNITS = 10  # no call is asked for fewer words or characters
CHUNK_SHARE_FLOOR = 1.5  # times its share of a length in words or characters, the least a chunk's summary asks
FEW_CHUNKS_SHARE = 10  # a document under this many times a length's tokens: its few chunk summaries must feed it
MIN_OUTPUT_TOKENS = 32  # no call is asked to write less
CONTEXT_WRAPPER_TOKENS = 60  # the <context> tags and the "background only" note
_MESSAGE_TOKENS, _REPLY_TOKENS = 4, 3  # chat framing around each message / the reply


class PromptSizer:
    """Builds a call's messages and measures them; holds only the run-independent parts (settings, model)."""

    def __init__(self, *, settings: RunSettings, model: ModelSpec, counter: TokenCounter) -> None:
        self.settings = settings
        self.model = model
        self.counter = counter

    def messages(self, state: RunState, call: CallSpec, *, strict: bool) -> tuple[Message, ...]:
        """The messages sent for ``call`` (``strict``: the stricter retry after a cut-off answer)."""
        # Budgets are provider tokens; the unit ratio is per local token. A retry's larger output room never
        # changes the length asked for: only ``strict`` does.
        words = state.unit.units(length.asked_tokens(state, call) / state.calibration)
        unit = "words"
        share = 1.0 if call.final else call.final_share
        if share and state.settings.target_unit != "tokens":
            # A length asked in words or characters is stated exactly as asked in the final call (in its
            # share of it in each half of a final call that had to be split).
            words = max(MIN_UNITS, round(state.settings.target_units * share))
            unit = state.settings.target_unit
        elif call.kind == "map" and state.settings.target_unit != "tokens":
            # A chunk's summary is at least its share of the length asked (by the text it covers), so a shallow
            # tree (a short report in two chunks) leaves the final call enough to write that length from.
            covered = call.length / max(1, len(state.document.text))
            floor = math.ceil(state.settings.target_units * covered * CHUNK_SHARE_FLOOR)
            words = max(words, min(floor, state.unit.units(call.max_tokens / state.calibration)))
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
                focus=self.settings.focus,
                unit=unit,
            )
        return merge_messages(
            list(call.parts),
            title=title,
            final=call.final,
            context=call.context,
            words=words,
            language=state.language,
            strict=strict,
            focus=self.settings.focus,
            unit=unit,
            cite=self.settings.cite,
        )

    def local_prompt(self, messages: Sequence[Message]) -> int:
        """Local tokens of a whole prompt, chat framing included."""
        return sum(self.counter.count(m.content) + _MESSAGE_TOKENS for m in messages) + _REPLY_TOKENS

    def context_room(self, state: RunState, call: CallSpec, *, window: int | None = None) -> int:
        """Local tokens of context ``call`` may carry: its share of the budget, within what its prompt leaves
        of ``window`` (default: the window the run was planned for, so prompts never depend on timing)."""
        if self.settings.context_strategy == "none":
            return 0
        planned = state.room.with_output(call.max_tokens).carried_context_tokens
        bare = self.local_prompt(self.messages(state, replace(call, context=""), strict=True))
        left = (
            (window or state.model.context_tokens)
            - self.model.safety_margin_tokens
            - call.max_tokens
            - math.ceil(bare * state.calibration)
            - CONTEXT_WRAPPER_TOKENS
        )
        return max(0, int(min(planned, left) / state.calibration))

    def send_max_tokens(self, state: RunState, call: CallSpec, messages: Sequence[Message]) -> int:
        """``max_tokens`` for ``call`` with these messages (see pipeline.engine.length), by the level's
        calibration so reruns send the same."""
        room = (
            state.model.context_tokens  # the planned window: a rerun sends the same
            - self.model.safety_margin_tokens
            - math.ceil(self.local_prompt(messages) * state.calibration)
        )
        return length.max_tokens(state, call, room)

    def retry_max_tokens(self, state: RunState, call: CallSpec, first: int, *, calibration: float) -> int:
        """Output room for a stricter retry: up to twice the first attempt's ``first``, as far as the context
        allows by the live ``calibration`` (the server's own count once answers reported it: never refused)."""
        messages = self.messages(state, call, strict=True)
        room = (
            state.window.tokens  # the real window, once a refusal or a silent cut showed it
            - self.model.safety_margin_tokens
            - math.ceil(self.local_prompt(messages) * calibration)
        )
        return min(2 * first, room)


def sized_settings(
    settings: RunSettings, document: Document, language: str, counter: TokenCounter, calibration: float
) -> RunSettings:
    """``settings`` with target_tokens measured for this document when the length is in words or characters.

    The final call asks for the length as given; every other size (the plan, lower levels' outputs, the final
    call's max_tokens) needs it in provider tokens, here by the document's own units per local token.
    """
    if settings.target_unit == "tokens":
        return settings
    same = resolve_language("auto", document.language) == language
    sample = sample_text(document.text) if same else ""
    per_token = units_per_token(
        settings.target_unit, sample, counter.count(sample) if sample else 0, cjk=is_cjk(language)
    )
    tokens = max(20, math.ceil(settings.target_units * calibration / (UNIT_HEADROOM * per_token)))
    # A long length of a document only a few times longer (1500w of a 6,600-word report: two chunks) needs
    # chunk summaries of half of it, or the final call gets less than it is asked to write (two 600-token
    # chunk summaries gave 937 of 1500 words). A longer document has chunks enough to feed it.
    whole = sample_text(document.text)
    size = counter.count(whole) * len(document.text) / max(1, len(whole)) * calibration
    if size < FEW_CHUNKS_SHARE * tokens:
        settings = replace(settings, chunk_output_tokens=max(settings.chunk_output_tokens, math.ceil(tokens / 2)))
    return replace(settings, target_tokens=tokens)
