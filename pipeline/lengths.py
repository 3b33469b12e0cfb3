"""Summary lengths in the units users think in: tokens, words ("300w") or characters ("500字", "500c").

Words: what a word processor or ``wc -w`` counts (whitespace-separated runs holding a letter or digit;
"moth-eaten" and "don't" are one), each CJK character counting as one (so a Chinese "word" count is its
character count). Characters: letters, digits and CJK characters; spaces and punctuation do not count.
Token lengths go to the engine as they are; word and character lengths are stated in the final prompt as
they were asked and converted to tokens only for planning, by the document's own units per token.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pipeline.errors import ConfigError

UNITS = ("tokens", "words", "chars")
_SPEC = re.compile(
    r"^\s*(\d+)\s*(t|tok|tokens?|w|words?|c|chars?|characters?|字|个字)?\s*$",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_WORD = re.compile(r"\S*\w\S*", re.UNICODE)
_CHAR = re.compile(r"[^\W_]", re.UNICODE)
MIN_WORDS = 10  # a shorter summary says nothing; below this a length is refused
UNIT_TOLERANCE = 1.1  # a final summary asked in words or characters may exceed the length by this factor
ESTIMATE_HEADROOM = 0.75  # word and character lengths are planned with this much room (see engine.sizing)
# Units per local (cl100k) token when the document gives no sample: English ~0.72 words and ~3.3 letters
# per token; Chinese ~0.7 characters per token.
DEFAULT_PER_TOKEN = {"words": 0.72, "chars": 0.7}
_DEFAULTS = {("words", False): 0.72, ("chars", False): 3.3, ("words", True): 0.7, ("chars", True): 0.7}


@dataclass(frozen=True, slots=True)
class Length:
    """A requested length: an amount and its unit ("tokens", "words" or "chars")."""

    amount: int
    unit: str = "tokens"

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"


def parse_length(value: str | int) -> Length | None:
    """``Length`` of "300w", "300 words", "500字", "500c", "800", "800 tokens"; None if it is none of these."""
    if isinstance(value, int):
        return Length(value, "tokens")
    match = _SPEC.match(str(value))
    if not match:
        return None
    amount, suffix = int(match.group(1)), (match.group(2) or "t").lower()
    if suffix.startswith("t"):
        return Length(amount, "tokens")
    unit = "words" if suffix.startswith("w") else "chars"
    if amount < MIN_WORDS:
        raise ConfigError(f"Invalid length {value}: a summary needs at least {MIN_WORDS} {unit}.")
    return Length(amount, unit)


def measure(text: str, unit: str) -> int:
    """Length of ``text`` in words or characters (see the module docstring)."""
    if unit == "chars":
        return len(_CHAR.findall(text))
    if unit == "words":
        cjk = len(_CJK.findall(text))
        return cjk + len(_WORD.findall(_CJK.sub(" ", text)))
    raise ValueError(f"measure() counts words or chars, not {unit}")


def estimate_tokens(length: Length, *, per_token: float) -> int:
    """Tokens a length needs at ``per_token`` units per token."""
    if length.unit == "tokens":
        return length.amount
    return max(20, math.ceil(length.amount / per_token))


def units_per_token(unit: str, sample: str, tokens: int, *, cjk: bool) -> float:
    """Words or characters per local token measured on ``sample`` (``tokens`` long), else a typical ratio."""
    if sample and tokens >= 200:
        found = measure(sample, unit)
        if found:
            return found / tokens
    return _DEFAULTS[(unit, cjk)]
