"""Where each summary sentence comes from: sentences of the node's inputs, down to the document's text and pages.

Computed after the calls, so it works for any backend: every sentence of a node is aligned lexically with the
sentences of what the node summarised (its chunk at level 0, its input summaries above). Features are
Porter-stemmed content words, numbers and markers (⟦...⟧) for alphabetic text, character bigrams for CJK,
weighted by rarity among the candidate sentences; supports are picked greedily, each covering the most
not-yet-covered weight. Citations the model wrote itself ("[2]", "[1, 3]" naming ``<summary n=...>`` inputs)
are kept as supports too. Deterministic: same tree -> same links.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.chunking import Chunk
from pipeline.documents.model import Document
from pipeline.extractive import MARKER, _content_bigram, _stem
from pipeline.language import SPEAKER_LABEL
from pipeline.outputs import Node
from pipeline.scripts import CJK_LETTER
from pipeline.sentences import sentence_spans

MAX_SUPPORTS = 3  # supports per sentence from word overlap (markers and citations may add more)
MIN_GAIN = 0.15  # a further support must cover this share of the sentence's weight
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_CITATION = re.compile(r"\s*[\[［【]\s*(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\s*[\]］】]")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "him",
        "his",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "who",
        "will",
        "with",
        "you",
        "your",
        "said",
        "all",
        "been",
        "one",
        "would",
        "could",
        "into",
        "out",
        "up",
        "do",
        "did",
        "no",
        "if",
        "than",
        "too",
        "very",
        "can",
        "just",
        "about",
        "over",
        "also",
    ]
)


@dataclass(frozen=True, slots=True)
class Support:
    """One sentence a summary sentence draws on: in a node of the level below, or (level 0) in the document."""

    node: int | None  # index of the node in the level below; None: the source document (level 0)
    sentence: int  # index of the sentence in that node (level 0: in the chunk)
    span: tuple[int, int]  # character span in that node's text; level 0: in Document.text
    score: float  # share of the sentence's weighted words this support covers (0..1)
    pages: tuple[int, int] | None = None  # level 0 only
    # Level 0 only: Document.text, shared (not copied); the source passage is sliced from it when asked (``text``).
    source: str = field(default="", repr=False, compare=False)
    cited: bool = False  # the model cited this input itself

    @property
    def text(self) -> str:
        """Level 0: the source passage (``span`` of the document's text); "" above level 0."""
        return self.source[self.span[0] : self.span[1]] if self.node is None else ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "node": self.node,
            "sentence": self.sentence,
            "span": list(self.span),
            "score": round(self.score, 3),
        }
        if self.node is None:
            out["pages"] = list(self.pages) if self.pages else None
            out["text"] = self.text
        if self.cited:
            out["cited"] = True
        return out


@dataclass(frozen=True, slots=True)
class Source:
    """A span of Document.text and the pages it is on (None without pages)."""

    start: int
    end: int
    pages: tuple[int, int] | None

    def as_dict(self) -> dict[str, Any]:
        return {"span": [self.start, self.end], "pages": list(self.pages) if self.pages else None}


@dataclass(frozen=True, slots=True)
class SentenceLink:
    """A sentence of a node's text, what supports it, and the document spans it rests on in the end."""

    span: tuple[int, int]  # in the node's text
    supports: tuple[Support, ...]
    sources: tuple[Source, ...] = ()  # what it rests on in Document.text, merged, in order

    def as_dict(self) -> dict[str, Any]:
        return {
            "span": list(self.span),
            "supports": [s.as_dict() for s in self.supports],
            "sources": [s.as_dict() for s in self.sources],
        }


@dataclass(frozen=True, slots=True)
class _Unit:
    span: tuple[int, int]
    feats: frozenset[str]
    flat: str  # the text without whitespace


