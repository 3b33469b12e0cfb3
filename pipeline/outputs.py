"""The summary tree and what a run hands back: final summary, per-section summaries, Markdown and JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    calls: int = 1  # calls behind it (more after a split or a retry)
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
            "context": self.context,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": round(self.cost, 6),
            "sentences": [s.as_dict() for s in self.sentences],
        }


@dataclass
class UsageTotals:
    """What a run did: API calls, cache hits, tokens and cost of the calls it made."""

    calls: int = 0  # requests sent to the backend (context-length rejections included)
    cached_calls: int = 0  # answers served from the cache
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    currency: str = "USD"
    truncated: int = 0  # nodes flagged truncated
    splits: int = 0  # inputs split after a context-length error (or its prediction)
    retries: int = 0  # stricter retries after a cut-off answer without a complete sentence
    trimmed: int = 0  # cut-off answers kept up to their last complete sentence

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cached_calls": self.cached_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": round(self.cost, 6),
            "currency": self.currency,
            "truncated": self.truncated,
            "splits": self.splits,
            "retries": self.retries,
            "trimmed": self.trimmed,
        }


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

    def to_markdown(self) -> str:
        """The final summary, then one summary per section (chapter titles kept), then a usage line."""
        zh = self.language == "zh"
        lines = [f"# {'摘要' if zh else 'Summary'}: {self.title}", "", self.final.strip(), ""]
        named = [(t, s) for t, s in self.sections if t]
        if named:
            lines += [f"## {'分章摘要' if zh else 'Section summaries'}", ""]
            for title, text in named:
                lines += [f"### {title}", "", text.strip(), ""]
        u = self.usage
        lines += [
            "---",
            "",
            f"*{self.backend} · {self.model} · {u.calls} calls, {u.cached_calls} cached · "
            f"{u.prompt_tokens:,} prompt + {u.completion_tokens:,} completion tokens · "
            f"{u.cost:.4f} {u.currency} · run {self.run_id}*",
            "",
        ]
        return "\n".join(lines)

    def to_json_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready: document, final, sections, usage and the tree."""
        return {
            "title": self.title,
            "document": self.document,
            "language": self.language,
            "run_id": self.run_id,
            "backend": self.backend,
            "model": self.model,
            "settings": self.settings,
            "final": self.final,
            "sections": [{"title": t, "text": s} for t, s in self.sections],
            "usage": self.usage.as_dict(),
            "levels": len(self.levels),
            "tree": [n.as_dict() for n in self.nodes],
        }


def section_summaries(level0: list[Node]) -> list[tuple[str, str]]:
    """Per-section summaries: consecutive chunk summaries under the same section title(s), joined."""
    out: list[tuple[str, list[str]]] = []
    for node in level0:
        if out and out[-1][0] == node.section:
            out[-1][1].append(node.text)
        else:
            out.append((node.section, [node.text]))
    return [(title, "\n\n".join(t for t in texts if t)) for title, texts in out]
