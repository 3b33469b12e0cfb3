"""The summary tree and what a run hands back: final summary, per-section summaries, Markdown and JSON."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, overload

if TYPE_CHECKING:
    from pipeline.provenance import SentenceLink


@dataclass(frozen=True, kw_only=True)
class Node:
    """One summary in the tree: a chunk's (level 0) or a merge of nodes of the level below."""

    level: int
    index: int
    inputs: tuple[int, ...]  # level 0: (chunk index,); later: indexes of nodes in the level below
    span: tuple[int, int]  # character span of Document.text it covers
    pages: tuple[int, int] | None
    section: (
        str  # the section title(s) it covers: "Chapter 1" or "Chapter 1 … Chapter 3" ("" without sections)
    )
    text: str
    tokens: int  # local tokens of ``text``
    cached: bool  # every call behind it came from the cache
    truncated: bool = False  # the model was cut off at max_tokens even after a stricter retry
    trimmed: bool = False  # cut off at max_tokens; kept up to its last complete sentence (no second call)
    calls: int = 1  # requests the backend answered for it in this run (more after a split or a retry)
    cached_calls: int = 0  # requests behind it answered from the cache
    context: str = "none"  # where its carried context came from: "none" | "summary:<i>" | "tail:<i>"
    prompt_tokens: int = 0  # tokens billed by this run (0 when cached)
    completion_tokens: int = 0
    cost: float = 0.0
    latency_s: float = 0.0  # seconds the calls behind it took (0 when cached)
    # Each sentence of ``text`` and what supports it (pipeline.provenance); filled when the run finishes.
    sentences: tuple[SentenceLink, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "index": self.index,
            "inputs": list(self.inputs),
            "span": list(self.span),
            "pages": list(self.pages) if self.pages else None,
            "section": self.section,
            "text": self.text,
            "tokens": self.tokens,
            "cached": self.cached,
            "truncated": self.truncated,
            "trimmed": self.trimmed,
            "calls": self.calls,
            "cached_calls": self.cached_calls,
            "context": self.context,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": round(self.cost, 6),
            "sentences": [s.as_dict() for s in self.sentences],
        }


@dataclass
class UsageTotals:
    """What a run did: API calls, cache hits, tokens and cost of the calls it made."""

    # One definition everywhere (progress, tables, `tome runs`, JSON): ``calls`` are requests the backend
    # answered in this run (context-length rejections included; billed), ``cached_calls`` requests answered from
    # the cache (free), ``splits`` inputs cut in two after a context-length rejection or its prediction.
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, those the provider reported as prefix-cache hits (billed lower)
    cost: float = 0.0
    currency: str = "USD"
    truncated: int = 0  # nodes flagged truncated
    splits: int = 0  # inputs split after a context-length error (or its prediction)
    retries: int = 0  # stricter retries after a cut-off answer without a complete sentence
    trimmed: int = 0  # cut-off answers kept up to their last complete sentence
    continued: int = 0  # cut-off answers continued in partial mode (the provider's cut-off recovery)
    refitted: int = 0  # prompts sent again with less output room after a context-length refusal (not split)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cached_calls": self.cached_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "cost": round(self.cost, 6) if self.currency else None,
            "currency": self.currency or None,
            "truncated": self.truncated,
            "splits": self.splits,
            "retries": self.retries,
            "trimmed": self.trimmed,
            "continued": self.continued,
            "refitted": self.refitted,
        }


class SectionJson(TypedDict):
    """One section summary in the JSON output."""

    title: str
    text: str


class SummaryJson(TypedDict):
    """The JSON of a summary (``SummaryResult.to_json_dict``, ``tome summarise --json``, summary.json)."""

    title: str
    document: str
    language: str
    run_id: str
    backend: str
    model: str
    settings: dict[str, object]
    final: str
    sections: list[SectionJson]
    usage: dict[str, object]  # UsageTotals.as_dict()
    levels: int
    tree: list[dict[str, object]]  # Node.as_dict() per node, level by level


