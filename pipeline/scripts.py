"""Unicode script ranges: the one place that says which characters are Han, kana, Hangul, CJK punctuation.

Chinese and Japanese are written without spaces, so their length is counted in characters and their
wrapped lines are joined without a space; these ranges decide both.
"""

from __future__ import annotations

import re

# Character-class bodies (for building regexes) for each script.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
KANA = "\u3040-\u30ff\u31f0-\u31ff"
HANGUL = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
CJK_PUNCTUATION = "\u3000-\u303f\uff00-\uffef"  # 。、「」 and full-width forms
# Languages written in these scripts (their documents get the model's CJK token calibration).
CJK_LANGUAGES = frozenset({"zh", "ja", "ko"})
# 。、「」, full-width forms, radicals, bopomofo, enclosed and compatibility CJK: written without spaces too.
CJK_SYMBOLS = "\u2e80-\u2fff\u3000-\u303f\u3100-\u312f\u3190-\u33ff\u4dc0-\u4dff\uff00-\uffef"
CJK_LETTERS = HAN + KANA + HANGUL
_NO_SPACE = re.compile(f"[{CJK_LETTERS}{CJK_SYMBOLS}]")
_FIRST_NO_SPACE = "\u1100"  # the lowest code point _NO_SPACE matches (Hangul Jamo)

CJK_LETTER = re.compile(f"[{CJK_LETTERS}]")
HAN_CHAR = re.compile(f"[{HAN}]")
KANA_CHAR = re.compile(f"[{KANA}]")
HANGUL_CHAR = re.compile(f"[{HANGUL}]")
# Letters of other scripts, for telling scripts apart in detection and plausibility checks.
SCRIPT_CHARS: dict[str, re.Pattern[str]] = {
    "latin": re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]"),
    "cyrillic": re.compile(r"[\u0400-\u04ff]"),
    "greek": re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]"),
    "arabic": re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]"),
    "hebrew": re.compile(r"[\u0590-\u05ff]"),
    "devanagari": re.compile(r"[\u0900-\u097f]"),
    "thai": re.compile(r"[\u0e00-\u0e7f]"),
    "han": HAN_CHAR,
    "kana": KANA_CHAR,
    "hangul": HANGUL_CHAR,
}


def is_cjk_char(ch: str) -> bool:
    """Han, kana, Hangul or CJK/full-width punctuation: no space is needed around it."""
    if ch < _FIRST_NO_SPACE:  # most text (Latin and the like) stops here, without a regex call
        return False
    return _NO_SPACE.match(ch) is not None


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds any Han, kana or Hangul letter."""
    return CJK_LETTER.search(text) is not None


def script_counts(text: str) -> dict[str, int]:
    """How many letters of each script ``text`` holds."""
    return {name: len(pattern.findall(text)) for name, pattern in SCRIPT_CHARS.items()}
