"""Where each summary sentence comes from: sentences of the node's inputs, down to the document's text and pages.

Computed after the calls, so it works for any backend: every sentence of a node is aligned lexically with the
sentences of what the node summarised (its chunk at level 0, its input summaries above). Features are
Porter-stemmed content words, numbers and markers (⟦...⟧) for alphabetic text, character bigrams for CJK,
weighted by rarity among the candidate sentences; supports are picked greedily, each covering the most
not-yet-covered weight. A sentence that joins several of its inputs' sentences verbatim (an extract of a heading, a
table of contents line, a reference: sentences without a full stop run together) is traced to each of them. Citations the model wrote itself ("[2]", "[1, 3]" naming ``<summary n=...>`` inputs)
are kept as supports too. Deterministic: same tree -> same links.
"""

from __future__ import annotations

import bisect
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
MIN_VERBATIM = (
    3  # letters and digits a sentence must share verbatim with an input sentence to be traced to it
)
TILED = (
    0.9  # share of a sentence's letters and digits its input sentences must hold verbatim to be its supports
)
_LETTERS = re.compile(r"[^\W_]+", re.UNICODE)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_CITATION = re.compile(r"\s*[\[［【]\s*(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\s*[\]］】]")
_STOP_WORDS = (
    "a an and are as at be but by for from had has have he her him his i in is it its me my not of on or "
    "our she so that the their them then there they this to was we were what when which who will with you "
    "your said all been one would could into out up do did no if than too very can just about over also"
)
_STOP = frozenset(_STOP_WORDS.split())


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
    section: str = ""  # level 0 only: the section(s) the passage is in (Document.section_title)

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
            out["section"] = self.section
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
    key: str = ""  # its letters and digits only, lower case (verbatim matches survive dropped punctuation)


def _key(text: str) -> str:
    return "".join(_LETTERS.findall(text)).lower()


def _unit(span: tuple[int, int], text: str) -> _Unit:
    return _Unit(span, features(text), _flat(text), _key(text))


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


def _verbatim(
    sentence: str, feats: frozenset[str], units: Sequence[_Unit], index: dict[str, list[int]]
) -> list[tuple[int, float]]:
    """The units a sentence is made of verbatim, when it joins two or more of them (in the sentence's order).

    An extract joins its sentences with a space, so those that end without a full stop (headings, contents
    lines, "et al.") read as one sentence of the summary; word overlap would name only the one that covers its
    words (a repeated name, a number), this names each piece. [] when no such tiling covers the sentence."""
    whole = _key(sentence)
    if not whole:
        return []
    groups: dict[str, list[int]] = {}  # the same words may be sentences at several places of the input
    for u in sorted({u for f in feats for u in index.get(f, ())}):
        key = units[u].key
        if len(key) >= MIN_VERBATIM and key in whole:
            groups.setdefault(key, []).append(u)
    if not groups or whole in groups:
        return []  # no piece, or one input sentence holds it all (the word cover finds it)
    taken = bytearray(len(whole))
    placed: list[tuple[int, int]] = []  # (offset in the sentence's key, unit)
    for key in sorted(groups, key=len, reverse=True):
        at = whole.find(key)
        while at >= 0:
            if not any(taken[at : at + len(key)]):
                taken[at : at + len(key)] = b"\x01" * len(key)
                if groups[
                    key
                ]:  # of repeated words, the copy nearest the pieces placed so far, in their order
                    u = min(groups[key], key=lambda v: _misplaced(at, units[v].span[0], placed, units))
                    groups[key].remove(u)
                    placed.append((at, u))
            at = whole.find(key, at + 1)
    if len(placed) < 2 or sum(taken) < TILED * len(whole):
        return []
    return [(u, len(units[u].key) / len(whole)) for _, u in sorted(placed)]


def _misplaced(
    at: int, start: int, placed: Sequence[tuple[int, int]], units: Sequence[_Unit]
) -> tuple[int, int]:
    """How badly a piece at ``at`` in the sentence and ``start`` in the input sits among those ``placed``: the
    pieces it would be out of order with (an extract keeps the input's order), then its distance to them."""
    out_of_order = sum((o < at) != (units[v].span[0] < start) for o, v in placed)
    return out_of_order, min((abs(units[v].span[0] - start) for _, v in placed), default=0)


