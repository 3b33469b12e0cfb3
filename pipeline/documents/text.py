"""Decoding text files honestly: BOMs, UTF-16/32 without a BOM, almost-UTF-8, and legacy code pages.

Valid UTF-8 is UTF-8. A file that is UTF-8 but for a few bad bytes stays UTF-8 (the bad bytes replaced, a warning
says how many and where) instead of being re-guessed as a code page that turns every "’" into "‚Äô". Anything
else is a legacy encoding: charset_normalizer proposes readings, and each is checked for plausibility (how
messy the characters are, and whether the language detected in it is one the code page is made for: Spanish in
cp1250 is not). A guess that is not clearly ahead is refused with a message naming ``--encoding``.
"""

from __future__ import annotations

import codecs
import contextlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import charset_normalizer
from charset_normalizer.md import mess_ratio

from pipeline.errors import ConfigError, DocumentEncodingError
from pipeline.language import detect_language, detect_with_confidence

_CHINESE_CODECS = ("gb18030", "big5", "cp950")
# Share of a decoding's non-ASCII letters that must be frequent Chinese characters to accept it.
_MIN_CHINESE_SCORE = 0.6
_SCORE_SAMPLE_CHARS = 50_000
_SAMPLE_BYTES = 1 << 20  # legacy candidates are compared on the first MiB (each is checked on the whole file)
_CHECK_SAMPLE_CHARS = 20_000
# At most this share of the non-ASCII bytes may be invalid for a file to count as damaged UTF-8. Legacy CJK
# text forms valid UTF-8 pairs by chance, but far fewer than this.
_MAX_BAD_SHARE = 0.2
_HIGH_BYTES = bytes(range(0x80, 0x100))
_UTF8_WINDOW = 4096
_SHOWN_POSITIONS = 3
# UTF-16 without a BOM: text that is mostly ASCII has a NUL in every other byte.
_NUL_SAMPLE_BYTES = 4096
_NUL_SHARE = 0.1
_STRAY_NUL_SHARE = 0.05
# A legacy reading is accepted when its plausibility is at least this, and this far ahead of any reading that
# gives a different text.
_MIN_CONFIDENCE = 0.55
_MIN_MARGIN = 0.15
_CANDIDATES = 8
# Prior of the n-th reading charset_normalizer proposes (the first 1.0, then _RANKED_PRIOR - n * _RANK_STEP),
# and of readings it did not propose. Readings within _SAME_TEXT_SHARE of each other count as the same text.
_RANKED_PRIOR = 0.85
_RANK_STEP = 0.05
_ADDED_PRIOR = 0.8
_SAME_TEXT_SHARE = 0.002

