"""Summary lengths in the units users think in: tokens, words ("300w") or characters ("500字", "500c").

The one count of words and characters every part uses: ``--length`` checks, the offline backend's fill, the
test server's obedience, prompts' units per token and ``tome eval``'s length matching.

Words: what ``wc -w`` or a word processor counts, whitespace-separated runs holding a letter or digit
("moth-eaten", "don't", "U.S.", "2,000" and a URL are one word each; a lone dash is none), each CJK character
counting as one (so a Chinese "word" count is its character count).

Characters: each letter, digit or CJK character counts one, a space between two words of a spaced script one
(so an English count is close to what ``len()`` of a one-line text gives), and each punctuation mark or symbol
half. A Chinese reader may count 字 with punctuation (as a word processor's 字数 does) or the hanzi alone;
punctuation at half puts the length between the two, so both readings land within 10 % of it for text with up
to ~18 % punctuation (meetings ~8 %, modern prose 12-18 %); a classical novel (~22 %) lands at ~0.9 / ~1.08.

Token lengths go to the engine as they are; word and character lengths are stated in the final prompt as
they were asked and converted to tokens only for planning, by the document's own units per token.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.scripts import CJK_LETTERS, CJK_SYMBOLS

UNITS = ("tokens", "words", "chars")
_SPEC = re.compile(
    r"^\s*(\d+)\s*(t|tok|tokens?|w|words?|c|chars?|characters?|字|个字)?\s*$",
    re.IGNORECASE,
)
_CJK = re.compile(f"[{CJK_LETTERS}]")
_WORD = re.compile(r"\S*[^\W_]\S*")
_NOT_WORD_CHAR = re.compile(r"[^\w\s]|_")  # punctuation, symbols and combining marks (told apart below)
_NO_SPACE = f"{CJK_LETTERS}{CJK_SYMBOLS}"  # scripts written without spaces: a space beside them is no gap
_GAP = re.compile(f"(?<=[^\\s{_NO_SPACE}])\\s+(?=[^\\s{_NO_SPACE}])")
_SPACE = re.compile(r"\s")
MIN_WORDS = 10  # a shorter summary says nothing; below this a length is refused
UNIT_TOLERANCE = 1.1  # a final summary asked in words or characters may exceed the length by this factor
ESTIMATE_HEADROOM = 0.75  # word and character lengths are planned with this much room (see engine.sizing)
# Units per local (cl100k) token when the document gives no sample: English ~0.72 words and ~4 characters
# (letters and spaces) per token; Chinese ~0.7 characters per token.
DEFAULT_PER_TOKEN = {"words": 0.72, "chars": 0.7}
_DEFAULTS = {("words", False): 0.72, ("chars", False): 4.0, ("words", True): 0.7, ("chars", True): 0.7}


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
        marks = _NOT_WORD_CHAR.findall(text)
        punctuation = sum(1 for m in marks if unicodedata.category(m)[0] in "PS")
        visible = len(text) - len(_SPACE.findall(text))
        # Letters, digits and combining marks count one; punctuation half (rounded up); word gaps one.
        return visible - punctuation + (punctuation + 1) // 2 + len(_GAP.findall(text))
    if unit == "words":
        cjk = len(_CJK.findall(text))
        return cjk + len(_WORD.findall(_CJK.sub(" ", text) if cjk else text))
    raise ValueError(f"measure() counts words or chars, not {unit}")


def head(text: str, unit: str, amount: int) -> str:
    """The longest head of ``text`` at most ``amount`` words or characters long, not cut inside a word."""
    if amount <= 0:
        return ""
    if measure(text, unit) <= amount:
        return text.strip()
    # A word is rarely over 40 characters: look no further than needed (texts may be megabytes).
    size = min(len(text), 48 * amount + 64)
    while size < len(text) and measure(text[:size], unit) <= amount:
        size = min(len(text), 2 * size)
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid], unit) <= amount:
            lo = mid
        else:
            hi = mid - 1
    end = lo
    if unit == "words" and end and not text[end - 1].isspace():  # the last word kept whole ("don" = "don't")
        start = end
        while start and not text[start - 1].isspace() and not _CJK.match(text[start - 1]):
            start -= 1
        while end < len(text) and not text[end].isspace() and not _CJK.match(text[end]):
            end += 1
        if measure(text[:end], unit) > amount:  # it began with no letter ('"extinguishing'): one word too many
            end = start
    return text[:end].strip()


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
