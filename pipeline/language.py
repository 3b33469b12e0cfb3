"""Output language and sentence boundaries (English and CJK) for prompts, context and extraction."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.tokens import TokenCounter

# A sentence ends at . ! ? (then closing quotes/brackets and whitespace) or at a CJK terminator (then closing
# quotes), or at a blank line. CJK terminators need no following space.
_SENTENCE_END = re.compile(
    r"""(?:[.!?]+["'”’)\]]*(?=\s|$))"""
    r"""|(?:[。！？!?；;…]+[」』”’）)】〕"']*)"""
    r"""|(?:\n[ \t]*\n)"""
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_WORD = re.compile(r"\w+", re.UNICODE)
_CJK_LANGS = {"zh", "ja", "ko"}
_NAMES = {
    "en": "English",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "ru": "Russian",
}
_ALIASES = {name.lower(): code for code, name in _NAMES.items()} | {"中文": "zh", "chinese": "zh", "cn": "zh"}


def resolve_language(setting: str, document_language: str | None) -> str:
    """The output language code: the setting, or the document's language when the setting is "auto"."""
    value = (setting or "auto").strip().lower()
    if value == "auto":
        value = (document_language or "en").strip().lower() or "en"
    value = _ALIASES.get(value, value)
    return value.split("-")[0].split("_")[0]


def language_name(code: str) -> str:
    """An English name for a language code, for prompts ("French")."""
    return _NAMES.get(code, code)


def is_cjk(code: str) -> bool:
    """Whether summaries in this language are measured in characters rather than words."""
    return code in _CJK_LANGS


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences of ``text`` as ``(start, end)`` spans that tile it exactly (whitespace stays with the left one)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        while end < len(text) and text[end] in " \t\r\n\u3000":
            end += 1
        if end > start:
            spans.append((start, end))
            start = end
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def split_sentences(text: str) -> list[str]:
    """Non-empty sentences of ``text`` (stripped)."""
    return [s for a, b in sentence_spans(text) if (s := text[a:b].strip())]


# A transcript turn's label: "Project Manager: ", "PhD A: ", "说话人1：", "王经理：" (at most four capitalised words
# or eight CJK/word characters before the colon).
SPEAKER_LABEL = re.compile(r"^\s*(?:[A-Z][\w.'-]*(?: [A-Z\d][\w.'-]*){0,3}|[\u4e00-\u9fff\w]{1,8})\s*(?:[:：]\s|：)")
_TRANSCRIPT_SHARE = 0.6


def paragraph_turns(paragraph: str) -> list[str]:
    """A transcript's paragraph as its turns (one per line), so no sentence runs across two speakers; any other
    paragraph (hard-wrapped prose included) as itself."""
    lines = [line for line in paragraph.splitlines() if line.strip()]
    if len(lines) >= 3 and sum(bool(SPEAKER_LABEL.match(line)) for line in lines) >= _TRANSCRIPT_SHARE * len(lines):
        return lines
    return [paragraph]


def count_units(text: str, code: str) -> int:
    """Length in the unit prompts use: CJK characters (plus words of other scripts) or words."""
    if is_cjk(code):
        cjk = len(_CJK.findall(text))
        return cjk + len(_WORD.findall(_CJK.sub(" ", text)))
    return len(_WORD.findall(text))


@dataclass(frozen=True, slots=True)
class LengthUnit:
    """How a token budget is stated in a prompt: words (English...) or characters (CJK)."""

    code: str
    per_token: float  # units per local token, measured on the document

    def units(self, tokens: float) -> int:
        """A token budget expressed in words/characters (rounded down, at least 10)."""
        return max(10, int(tokens * self.per_token))


# Units per LOCAL token when the document gives no sample in the output language (cl100k on typical prose:
# ~0.72 English words/token; ~0.7 hanzi/token). Moonshot's rule of thumb (1 token ~ 1.5-2 hanzi) does not hold
# for our local tokenizer, and every size the engine measures is local, so the ratio is measured, not assumed.
_DEFAULT_PER_TOKEN = {True: 0.7, False: 0.72}
_BOUNDS = {True: (0.4, 1.5), False: (0.5, 0.8)}


def length_unit(code: str, sample: str, counter: TokenCounter, *, calibration: float = 1.0) -> LengthUnit:
    """Words (or CJK characters) per provider token for ``code``, measured on ``sample`` with ``counter``.

    ``sample`` should be text in language ``code`` (pass "" otherwise: a typical ratio is used). The ratio is
    divided by ``calibration`` because budgets are provider tokens (local count x calibration).
    """
    cjk = is_cjk(code)
    tokens = counter.count(sample) if sample else 0
    units = count_units(sample, code) if sample else 0
    measured = units / tokens if tokens >= 200 and units else _DEFAULT_PER_TOKEN[cjk]
    low, high = _BOUNDS[cjk]
    per_token = min(high, max(low, measured)) / max(calibration, 1.0)
    return LengthUnit(code, round(per_token, 3))


def sample_text(text: str, *, size: int = 20_000) -> str:
    """A deterministic sample of ``text`` (three slices) for measuring its units per token."""
    if len(text) <= size:
        return text
    third = size // 3
    mid = len(text) // 2
    return text[:third] + text[mid - third // 2 : mid + third // 2] + text[-third:]
