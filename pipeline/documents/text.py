"""Decoding text files: UTF-8 (with or without BOM), UTF-16 with BOM, GB18030 vs Big5, then a detector."""

from __future__ import annotations

import codecs
import contextlib
from functools import cache
from pathlib import Path

import charset_normalizer

from pipeline.errors import DocumentEncodingError

_CHINESE_CODECS = ("gb18030", "big5", "cp950")
# Share of a decoding's non-ASCII letters that must be frequent Chinese characters to accept it.
_MIN_CHINESE_SCORE = 0.6
_SCORE_SAMPLE_CHARS = 50_000


def decode_text(data: bytes, *, path: Path) -> str:
    """Decode a text file's bytes.

    Raises:
        DocumentEncodingError: binary data, or bytes no known encoding reads as text.
    """
    if data.startswith(codecs.BOM_UTF8):
        return _strict(data[len(codecs.BOM_UTF8) :], "utf-8", path)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _strict(data, "utf-16", path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        raise DocumentEncodingError(
            f"{path} looks like a binary file, not text. Convert it to UTF-8 text (or PDF/EPUB) first."
        )
    chinese = _best_chinese(data)
    if chinese is not None:
        return chinese
    guess = charset_normalizer.from_bytes(data).best()
    if guess is None or guess.encoding is None:
        raise DocumentEncodingError(
            f"Could not tell the text encoding of {path}. Save the file as UTF-8 and try again."
        )
    return str(guess)


def _strict(data: bytes, encoding: str, path: Path) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DocumentEncodingError(
            f"{path} starts with a {encoding} byte-order mark but is not valid {encoding} "
            f"(byte {exc.start}). Re-save it as UTF-8."
        ) from exc


def _best_chinese(data: bytes) -> str | None:
    """The GB18030 or Big5 reading whose characters are the more frequent ones, if either is convincing.

    Big5 bytes often also decode as GB18030 (into kana, Greek and rare characters), so a clean decode is
    not enough: the right codec yields mostly common characters.
    """
    best: tuple[float, str] | None = None
    for encoding in _CHINESE_CODECS:
        try:
            decoded = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        score = _chinese_score(decoded[:_SCORE_SAMPLE_CHARS])
        if best is None or score > best[0]:
            best = (score, decoded)
    if best is None or best[0] < _MIN_CHINESE_SCORE:
        return None
    return best[1]


def _chinese_score(text: str) -> float:
    """Share of non-ASCII, non-punctuation characters that are frequent Chinese characters."""
    common = _frequent_hanzi()
    considered = 0
    hits = 0
    for ch in text:
        if ch < "\x80" or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef":
            continue
        considered += 1
        hits += ch in common
    return hits / considered if considered else 0.0


@cache
def _frequent_hanzi() -> frozenset[str]:
    """GB2312 level-1 (the 3,755 most used simplified) plus Big5 level-1 (5,401 most used traditional)."""
    chars: set[str] = set()
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            _add(chars, bytes((lead, trail)), "gb2312")
    for lead in range(0xA4, 0xC7):
        for trail in (*range(0x40, 0x7F), *range(0xA1, 0xFF)):
            _add(chars, bytes((lead, trail)), "big5")
    return frozenset(ch for ch in chars if "\u4e00" <= ch <= "\u9fff")


def _add(chars: set[str], raw: bytes, encoding: str) -> None:
    with contextlib.suppress(UnicodeDecodeError):  # unassigned code points in the range
        chars.add(raw.decode(encoding))