_WESTERN = frozenset(["en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "no", "fi", "is", "ca", "eu", "gl", "ga", "cy", "la", "af", "sw", "id", "ms", "tl", "eo", "et"])
_CENTRAL = frozenset(["pl", "cs", "sk", "sl", "hr", "bs", "hu", "ro", "de"])
_CYRILLIC = frozenset(["ru", "uk", "be", "bg", "sr", "mk", "kk"])
_HOME_LANGUAGES: dict[str, frozenset[str]] = {
    **dict.fromkeys(("cp1252", "iso8859-1", "iso8859-15", "cp850", "mac-roman", "cp437"), _WESTERN),
    **dict.fromkeys(("cp1250", "iso8859-2", "cp852"), _CENTRAL),
    **dict.fromkeys(("cp1251", "koi8-r", "koi8-u", "cp866", "iso8859-5", "mac-cyrillic", "cp855"), _CYRILLIC),
    **dict.fromkeys(("cp1253", "iso8859-7", "mac-greek"), frozenset({"el"})),
    **dict.fromkeys(("cp1254", "iso8859-9"), frozenset({"tr", "az"}) | _WESTERN),
    **dict.fromkeys(("cp1255", "iso8859-8"), frozenset({"he"})),
    **dict.fromkeys(("cp1256", "iso8859-6"), frozenset({"ar", "fa", "ur"})),
    **dict.fromkeys(("cp1257", "iso8859-4", "iso8859-13"), frozenset({"lt", "lv", "et"})),
    **dict.fromkeys(("cp874", "tis-620", "iso8859-11"), frozenset({"th"})),
    **dict.fromkeys(("gb18030", "gb2312", "gbk", "big5", "cp950", "big5hkscs", "hz"), frozenset({"zh"})),
    **dict.fromkeys(
        ("shift_jis", "cp932", "euc_jp", "euc_jis_2004", "shift_jis_2004", "euc_jisx0213", "iso2022_jp"),
        frozenset({"ja"}),
    ),
    **dict.fromkeys(("euc_kr", "cp949", "johab", "iso2022_kr"), frozenset({"ko"})),
}


@dataclass(frozen=True, slots=True)
class DecodedText:
    """A file's text, the encoding it was read with, and what the reader should be told about it."""

    text: str
    encoding: str
    warnings: tuple[str, ...] = ()


def check_encoding(name: str) -> str:
    """The codec's canonical name for ``--encoding``; ConfigError for a name Python does not know."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ConfigError(
            f"Unknown --encoding '{name}'; use a name Python knows, e.g. utf-8, cp1252, gb18030, shift_jis."
        ) from None


def decode_text(data: bytes, *, path: Path, encoding: str | None = None) -> DecodedText:
    """Decode a text file's bytes (``encoding`` forces a codec).

    Raises:
        DocumentEncodingError: binary data, bytes that are not the forced encoding, or no confident guess.
    """
    if encoding:
        codec = check_encoding(encoding)
        try:
            return DecodedText(_without_bom(data.decode(codec)), codec)
        except UnicodeDecodeError as exc:
            raise DocumentEncodingError(
                f"{path} is not valid {codec} (byte {exc.start}, line {_line(data, exc.start)}); "
                "check the --encoding name."
            ) from exc
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            if codec == "utf-8":
                return _utf8(data[len(bom) :], path, with_bom=True)
            return _strict(data[len(bom) :], codec, path, f"starts with a {codec} byte-order mark but")
    wide = _wide_without_bom(data)
    if wide is not None:
        return _strict(data, wide, path, f"looks like {wide} text (no byte-order mark) but")
    return _utf8(data, path, with_bom=False)


def _utf8(data: bytes, path: Path, *, with_bom: bool) -> DecodedText:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if "\x00" not in text:
            return DecodedText(text, "utf-8")
        # Valid UTF-8 with NULs: UTF-16 whose characters all have bytes under 0x80 (Cyrillic: 1C 04 ...).
        return _wide_cjk(data, path) or DecodedText(text, "utf-8")
    non_ascii = len(data) - len(data.translate(None, _HIGH_BYTES))
    bad = _invalid_utf8(data, limit=int(_MAX_BAD_SHARE * non_ascii) + 1)
    if bad and len(bad) <= _MAX_BAD_SHARE * non_ascii and len(bad) < non_ascii:
        where = ", ".join(f"line {_line(data, pos)} (byte {pos})" for pos in bad[:_SHOWN_POSITIONS])
        more = f" and {len(bad) - _SHOWN_POSITIONS} more" if len(bad) > _SHOWN_POSITIONS else ""
        warning = (
            f"{path.name}: {len(bad)} byte(s) are not valid UTF-8, at {where}{more}; read as UTF-8 with each "
            "replaced by \ufffd"
        )
        return DecodedText(data.decode("utf-8", errors="replace"), "utf-8", (warning,))
    if with_bom:
        raise DocumentEncodingError(
            f"{path} starts with a UTF-8 byte-order mark but is not UTF-8 (byte {bad[0] + 3 if bad else 0}); "
            "re-save it as UTF-8 or pass --encoding."
        )
    if b"\x00" in data:
        wide = _wide_cjk(data, path)
        if wide is not None:
            return wide
        raise DocumentEncodingError(
            f"{path} looks like a binary file, not text. Convert it to UTF-8 text (or PDF/EPUB) first."
        )
    return _legacy(data, path)


def _invalid_utf8(data: bytes, *, limit: int) -> list[int]:
    """Offsets of the bytes that are not valid UTF-8 (stops once there are more than ``limit``)."""
    bad: list[int] = []
    view = memoryview(data)
    pos = 0
    # Small windows: each UnicodeDecodeError keeps a copy of the bytes it was given.
    while pos < len(data) and len(bad) <= limit:
        window = view[pos : pos + _UTF8_WINDOW]
        final = pos + _UTF8_WINDOW >= len(data)
        try:
            _, consumed = codecs.utf_8_decode(window, "strict", final)
        except UnicodeDecodeError as exc:
            bad.extend(range(pos + exc.start, pos + exc.end))
            pos += exc.end
            continue
        pos += consumed if consumed else len(window)
    return bad


def _legacy(data: bytes, path: Path) -> DecodedText:
    """The most plausible legacy reading, or DocumentEncodingError naming --encoding when none is clear."""
    # codec -> (text, prior): charset_normalizer's order (its mess and letter-frequency coherence) is the prior.
    readings: dict[str, tuple[str, float]] = {}
    for rank, match in enumerate(list(charset_normalizer.from_bytes(data))[:_CANDIDATES]):
        codec = _canonical(match.encoding)
        if codec and codec not in readings and not codec.startswith("utf"):
            with contextlib.suppress(UnicodeDecodeError, LookupError):
                readings[codec] = (_sample(data, codec), 1.0 if rank == 0 else _RANKED_PRIOR - _RANK_STEP * rank)
    chinese = _best_chinese(data)
    if chinese is not None and chinese[0] not in readings:
        readings[chinese[0]] = (chinese[1], _ADDED_PRIOR)
    for codec in ("cp1252", "iso8859-1"):  # always in the running: charset_normalizer skips them on short files
        if codec not in readings:
            with contextlib.suppress(UnicodeDecodeError):
                readings[codec] = (_sample(data, codec), _ADDED_PRIOR)
    scored = sorted(
        (
            (score * prior, language, order, codec, text)
            for order, (codec, (text, prior)) in enumerate(readings.items())
            for score, language in (_plausibility(codec, text),)
        ),
        key=lambda item: (-item[0], item[2]),
    )
    if not scored:
        raise DocumentEncodingError(
            f"Could not tell the text encoding of {path}. Save the file as UTF-8, or pass --encoding NAME."
        )
    score, language, _, codec, text = scored[0]
    rival = next((item for item in scored[1:] if _differs(item[4], text)), None)
    if score < _MIN_CONFIDENCE or (rival is not None and score - rival[0] < _MIN_MARGIN):
        also = f", or {rival[3]}" if rival is not None and rival[0] > 0 else ""
        raise DocumentEncodingError(
            f"Could not tell the text encoding of {path} for sure (best guess {codec}{also}, confidence "
            f"{score:.2f}); pass --encoding NAME (e.g. --encoding {codec}) or save it as UTF-8."
        )
    return DecodedText(
        data.decode(codec), codec, (f"{path.name}: not UTF-8; read as {codec} ({language}, confidence {score:.2f})",)
    )


def _sample(data: bytes, codec: str) -> str:
    """The first _SAMPLE_BYTES of ``data`` as ``codec`` (raising UnicodeDecodeError if any of the file is not
    ``codec``), without holding a full decoded copy per candidate of a large file."""
    decoder = codecs.getincrementaldecoder(codec)()
    head = decoder.decode(data[:_SAMPLE_BYTES], final=len(data) <= _SAMPLE_BYTES)
    for start in range(_SAMPLE_BYTES, len(data), _SAMPLE_BYTES):
        decoder.decode(data[start : start + _SAMPLE_BYTES], final=start + _SAMPLE_BYTES >= len(data))
    return head


def _differs(a: str, b: str) -> bool:
    """Whether two readings give materially different text (gb2312 and gb18030 differ in one dot only)."""
    if abs(len(a) - len(b)) > _SAME_TEXT_SHARE * max(len(a), len(b)):
        return True
    sample = min(len(a), len(b), _CHECK_SAMPLE_CHARS)
    return sum(x != y for x, y in zip(a[:sample], b[:sample], strict=True)) > _SAME_TEXT_SHARE * sample

def _plausibility(codec: str, text: str) -> tuple[float, str]:
    """How believable a reading is (0..1), and the language found in it."""
    sample = text[:_CHECK_SAMPLE_CHARS]
    language = detect_language(sample)
    if language in ("zh", "ja", "ko"):
        confidence = 1.0
    elif language == "und":
        confidence = 0.0
    else:
        confidence = detect_with_confidence(sample)[1]
    home = _HOME_LANGUAGES.get(codec)
    fit = 0.5 if home is None else float(language in home)
    score = fit * confidence * (1.0 - min(1.0, mess_ratio(sample, 1.0)))
    if home is not None and "zh" in home:
        score *= _chinese_score(text[:_SCORE_SAMPLE_CHARS])
    return round(score, 4), language


def _canonical(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _wide_without_bom(data: bytes) -> str | None:
    """UTF-16/32 LE/BE told by where the NUL bytes of mostly-ASCII text fall."""
    sample = data[: _NUL_SAMPLE_BYTES - _NUL_SAMPLE_BYTES % 4]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    quarter = len(sample) // 4
    nul = [sample[i::4].count(0) / quarter for i in range(4)]
    if min(nul[1], nul[2], nul[3]) >= 1 - _STRAY_NUL_SHARE and nul[0] < _NUL_SHARE:
        return "utf-32-le"
    if min(nul[0], nul[1], nul[2]) >= 1 - _STRAY_NUL_SHARE and nul[3] < _NUL_SHARE:
        return "utf-32-be"
    even = (nul[0] + nul[2]) / 2
    odd = (nul[1] + nul[3]) / 2
    if odd >= _NUL_SHARE and even <= _STRAY_NUL_SHARE:
        return "utf-16-le"
    if even >= _NUL_SHARE and odd <= _STRAY_NUL_SHARE:
        return "utf-16-be"
    return None


def _wide_cjk(data: bytes, path: Path) -> DecodedText | None:
    """UTF-16 without a BOM and without a clear NUL pattern (mostly CJK or Cyrillic text): accepted when it
    decodes cleanly into printable text in a detected language."""
    if len(data) % 2:
        return None
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        sample = text[:_CHECK_SAMPLE_CHARS]
        printable = sum(ch.isprintable() or ch in "\n\r\t" for ch in sample)
        if printable >= 0.98 * len(sample) and detect_language(sample) != "und":
            return DecodedText(text, codec, (f"{path.name}: read as {codec} (it has no byte-order mark)",))
    return None


def _strict(data: bytes, encoding: str, path: Path, what: str) -> DecodedText:
    try:
        return DecodedText(_without_bom(data.decode(encoding)), encoding)
    except UnicodeDecodeError as exc:
        raise DocumentEncodingError(
            f"{path} {what} is not valid {encoding} (byte {exc.start}). Re-save it as UTF-8 or pass --encoding."
        ) from exc


def _without_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def _line(data: bytes, position: int) -> int:
    return data.count(b"\n", 0, position) + 1


def _best_chinese(data: bytes) -> tuple[str, str] | None:
    """The GB18030 or Big5 reading whose characters are the more frequent ones, if either is convincing.

    Big5 bytes often also decode as GB18030 (into kana, Greek and rare characters), so a clean decode is
    not enough: the right codec yields mostly common characters.
    """
    best: tuple[float, str, str] | None = None
    for encoding in _CHINESE_CODECS:
        try:
            decoded = _sample(data, encoding)
        except UnicodeDecodeError:
            continue
        score = _chinese_score(decoded[:_SCORE_SAMPLE_CHARS])
        if best is None or score > best[0]:
            best = (score, encoding, decoded)
    if best is None or best[0] < _MIN_CHINESE_SCORE:
        return None
    return best[1], best[2]


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