def node_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a node's or chunk's text (stripped), transcript turns split at their line breaks."""
    out: list[tuple[int, int]] = []
    for a, b in sentence_spans(text):
        start = a
        for m in re.finditer(r"\n", text[a:b]):
            at = a + m.end()
            if at < b and SPEAKER_LABEL.match(text[at:b]):
                out.append((start, at))
                start = at
        out.append((start, b))
    stripped = []
    for a, b in out:
        piece = text[a:b]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if b - trail > a + lead and re.search(r"\w", piece):
            stripped.append((a + lead, b - trail))
    return stripped


def _flat(text: str) -> str:
    return "".join(text.split())


def features(sentence: str) -> frozenset[str]:
    """What alignment compares: markers, numbers, stemmed content words and CJK character bigrams."""
    out: set[str] = set(MARKER.findall(sentence))
    rest = MARKER.sub(" ", sentence)
    chars = CJK_LETTER.findall(rest)
    out.update(a + b for a, b in zip(chars, chars[1:], strict=False) if _content_bigram(a, b))
    for word in _TOKEN.findall(CJK_LETTER.sub(" ", rest)):
        w = word.lower()
        if w.isdigit() or (len(w) > 1 and w not in _STOP):
            out.add(_stem(w))
    return frozenset(out)


def _align(
    sentence: str, units: Sequence[_Unit], index: dict[str, list[int]], weights: dict[str, float]
) -> list[tuple[int, float]]:
    """Greedy cover: (unit, share of the sentence's weight it adds), best first."""
    feats = features(sentence)
    total = sum(weights.get(f, 0.0) for f in feats)
    if not total:
        return []
    uncovered = {f for f in feats if f in weights}
    picked: list[tuple[int, float]] = []
    while uncovered:
        gains: dict[int, float] = {}
        for f in uncovered:
            w = weights[f]
            for u in index[f]:
                gains[u] = gains.get(u, 0.0) + w
        for u, _ in picked:
            gains.pop(u, None)
        if not gains:
            break
        # Ties go to the closer match: the passage that holds the sentence verbatim, then the one with fewest
        # words the sentence lacks (a repeated or reordered line, a quotation).
        top = max(gains.values())
        flat = _flat(sentence)
        best = min(
            (u for u, g in gains.items() if g >= top - 1e-9),
            key=lambda u: (flat not in units[u].flat, len(units[u].feats - feats), u),
        )
        gain = gains[best]
        marker = any(f.startswith("⟦") for f in units[best].feats & uncovered)
        if picked and not marker and (len(picked) >= MAX_SUPPORTS or gain < MIN_GAIN * total):
            break
        picked.append((best, gain / total))
        uncovered -= units[best].feats
    return picked


def _units(text: str, offset: int = 0) -> tuple[list[_Unit], dict[str, list[int]], dict[str, float]]:
    units = [
        _Unit((a + offset, b + offset), features(text[a:b]), _flat(text[a:b]))
        for a, b in node_sentences(text)
    ]
    index: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        for f in u.feats:
            index.setdefault(f, []).append(i)
    n = len(units)
    weights = {f: math.log(1 + n / len(members)) for f, members in index.items()}
    return units, index, weights


def _merge(spans: Sequence[tuple[int, int]], doc: Document) -> tuple[Source, ...]:
    """Overlapping or touching spans as one, in document order, with their pages."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return tuple(Source(a, b, doc.pages_for(a, b)) for a, b in out)


def link_level0(text: str, chunk_text: str, chunk_start: int, doc: Document) -> tuple[SentenceLink, ...]:
    """Links of a level-0 summary to the sentences of its chunk (spans in Document.text, with pages)."""
    units, index, weights = _units(chunk_text, chunk_start)
    links = []
    for a, b in node_sentences(text):
        supports = []
        for u, score in _align(text[a:b], units, index, weights):
            s, e = units[u].span
            supports.append(
                Support(
                    node=None,
                    sentence=u,
                    span=(s, e),
                    score=score,
                    pages=doc.pages_for(s, e),
                    source=doc.text,
                )
            )
        supports.sort(key=lambda x: x.span)
        links.append(SentenceLink((a, b), tuple(supports), _merge([x.span for x in supports], doc)))
    return tuple(links)


def link_merge(
    text: str, children: Sequence[tuple[int, str, Sequence[SentenceLink]]], doc: Document
) -> tuple[SentenceLink, ...]:
    """Links of a merged summary to the sentences of its inputs ``(node index, text, links)``, in order."""
    units: list[_Unit] = []
    owner: list[tuple[int, int, SentenceLink]] = []  # (child node, sentence index, its link)
    for node, child_text, child_links in children:
        for j, link in enumerate(child_links):
            a, b = link.span
            units.append(_Unit((a, b), features(child_text[a:b]), _flat(child_text[a:b])))
            owner.append((node, j, link))
    index: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        for f in u.feats:
            index.setdefault(f, []).append(i)
    weights = {f: math.log(1 + len(units) / len(m)) for f, m in index.items()}
    links = []
    for a, b in node_sentences(text):
        sentence = text[a:b]
        picked = dict(_align(sentence, units, index, weights))
        cited = set()
        for n in _citations(sentence):
            if 1 <= n <= len(children):
                node = children[n - 1][0]
                # The cited input's best-matching sentence (its first when nothing matches).
                mine = [i for i, o in enumerate(owner) if o[0] == node]
                if mine:
                    best = max(mine, key=lambda i: (_overlap(sentence, units[i], weights), -i))
                    cited.add(best)
                    picked.setdefault(best, 0.0)
        supports = []
        sources: list[tuple[int, int]] = []
        for at in sorted(picked):
            node, j, link = owner[at]
            supports.append(
                Support(node=node, sentence=j, span=units[at].span, score=picked[at], cited=at in cited)
            )
            sources.extend((x.start, x.end) for x in link.sources)
        links.append(SentenceLink((a, b), tuple(supports), _merge(sources, doc)))
    return tuple(links)


def _overlap(sentence: str, unit: _Unit, weights: dict[str, float]) -> float:
    return sum(weights.get(f, 0.0) for f in features(sentence) & unit.feats)


def _citations(sentence: str) -> list[int]:
    return [int(n) for m in _CITATION.finditer(sentence) for n in re.split(r"\s*[,，、]\s*", m.group(1))]


def link_tree(levels: Sequence[Sequence[Node]], chunks: Sequence[Chunk], doc: Document) -> list[list[Node]]:
    """The tree with every node's sentences linked to the level below (level 0: to its chunk's sentences)."""
    out: list[list[Node]] = []
    for depth, level in enumerate(levels):
        linked = []
        for node in level:
            if depth == 0:
                chunk = chunks[node.inputs[0]]
                links = link_level0(node.text, chunk.text, chunk.start, doc)
            else:
                below = out[depth - 1]
                links = link_merge(
                    node.text, [(i, below[i].text, below[i].sentences) for i in node.inputs], doc
                )
            linked.append(replace(node, sentences=links))
        out.append(linked)
    return out
