"""Reference points every score is shown beside: the lead and a classic TextRank, both length-matched.

Both take a length in words or characters, counted as ``--length`` counts them (pipeline.lengths), the same
length tome is asked for, so a system's advantage over them is not a matter of length.
"""

from __future__ import annotations

import math
import re

from pipeline.evaluation.rouge import RougeTokenizer
from pipeline.language import detect_language, paragraph_turns
from pipeline.lengths import head, measure
from pipeline.scripts import HAN, KANA
from pipeline.sentence_graph import pagerank, shared_features
from pipeline.sentences import split_sentences

_UNIT = re.compile(f"[{HAN}{KANA}]|[A-Za-z0-9]+")
_CJK_CHAR = re.compile(f"[{HAN}{KANA}]")
_TOLERANCE = 1e-6
_MAX_ITERATIONS = 100
# Function words carry no topic: TextRank (Mihalcea & Tarau, 2004) links sentences by shared content words.
_STOPWORDS_TEXT = (
    "a an and are as at be but by for from had has have he her him his i in is it its me my not of on or our "
    "she so that the their them then there they this to was we were what when which who will with you your "
    "been would could do did no if all one said into out up than too very can just about over also"
)
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split()) | frozenset("的了是在和也就都而及与着或之于把被这那他她它我你们个有不人说")


def cut_to_units(text: str, units: int, unit: str = "words") -> str:
    """The head of ``text`` holding ``units`` words or characters, cut right after the last one."""
    return head(text, unit, units)


def lead(text: str, units: int, *, unit: str = "words") -> str:
    """The lead baseline: the document's first ``units`` words (or characters)."""
    return " ".join(cut_to_units(text, units, unit).split()) if not _is_cjk_text(text) else cut_to_units(text, units, unit)


def _is_cjk_text(text: str) -> bool:
    """Chinese or Japanese: written without spaces, so sentences join without one."""
    return detect_language(text) in ("zh", "ja")


def sentences_of(text: str) -> list[str]:
    """Sentences of ``text``, paragraph by paragraph, with line breaks inside them joined."""
    cjk = _is_cjk_text(text)
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        for sentence in (s for turn in paragraph_turns(paragraph) for s in split_sentences(turn)):
            flat = re.sub(r"\s*\n\s*", "", sentence) if cjk else " ".join(sentence.split())
            if _UNIT.search(flat):
                out.append(flat.strip())
    return out


def _words(sentence: str, tokenizer: RougeTokenizer) -> set[str]:
    """Content words; Chinese has no spaces, so its "words" are character bigrams (one character is too little)."""
    tokens = tokenizer.tokenize(sentence)
    words = {t for t in tokens if t not in _STOPWORDS and not _CJK_CHAR.fullmatch(t)}
    for a, b in zip(tokens, tokens[1:], strict=False):
        if _CJK_CHAR.fullmatch(a) and _CJK_CHAR.fullmatch(b) and not (a in _STOPWORDS and b in _STOPWORDS):
            words.add(a + b)
    return words


def textrank_scores(sentences: list[str], tokenizer: RougeTokenizer) -> list[float]:
    """PageRank over the sentence graph weighted by |Si ∩ Sj| / (log|Si| + log|Sj|), as in TextRank."""
    words = [_words(s, tokenizer) for s in sentences]
    logs = [math.log(len(w)) if len(w) > 1 else 0.0 for w in words]
    edges = [
        {b: c / (logs[a] + logs[b]) for b, c in row.items() if logs[a] + logs[b] > 0}
        for a, row in enumerate(shared_features(words))
    ]
    return pagerank(edges, iterations=_MAX_ITERATIONS, tolerance=_TOLERANCE)


def textrank(text: str, units: int, tokenizer: RougeTokenizer | None = None, *, unit: str = "words") -> str:
    """The TextRank baseline: the highest-ranked sentences that fit in ``units``, in document order."""
    tokenizer = tokenizer or RougeTokenizer()
    sentences = sentences_of(text)
    if not sentences:
        return ""
    scores = textrank_scores(sentences, tokenizer)
    chosen: list[int] = []
    used = 0
    for i in sorted(range(len(sentences)), key=lambda i: (-scores[i], i)):
        size = measure(sentences[i], unit)
        if used + size <= units:
            chosen.append(i)
            used += size
    if not chosen:  # every sentence is longer than the budget: the best one, cut to length
        return cut_to_units(sentences[max(range(len(sentences)), key=lambda i: scores[i])], units, unit)
    sep = "" if _is_cjk_text(text) else " "
    return sep.join(sentences[i] for i in sorted(chosen))
