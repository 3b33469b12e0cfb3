"""Language of a text from its script: CJK share decides "zh"; English function words decide "en"."""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_WORD = re.compile(r"[a-z]+")
_ENGLISH_WORDS = frozenset(
    ("the", "of", "and", "to", "a", "in", "is", "was", "that", "it", "he", "she", "for", "with", "as",
     "his", "her", "on", "be", "at", "by", "i", "you", "had", "not", "but", "are", "this", "which",
     "have", "from", "they", "we", "were", "or", "an")
)  # fmt: skip
_SAMPLE_CHARS = 200_000
_SAMPLE_SLICES = 4
# Share of letters that must be Han for "zh": Chinese technical text mixes in a lot of Latin.
_CJK_SHARE = 0.3
_ENGLISH_WORD_SHARE = 0.12


def detect_language(text: str) -> str:
    """ "zh", "ja", "ko", "en", or "und" (undetermined) for ``text``."""
    sample = _sample(text)
    han = len(_HAN.findall(sample))
    kana = len(_KANA.findall(sample))
    hangul = len(_HANGUL.findall(sample))
    latin = len(_LATIN.findall(sample))
    letters = han + kana + hangul + latin
    if letters == 0:
        return "und"
    if hangul / letters >= _CJK_SHARE:
        return "ko"
    if (han + kana) / letters >= _CJK_SHARE:
        return "ja" if kana > 0.1 * (han + kana) else "zh"
    words = _WORD.findall(sample.lower())
    if words and sum(word in _ENGLISH_WORDS for word in words) / len(words) >= _ENGLISH_WORD_SHARE:
        return "en"
    return "und"


def _sample(text: str) -> str:
    """The whole text, or evenly spaced slices of a long one (enough to decide, fast on 2 MB books)."""
    if len(text) <= _SAMPLE_CHARS:
        return text
    size = _SAMPLE_CHARS // _SAMPLE_SLICES
    step = (len(text) - size) // (_SAMPLE_SLICES - 1)
    return "\n".join(text[i * step : i * step + size] for i in range(_SAMPLE_SLICES))
