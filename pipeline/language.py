"""Languages: the one table (code, English name, script, length unit), detection, and length units.

Detection: Chinese, Japanese and Korean by their scripts (fast, and exact on mixed technical text); every other
language by py3langid (a naive-Bayes model shipped inside its wheel: no download, ~1.5 s to load once, a few
ms per 20 kB), restricted to the languages of the table so rare look-alikes (Ligurian for "naïve café") are
not chosen. Lengths are words for spaced scripts and characters for Chinese, Japanese, Korean and Thai.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from pipeline.errors import ConfigError
from pipeline.lengths import measure
from pipeline.scripts import CJK_LANGUAGES, HAN, script_counts
from pipeline.tokens import TokenCounter

UNDETERMINED = "und"


@dataclass(frozen=True, slots=True)
class Language:
    """One language: ISO 639-1 code, English name (prompts say "in French"), script, length unit."""

    code: str
    name: str
    script: str
    unit: str = "words"  # "words" | "chars"


def _table(rows: str) -> dict[str, Language]:
    table: dict[str, Language] = {}
    for row in rows.strip().splitlines():
        code, name, script, *unit = (part.strip() for part in row.split("|"))
        table[code] = Language(code, name, script, unit[0] if unit else "words")
    return table


LANGUAGES: dict[str, Language] = _table(
    """
    en | English | latin
    zh | Chinese | han | chars
    ja | Japanese | japanese | chars
    ko | Korean | hangul | chars
    es | Spanish | latin
    fr | French | latin
    de | German | latin
    it | Italian | latin
    pt | Portuguese | latin
    nl | Dutch | latin
    sv | Swedish | latin
    da | Danish | latin
    no | Norwegian | latin
    fi | Finnish | latin
    is | Icelandic | latin
    pl | Polish | latin
    cs | Czech | latin
    sk | Slovak | latin
    sl | Slovenian | latin
    hr | Croatian | latin
    bs | Bosnian | latin
    hu | Hungarian | latin
    ro | Romanian | latin
    et | Estonian | latin
    lv | Latvian | latin
    lt | Lithuanian | latin
    tr | Turkish | latin
    az | Azerbaijani | latin
    ca | Catalan | latin
    eu | Basque | latin
    gl | Galician | latin
    ga | Irish | latin
    cy | Welsh | latin
    la | Latin | latin
    eo | Esperanto | latin
    af | Afrikaans | latin
    sw | Swahili | latin
    id | Indonesian | latin
    ms | Malay | latin
    tl | Tagalog | latin
    vi | Vietnamese | latin
    ru | Russian | cyrillic
    uk | Ukrainian | cyrillic
    be | Belarusian | cyrillic
    bg | Bulgarian | cyrillic
    sr | Serbian | cyrillic
    mk | Macedonian | cyrillic
    kk | Kazakh | cyrillic
    el | Greek | greek
    ar | Arabic | arabic
    fa | Persian | arabic
    ur | Urdu | arabic
    he | Hebrew | hebrew
    hi | Hindi | devanagari
    mr | Marathi | devanagari
    ne | Nepali | devanagari
    bn | Bengali | bengali
    ta | Tamil | tamil
    th | Thai | thai | chars
    """
)
_ALIASES = {lang.name.lower(): code for code, lang in LANGUAGES.items()} | {
    "中文": "zh", "汉语": "zh", "cn": "zh", "日本語": "ja", "한국어": "ko", "jp": "ja", "kr": "ko",
    "nb": "no", "nn": "no", "français": "fr", "deutsch": "de", "español": "es", "русский": "ru",
}  # fmt: skip

# Units per LOCAL (cl100k) token when the document gives no sample in the output language, by script, and
# the range a measured ratio is clamped to. English prose: ~0.72 words/token; hanzi ~0.7/token; cl100k
# spends more tokens per word on other scripts (Cyrillic ~3, Greek/Devanagari 4-6).
_DEFAULT_PER_TOKEN = {"latin": 0.6, "cyrillic": 0.35, "greek": 0.25, "arabic": 0.3, "hebrew": 0.3,
                      "devanagari": 0.2, "bengali": 0.2, "tamil": 0.15, "han": 0.7, "japanese": 0.7,
                      "hangul": 0.6, "thai": 0.5}  # fmt: skip
_ENGLISH_PER_TOKEN = 0.72
_BOUNDS = {"words": (0.08, 0.8), "chars": (0.2, 1.5)}

_SAMPLE_CHARS = 60_000
_SAMPLE_SLICES = 4
# Share of letters that must be Han/kana or Hangul for zh/ja or ko: Chinese technical text mixes in Latin.
_CJK_SHARE = 0.3
_KANA_SHARE = 0.1
_MIN_LETTERS = 12
_MIN_CONFIDENCE = 0.5
# English is told without the model when a tenth of its words are these (other languages score under 5%).
_LATIN_WORD = re.compile(r"[a-z]+")
_ENGLISH_WORDS = frozenset(
    ("the", "of", "and", "to", "in", "is", "was", "that", "it", "he", "she", "for", "with", "his", "her",
     "be", "at", "by", "you", "had", "not", "but", "are", "this", "which", "have", "from", "they", "we",
     "were", "would", "been", "their", "what", "there")
)  # fmt: skip
_ENGLISH_WORD_SHARE = 0.15
_LATIN_SHARE = 0.9


def language(code: str) -> Language | None:
    """The table's entry for ``code`` (None for unknown codes)."""
    return LANGUAGES.get(code)


