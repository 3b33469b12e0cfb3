"""Room in one call's prompt (not the rate budget), derived from the model's context window, never a constant.

``chunk_room`` is the level-0 room: how many tokens of text one chunk may hold once the prompt overhead, the
answer, carried context and a safety margin are set aside, in provider and in local tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from pipeline.config import ModelSpec
from pipeline.errors import ConfigError
from pipeline.settings import RunSettings

# The smallest chunk budget (local tokens) that still leaves room for a sentence or two.
MIN_CHUNK_TOKENS = 32

# max_tokens over the length a level-0 prompt asks for: models behind some gateways write up to twice what they
# are asked for, and a cut-off answer is either trimmed or paid for twice (pipeline.engine.length learns the real
# ratio for later levels). Admission counts max_tokens; billing counts what is written.
PRIOR_HEADROOM = 3.0


@dataclass(frozen=True, kw_only=True)
class PromptRoom:
    """Room in one call's prompt (not the rate budget): what it may put there, from the model's context window.

    available = context − prompt overhead − max output − safety margin; carried context is
    ``context_share`` of that; the input (the text being summarised) gets the rest. Tokens here are the
    provider's (calibrated); ``max_local_tokens`` is the same input budget in local tokenizer counts.
    """

    context_tokens: int
    prompt_overhead_tokens: int
    max_output_tokens: int
    safety_margin_tokens: int
    context_share: float  # 0.0 when no context is carried
    calibration: float

    @property
    def available_tokens(self) -> int:
        """Prompt room for input text plus carried context."""
        return (
            self.context_tokens
            - self.prompt_overhead_tokens
            - self.max_output_tokens
            - self.safety_margin_tokens
        )

    @property
    def carried_context_tokens(self) -> int:
        """Room reserved for carried context: the length one same-level summary is asked for
        (``max_output_tokens / PRIOR_HEADROOM``), capped at the share.

        The carried text is the tail of an earlier summary of this level (or an equally bounded tail of the
        previous input), so reserving more would only shrink chunks and add calls and tokens.
        """
        if self.context_share <= 0:
            return 0
        summary = int(self.max_output_tokens / PRIOR_HEADROOM)
        return max(0, min(int(self.context_share * self.available_tokens), summary))

    @property
    def input_tokens(self) -> int:
        """Provider tokens of input text one call may take."""
        return self.available_tokens - self.carried_context_tokens

    @property
    def max_local_tokens(self) -> int:
        """The input budget in local tokens: the largest count whose calibrated value still fits."""
        limit = self.input_tokens
        local = int(limit / self.calibration) if self.calibration > 0 else limit
        while local > 0 and _calibrate(self.calibration, local) > limit:
            local -= 1
        return max(local, 0)

    def with_output(self, max_output_tokens: int) -> PromptRoom:
        """The same budget for a call that may write ``max_output_tokens``."""
        return replace(self, max_output_tokens=max_output_tokens)

    def as_dict(self) -> dict[str, Any]:
        """Every input and derived number, for ``tome plan --json``."""
        data = asdict(self)
        data.update(
            available_tokens=self.available_tokens,
            carried_context_tokens=self.carried_context_tokens,
            input_tokens=self.input_tokens,
            max_local_tokens=self.max_local_tokens,
        )
        return data


def _calibrate(calibration: float, local_tokens: int) -> int:
    """Same rounding as ``pipeline.tokens.calibrated`` (checked by a test), without needing a ModelSpec."""
    return -(-int(local_tokens * calibration * 1000) // 1000)


def chunk_room(model: ModelSpec, settings: RunSettings) -> PromptRoom:
    """The level-0 (chunk) prompt room for a model and run settings.

    Raises:
        ConfigError: the context window cannot hold the prompt overhead, output and a minimal chunk.
    """
    share = settings.context_share if settings.context_strategy != "none" else 0.0
    budget = PromptRoom(
        context_tokens=model.context_tokens,
        prompt_overhead_tokens=settings.prompt_overhead_tokens,
        max_output_tokens=settings.chunk_output_tokens,
        safety_margin_tokens=model.safety_margin_tokens,
        context_share=share,
        calibration=model.calibration,
    )
    if budget.max_local_tokens < MIN_CHUNK_TOKENS:
        raise ConfigError(
            f"Model '{model.name}' has a {model.context_tokens}-token context: after the prompt overhead "
            f"({settings.prompt_overhead_tokens}), output ({settings.chunk_output_tokens}) and safety margin "
            f"({model.safety_margin_tokens}) only {budget.input_tokens} tokens remain for text; "
            "choose a larger model or lower chunk_output_tokens."
        )
    return budget