@dataclass(frozen=True, kw_only=True)
class SummaryResult:
    """A finished run: the final summary, per-section summaries, the whole tree and what it cost."""

    title: str
    document: str
    language: str
    final: str
    sections: list[tuple[str, str]]
    levels: list[list[Node]]
    usage: UsageTotals
    run_id: str
    backend: str
    model: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def nodes(self) -> list[Node]:
        """Every node, level by level."""
        return [n for level in self.levels for n in level]

    def shown_sections(self) -> list[tuple[str, str]]:
        """The section summaries worth printing (see :func:`pick_sections`): none that repeat the final."""
        return pick_sections(self.sections, self.levels, self.final)

    def to_markdown(self) -> str:
        """The final summary, then the section summaries (titles kept), then a usage line.

        The same headings in every language, so that tools reading the Markdown need no language table.
        """
        lines = [f"# Summary: {self.title}", ""]
        if self.settings.get("focus"):
            lines += [f"> Focus: {self.settings['focus']}", ""]
        lines += [self.final.strip(), ""]
        if self.settings.get("length_note"):  # a document shorter than the length asked: said, not padded
            lines += [f"> {self.settings['length_note']}", ""]
        named = self.shown_sections()
        if named:
            lines += ["## Section summaries", ""]
            for title, text in named:
                lines += [f"### {title}", "", text.strip(), ""]
        u = self.usage
        who = f"{self.backend} · {self.model}" if self.model != self.backend else self.backend
        cost = f" · {u.cost:.4f} {u.currency}" if u.currency else ""  # the offline backend has no price
        lines += [
            "---",
            "",
            f"*{who} · {u.calls} calls, {u.cached_calls} cached · "
            f"{u.prompt_tokens:,} prompt + {u.completion_tokens:,} completion tokens{cost} · run {self.run_id}*",
            "",
        ]
        return "\n".join(lines)

    def tree_dicts(self) -> NodeDicts:
        """The JSON's ``tree`` as a sequence that makes each node's dict when it is reached (a big tree's dicts
        never exist all at once)."""
        return NodeDicts(self.nodes)

    def to_json_dict(self, *, tree: bool = True) -> SummaryJson:
        """Everything, JSON-ready: document, final, sections, usage and the tree (left empty with ``tree=False``:
        a writer streaming it takes ``tree_dicts()``)."""
        return {
            "title": self.title,
            "document": self.document,
            "language": self.language,
            "run_id": self.run_id,
            "backend": self.backend,
            "model": self.model,
            "settings": self.settings,
            "final": self.final,
            "sections": [{"title": t, "text": s} for t, s in self.shown_sections()],
            "usage": self.usage.as_dict(),
            "levels": len(self.levels),
            "tree": [n.as_dict() for n in self.nodes] if tree else [],
        }


class NodeDicts(Sequence[dict[str, Any]]):
    """``Node.as_dict()`` of each node, made on each access (``SummaryResult.tree_dicts``)."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes

    def __len__(self) -> int:
        return len(self.nodes)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [n.as_dict() for n in self.nodes[index]]
        return self.nodes[index].as_dict()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (n.as_dict() for n in self.nodes)


def section_summaries(level0: list[Node]) -> list[tuple[str, str]]:
    """Per-section summaries: consecutive chunk summaries under the same section title(s), joined."""
    out: list[tuple[str, list[str]]] = []
    for node in level0:
        if out and out[-1][0] == node.section:
            out[-1][1].append(node.text)
        else:
            out.append((node.section, [node.text]))
    return [(title, "\n\n".join(t for t in texts if t)) for title, texts in out]


# Section summaries are a reading aid beside the final summary, not a second copy of the book: at most this many,
# and at most this many times the final summary's length (never less than the floor), else the tree's next
# level up supplies them (each node covers a run of sections, titled "A … B").
MAX_SECTION_ENTRIES = 50
MAX_SECTIONS_RATIO = 25
MIN_SECTIONS_BUDGET_CHARS = 20_000


def pick_sections(
    sections: list[tuple[str, str]], levels: list[list[Node]], final: str
) -> list[tuple[str, str]]:
    """The per-section summaries to show: the chunk-level ones when they fit the caps, else those of the lowest
    tree level that does; none when there would be only one (it would repeat the final summary) or any repeats it.
    """
    budget = max(MIN_SECTIONS_BUDGET_CHARS, MAX_SECTIONS_RATIO * len(final))
    candidates = [[(t, s) for t, s in sections if t]]
    candidates += [[(n.section, n.text) for n in level if n.section] for level in levels[1:-1]]
    final_text = final.strip()
    for entries in candidates:
        entries = [(t, s) for t, s in entries if s.strip() != final_text]
        if len(entries) <= 1:
            return []
        if len(entries) <= MAX_SECTION_ENTRIES and sum(len(t) for _, t in entries) <= budget:
            return entries
    return []