def resolve_language(setting: str, document_language: str | None) -> str:
    """The output language code: the setting, or the document's language when the setting is "auto"."""
    value = (setting or "auto").strip().lower()
    if value == "auto":
        value = (document_language or "en").strip().lower() or "en"
        if value == UNDETERMINED:
            value = "en"
    value = _ALIASES.get(value, value)
    return value.split("-")[0].split("_")[0]


def check_language(setting: str, *, where: str = "--language") -> str:
    """``setting`` if it names a language of the table ("auto", "fr", "pt-BR", "French", "中文"); else ConfigError."""
    value = (setting or "").strip()
    if value.lower() == "auto" or resolve_language(value, None) in LANGUAGES:
        return value
    raise ConfigError(
        f"Unknown {where} '{setting}': use auto, a language code (fr, de, ja, pt-BR) or its English name (French)."
    )


def language_name(code: str) -> str:
    """An English name for a language code, for prompts ("French")."""
    entry = LANGUAGES.get(code)
    return entry.name if entry else code


def counts_characters(code: str) -> bool:
    """Whether lengths in this language are counted in characters (Chinese, Japanese, Korean, Thai)."""
    entry = LANGUAGES.get(code)
    return entry is not None and entry.unit == "chars"


def is_cjk(code: str) -> bool:
    """Whether ``code`` is Chinese, Japanese or Korean."""
    return code in CJK_LANGUAGES


def detect_language(text: str) -> str:
    """The ISO 639-1 code of ``text``'s language, or "und" when there is too little text to tell."""
    sample = _sample(text)
    counts = script_counts(sample)
    han, kana, hangul = counts["han"], counts["kana"], counts["hangul"]
    letters = sum(counts.values())
    if letters < _MIN_LETTERS:
        return UNDETERMINED
    if hangul / letters >= _CJK_SHARE:
        return "ko"
    if (han + kana) / letters >= _CJK_SHARE:
        return "ja" if kana > _KANA_SHARE * (han + kana) else "zh"
    if counts["latin"] / letters >= _LATIN_SHARE and _english_share(sample) >= _ENGLISH_WORD_SHARE:
        return "en"  # the common case, without loading the model (~1.4 s)
    code, confidence = detect_with_confidence(sample)
    return code if confidence >= _MIN_CONFIDENCE else UNDETERMINED


def _english_share(sample: str) -> float:
    words = _LATIN_WORD.findall(sample.lower())
    return sum(word in _ENGLISH_WORDS for word in words) / len(words) if words else 0.0


def detect_with_confidence(text: str) -> tuple[str, float]:
    """py3langid's best language of the table for ``text`` and its probability (0..1)."""
    code, probability = _identifier().classify(text)
    return _ALIASES.get(code, code), float(probability)


