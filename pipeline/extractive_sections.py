"""Chapter summaries for a run the offline backend answered in one call (a book under its planning window).

The final summary stays the one-pass selection over the whole document; each chapter then gets its own extract,
holding the final summary's sentences that lie in it, so the tree reads chapters -> final (level 0 -> 1) and
every final sentence is traced through the chapter it came from. No call is made: extraction is local and
deterministic, so a rerun (or `tome report RUN`) rebuilds the same tree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from pipeline.chunking import Chunk
from pipeline.documents.model import Document, Section
from pipeline.extractive import extract
from pipeline.language import count_units, counts_characters
from pipeline.outputs import MAX_SECTION_ENTRIES, Node
from pipeline.sentences import split_sentences
from pipeline.tokens import TokenCounter

# A chapter's summary: this many times its share of the final summary's length, and never under the floor
# (words, or CJK characters), besides the final's own sentences from it.
SHARE_FACTOR = 3.0
MIN_UNITS = 60
MIN_UNITS_CJK = 150


def _parts(document: Document, start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) cut at the top-level sections that start inside it (at most MAX_SECTION_ENTRIES parts)."""
    inside = [s for s in document.sections if start <= s.start < end]
    if not inside:
        return []
    top = min(s.level for s in inside)
    cuts: list[Section] = [s for s in inside if s.level == top]
    if len(cuts) > MAX_SECTION_ENTRIES:  # many short sections: consecutive runs of them, balanced by count
        step = math.ceil(len(cuts) / MAX_SECTION_ENTRIES)
        cuts = cuts[::step]
    bounds = [start] + [s.start for s in cuts if s.start > start] + [end]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if document.text[a:b].strip()]


def chapter_tree(
    levels: Sequence[Sequence[Node]],
    chunks: Sequence[Chunk],
    document: Document,
    *,
    language: str,
    counter: TokenCounter,
) -> tuple[list[list[Node]], list[Chunk]] | None:
    """Levels and chunks with one level-0 node per chapter under the one-call final, or None when the run
    was not one call, the document has fewer than two sections in it, or the final already holds them all."""
    if len(levels) != 1 or len(levels[0]) != 1 or len(chunks) != 1:
        return None
    final, whole = levels[0][0], chunks[0]
    parts = _parts(document, whole.start, whole.end)
    if len(parts) < 2:
        return None
    cjk = counts_characters(language)
    final_units = count_units(final.text, language)
    floor = MIN_UNITS_CJK if cjk else MIN_UNITS
    size = max(1, whole.end - whole.start)
    new_chunks: list[Chunk] = []
    nodes: list[Node] = []
    for i, (a, b) in enumerate(parts):
        text = document.text[a:b]
        title = document.section_title(a, b)
        units = max(floor, math.ceil(SHARE_FACTOR * final_units * (b - a) / size))
        summary = extract(
            text,
            language=language,
            max_units=units,
            max_tokens=4 * units + 64,
            counter=counter,
            keep=final.text,
        )
        new_chunks.append(
            Chunk(
                index=i,
                start=a,
                end=b,
                token_count=round(whole.token_count * (b - a) / size),
                section_title=title,
                section_index=i,
                pages=document.pages_for(a, b),
                source=document.text,
            )
        )
        nodes.append(
            Node(
                level=0,
                index=i,
                inputs=(i,),
                span=(a, b),
                pages=document.pages_for(a, b),
                section=title,
                text=summary,
                tokens=counter.count(summary),
                cached=final.cached,
                calls=0,
            )
        )
    if all(all(x in final.text for x in split_sentences(n.text)) for n in nodes):
        return None  # the final summary already holds every chapter's summary: they would only repeat it
    top = replace(final, level=1, index=0, inputs=tuple(range(len(nodes))))
    return [nodes, [top]], new_chunks
