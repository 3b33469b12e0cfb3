"""Summary lengths in the units users think in: tokens, words ("300w") or characters ("500字", "500c").

The one count of words and characters every part uses: ``--length`` checks, the offline backend's fill, the
test server's obedience, prompts' units per token and ``tome eval``'s length matching.

Readers count the same text differently. Words: a word processor counts runs between spaces holding a letter
or digit ("don't", "U.S.", "2,000", a URL one each; a lone dash none), which is tome's count; ``wc -w`` and
``len(text.split())`` also count a lone "-" or " .". (A script's ``\\w+`` splits "don't", "2,000" and a URL into
pieces no reader calls words: on a report full of figures it reads 25 % more, so holding it within 10 % would
leave the words a reader counts 15 % short; it is not a reading tome lands.) Characters: Chinese or
Japanese as their hanzi/kana alone or as every non-space character (punctuation included); other scripts
without spaces or with them (``len()``); tome's count is the middle of the two, so a length of N lands both
readings as near N as the text allows. Every reading lands within 10 % whenever the lowest and highest differ
by less than ~22 % (Chinese with up to ~18 % punctuation and Latin letters; English prose's spaces are ~17 %).
A summary is then moved (pipeline.length_landing, and the trim of a model's over-long answer) until its
farthest reading is within the tolerance (else as near as it gets), never letting any reading exceed it by more
than 10 %: when the readings differ by more (dialogue-heavy Chinese, Chinese full of Latin terms or figures), the
lowest falls short instead.
"500c" and "500字" are the same length. Each CJK character is a word.

Token lengths go to the engine as they are; word and character lengths are stated in the final prompt as
they were asked and converted to tokens only for planning, by the document's own units per token; the final call
has room for the length even in the densest ordinary text (``DENSE_PER_TOKEN``: a summary's sentences can be far
denser than its document's average).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.scripts import CJK_LETTERS, CJK_SYMBOLS

UNITS = ("tokens", "words", "chars")
_SPEC = re.compile(
    r"^\s*(\d+)\s*(t|tok|tokens?|w|words?|c|chars?|characters?|字|个字)?\s*$",
    re.IGNORECASE,
)
_CJK = re.compile(f"[{CJK_LETTERS}]")
_WORD = re.compile(r"\S*[^\W_]\S*")  # a run between spaces holding a letter or digit
_CJK_TEXT = re.compile(f"[{CJK_LETTERS}{CJK_SYMBOLS}]")  # no word of a spaced script: CJK letters and 。、「」
_SPACES = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")
CJK_SHARE = 0.3  # text whose letters are this much CJK is read as CJK (its hanzi may be counted alone)
MIN_WORDS = 10  # a shorter summary says nothing; below this a length is refused
UNIT_TOLERANCE = 1.1  # a final summary asked in words or characters may exceed the length by this factor
ESTIMATE_HEADROOM = 0.75  # word and character lengths are planned with this much room (see engine.sizing)
# Units per local (cl100k) token when the document gives no sample: English ~0.72 words and ~4 characters
# (letters and spaces) per token; Chinese ~0.7 characters per token.
DEFAULT_PER_TOKEN = {"words": 0.72, "chars": 0.7}
_DEFAULTS = {("words", False): 0.72, ("chars", False): 3.7, ("words", True): 0.7, ("chars", True): 0.7}
# Units per local token of the densest text a summary is ordinarily made of: a clerk's reading of section numbers
# ("amending sections 23.70 6.004. 23.70 6.006 and 23.7 6.0 32") ~0.5 words and ~2.8 characters; rare hanzi
# (names of places, chemicals) ~0.53 characters; English prose 0.72-1.0 words, plain Chinese ~0.95. A final
# call's max_tokens leaves room for a stated length at this density (pipeline.engine.length). Denser still
# (accounts and figures: "Account 395-2421-59361-000 ... $45,502,525", ~0.22 words) a model's answer may be cut.
DENSE_PER_TOKEN = {("words", False): 0.5, ("chars", False): 2.0, ("words", True): 0.5, ("chars", True): 0.5}


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


@dataclass(frozen=True, slots=True)
class Counts:
    """The readings of a text: CJK letters, letters of any script, non-space characters, ``len()`` with runs of
    spaces as one, words holding a letter or digit, words between spaces (a CJK letter a word)."""

    cjk: int = 0
    letters: int = 0
    visible: int = 0
    spaced: int = 0
    words: int = 0
    split: int = 0

    def astuple(self) -> tuple[int, ...]:
        return (self.cjk, self.letters, self.visible, self.spaced, self.words, self.split)

    def readings(self, unit: str) -> tuple[int, int]:
        """(lowest, highest) count a reader may make in ``unit`` ("words" or "chars")."""
        if unit == "words":  # a word processor skips a lone "-"; wc -w counts it
            return self.words, self.split
        if unit == "chars":  # CJK text: its hanzi/kana alone .. every non-space; else without spaces .. len()
            if self.cjk and self.cjk >= CJK_SHARE * self.letters:
                return self.cjk, self.visible
            return self.visible, self.spaced
        raise ValueError(f"measure() counts words or chars, not {unit}")


def counts(text: str) -> Counts:
    """Every reading of ``text`` (see the module docstring)."""
    cjk = len(_CJK.findall(text))
    spaced = _SPACES.sub(" ", text.strip())
    rest = _CJK_TEXT.sub(" ", text) if cjk else text
    # Beside CJK text a lone mark ("——", "…") is no word to anyone: words between spaces need a letter there.
    split = len(_WORD.findall(rest)) if cjk else len(rest.split())
    return Counts(
        cjk, len(_LETTER.findall(text)), len(spaced) - spaced.count(" "), len(spaced),
        cjk + len(_WORD.findall(rest)), cjk + split,
    )  # fmt: skip


def measure(text: str, unit: str) -> int:
    """Length of ``text`` in words (as a word processor counts them) or characters (the middle of the lowest
    and the highest reading)."""
    found = counts(text)
    if unit == "words":
        return found.words
    low, high = found.readings(unit)
    return (low + high + 1) // 2


def landing_error(found: Counts, unit: str, asked: int, *, tolerance: float = UNIT_TOLERANCE - 1) -> float:
    """How far the farthest reading of a text is from ``asked`` (0.05 = 5 %); over 1 when one reading exceeds it
    by more than ``tolerance`` (then 1 + that reading's ratio, so a shorter text is nearer): a text that no
    reading puts over beats any that one does."""
    low, high = found.readings(unit)
    if high > asked * (1 + tolerance):
        return 1 + high / asked
    return max(abs(low / asked - 1), abs(high / asked - 1))


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


def dense_tokens(length: Length, *, cjk: bool) -> int:
    """Local tokens a length in words or characters takes in the densest ordinary text (``DENSE_PER_TOKEN``)."""
    if length.unit == "tokens":
        return length.amount
    return math.ceil(length.amount / DENSE_PER_TOKEN[(length.unit, cjk)])


def units_per_token(unit: str, sample: str, tokens: int, *, cjk: bool) -> float:
    """Words or characters per local token measured on ``sample`` (``tokens`` long), else a typical ratio."""
    if sample and tokens >= 200:
        found = measure(sample, unit)
        if found:
            return found / tokens
    return _DEFAULTS[(unit, cjk)]


def shortfall_note(document: str, summary: str, unit: str, asked: int) -> str:
    """Why a summary is well under a length asked in words or characters, the document being shorter; else ""."""
    if unit not in ("words", "chars"):
        return ""
    found = measure(summary, unit)
    if found >= asked * (2 - UNIT_TOLERANCE):
        return ""
    name = "words" if unit == "words" else "characters"
    whole = measure(document[: 64 * asked + 64], unit)  # a long document's head is enough to tell
    if whole > asked:  # a length the document's readings spread across is said in bench/results/lengths.md
        return ""
    return f"The document itself is {whole} {name}, under the {asked} asked: this summary is {found}, not padded."