@cache
def _identifier() -> Any:
    """py3langid's model, loaded once per process and limited to the table's languages."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    known = set(identifier.nb_classes)
    identifier.set_languages([code for code in LANGUAGES if code in known])
    return identifier


def _sample(text: str) -> str:
    """The whole text, or evenly spaced slices of a long one (enough to decide, fast on 2 MB books)."""
    if len(text) <= _SAMPLE_CHARS:
        return text
    size = _SAMPLE_CHARS // _SAMPLE_SLICES
    step = (len(text) - size) // (_SAMPLE_SLICES - 1)
    return "\n".join(text[i * step : i * step + size] for i in range(_SAMPLE_SLICES))


# A transcript turn's label: "Project Manager: ", "PhD A: ", "说话人1：", "王经理：" (at most four capitalised words
# or eight CJK/word characters before the colon).
# Parliamentary records add who the speaker is: "Right Hon. Justin Trudeau (Prime Minister): ", "The Chair (Hon.
# Anthony Rota (Nipissing, Lib.)): " (one nested parenthesis, at most 100 characters).
_ROLE = r"(?: \((?:[^()\n]|\([^()\n]*\)){1,100}\))?"
SPEAKER_LABEL = re.compile(
    rf"^\s*(?:[A-Z][\w.'-]*(?: [A-Z\d][\w.'-]*){{0,3}}{_ROLE}|[{HAN}\w]{{1,8}})\s*(?:[:：]\s|：)"
)
_TRANSCRIPT_SHARE = 0.6


def transcript_lines(lines: list[str], *, share: float = _TRANSCRIPT_SHARE) -> bool:
    """Lines of a transcript: most open with a speaker label, and the speakers come back (a form's fields,
    "AGENCY:", "ACTION:", "DATES:", each appear once)."""
    # "Right Hon. Justin Trudeau (Prime Minister)" and "Right Hon. Justin Trudeau" are one speaker.
    found = (SPEAKER_LABEL.match(line) for line in lines)
    labels = [m.group(0).split(" (", 1)[0].strip(" :：") for m in found if m is not None]
    return len(labels) >= 3 and len(labels) >= share * len(lines) and len(set(labels)) <= 0.75 * len(labels)


def paragraph_turns(paragraph: str) -> list[str]:
    """A transcript's paragraph as its turns (one per line), so no sentence runs across two speakers; any other
    paragraph (hard-wrapped prose included) as itself."""
    lines = [line for line in paragraph.splitlines() if line.strip()]
    if len(lines) >= 3 and sum(bool(SPEAKER_LABEL.match(line)) for line in lines) >= _TRANSCRIPT_SHARE * len(lines):
        return lines
    return [paragraph]


def count_units(text: str, code: str) -> int:
    """Length in the unit prompts use for ``code``: characters or words, as ``--length`` counts them."""
    return measure(text, "chars" if counts_characters(code) else "words")


@dataclass(frozen=True, slots=True)
class LengthUnit:
    """How a token budget is stated in a prompt: words or characters, and how many per token."""

    code: str
    per_token: float  # units per local token, measured on the document

    def units(self, tokens: float) -> int:
        """A token budget expressed in words/characters (rounded down, at least 10)."""
        return max(10, int(tokens * self.per_token))


def length_unit(code: str, sample: str, counter: TokenCounter, *, calibration: float = 1.0) -> LengthUnit:
    """Words (or characters) per provider token for ``code``, measured on ``sample`` with ``counter``.

    ``sample`` should be text in language ``code`` (pass "" otherwise: a typical ratio is used). The ratio is
    divided by ``calibration`` because budgets are provider tokens (local count x calibration).
    """
    entry = LANGUAGES.get(code)
    unit = "chars" if counts_characters(code) else "words"
    typical = _ENGLISH_PER_TOKEN if code == "en" else _DEFAULT_PER_TOKEN.get(entry.script if entry else "", 0.6)
    tokens = counter.count(sample) if sample else 0
    units = count_units(sample, code) if sample else 0
    measured = units / tokens if tokens >= 200 and units else typical
    low, high = _BOUNDS[unit]
    per_token = min(high, max(low, measured)) / max(calibration, 1.0)
    return LengthUnit(code, round(per_token, 3))


def sample_text(text: str, *, size: int = 20_000) -> str:
    """A deterministic sample of ``text`` (three slices) for measuring its units per token."""
    if len(text) <= size:
        return text
    third = size // 3
    mid = len(text) // 2
    return text[:third] + text[mid - third // 2 : mid + third // 2] + text[-third:]
