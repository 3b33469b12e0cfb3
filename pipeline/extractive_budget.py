"""The offline backend's token budget: a model's cap, except where only the length the user stated binds.

A model needs ``max_tokens`` (it could write on forever); the engine plans every call below the final one by it
(the merge above packs what each answer was promised), so there the backend honours it as a model would. The
call that covers the whole document (a single call, or the final merge: pipeline.extractive_prompt) has nothing
planned on top of it, and when its length is stated in words or characters the engine's token figure is only
that length converted at the document's average ratio. The backend counts its own tokens and is never cut off:
its answer is sentences of its source, never longer than the source, so the source's tokens are its budget and
the stated length binds alone, whatever the density of the sentences that fill it (a council item's reading of
section numbers, a budget's accounts: 0.2-0.5 words a token against prose's 0.7-1.0 took 47 words to 27).
"""

from __future__ import annotations

from pipeline.tokens import TokenCounter

WHOLE = (0.0, 1.0)  # where_in_document of a call covering the whole document


def token_budget(
    max_tokens: int, *, unit: str | None, where: tuple[float, float] | None, source: str, counter: TokenCounter
) -> int:
    """``max_tokens`` for ``extract``: the request's, or for a whole-document call with a stated ``unit`` at
    least the source's own tokens (so the length in words or characters is what binds)."""
    if unit not in ("words", "chars") or where != WHOLE:
        return max_tokens
    return max(max_tokens, counter.count(source))