def _align(
    sentence: str, units: Sequence[_Unit], index: dict[str, list[int]], weights: dict[str, float]
) -> list[tuple[int, float]]:
    """Greedy cover: (unit, share of the sentence's weight it adds), best first."""
    feats = features(sentence)
    tiled = _verbatim(sentence, feats, units, index)
    held = {f for u, _ in tiled for f in units[u].feats}
    if tiled and all(f in held for f in feats if f.startswith("⟦")):
        return tiled  # (a marker the pieces leave out is traced by the word cover, which follows markers)
    total = sum(weights.get(f, 0.0) for f in feats)
    if not total:
        return _loose(sentence, units)
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
    # Every marker the sentence carries reaches an input that holds it, however many (a summary may gather all
    # of its chunk's in one sentence), even past MAX_SUPPORTS.
    for f in sorted(uncovered):
        if f.startswith("⟦") and f in uncovered:
            holder = min(index[f], key=lambda u: (len(units[u].feats - feats), u))
            picked.append((holder, sum(weights[g] for g in units[holder].feats & uncovered) / total))
            uncovered -= units[holder].feats
    return picked


def _loose(sentence: str, units: Sequence[_Unit]) -> list[tuple[int, float]]:
    """The one input sentence that best holds a sentence with no content word in common with any ("In this",
    "“快了。”", a lone name or initial): its words and characters as they are, the rarer the weightier."""
    found = CJK_LETTER.findall(sentence) + [w.lower() for w in _TOKEN.findall(CJK_LETTER.sub(" ", sentence))]
    if not found or not units:
        return []
    lowered = [u.flat.lower() for u in units]
    weights = {}
    for piece in set(found):
        holders = sum(piece in text for text in lowered)
        if holders:
            weights[piece] = math.log(1 + len(units) / holders)
    if not weights:
        return []
    flat = _flat(sentence).lower()
    scores = [sum(w for piece, w in weights.items() if piece in text) for text in lowered]
    best = max(range(len(units)), key=lambda u: (scores[u], flat in lowered[u], -u))
    return [(best, scores[best] / sum(weights.values()))]


_ENDED = re.compile(r"[.!?…。！？；:：][\"'”’»)\]」』）】]*\Z")


def across_pages(
    text: str, spans: list[tuple[int, int]], offset: int, doc: Document
) -> list[tuple[int, int]]:
    """``spans`` (in ``text``, which starts at ``offset`` of Document.text) with a sentence a page break cut in two
    joined again: the piece before the break ends without a terminator and the next goes on in lower case (or
    Chinese/Japanese text goes on), as a PDF's text layer breaks a sentence at the foot of a page."""
    starts = [p.start for p in doc.pages]
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out:
            pa, pb = out[-1]
            before, after = text[pa:pb].rstrip(), text[a:b].lstrip()
            k = bisect.bisect_right(starts, pb + offset)  # the first page that starts after the piece before
            broken = k < len(starts) and starts[k] <= a + offset
            if broken and before and after and not _ENDED.search(before):
                lower = after[0].islower()
                cjk = CJK_LETTER.match(after[0]) is not None and CJK_LETTER.match(before[-1]) is not None
                if lower or cjk:
                    out[-1] = (pa, b)
                    continue
        out.append((a, b))
    return out


def _units(
    text: str, offset: int = 0, doc: Document | None = None
) -> tuple[list[_Unit], dict[str, list[int]], dict[str, float]]:
    spans = node_sentences(text)
    if doc is not None and doc.pages:
        spans = across_pages(text, spans, offset, doc)
    units = [_unit((a + offset, b + offset), text[a:b]) for a, b in spans]
    index: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        for f in u.feats:
            index.setdefault(f, []).append(i)
    n = len(units)
    weights = {f: math.log(1 + n / len(members)) for f, members in index.items()}
    return units, index, weights


def _merge(spans: Sequence[tuple[int, int]], doc: Document) -> tuple[Source, ...]:
    """Overlapping spans, or spans with only whitespace between them, as one, in document order, with their pages."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and (a <= out[-1][1] or doc.text[out[-1][1] : a].isspace()):
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return tuple(Source(a, b, doc.pages_for(a, b)) for a, b in out)


def link_level0(text: str, chunk_text: str, chunk_start: int, doc: Document) -> tuple[SentenceLink, ...]:
    """Links of a level-0 summary to the sentences of its chunk (spans in Document.text, with pages)."""
    units, index, weights = _units(chunk_text, chunk_start, doc)
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
                    section=doc.section_title(s, e),
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
            units.append(_unit((a, b), child_text[a:b]))
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
