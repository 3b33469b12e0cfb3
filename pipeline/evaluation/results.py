"""What an evaluation found: a row per item and system, the per-system means, and two runs compared."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import fmean
from typing import Any

from pipeline.evaluation.rouge import METRICS

LEAD = "lead"
TEXTRANK = "textrank"
BASELINES = (LEAD, TEXTRANK)


@dataclass
class ItemResult:
    """One system's summary of one item, scored (``rouge`` is None when the system failed on it)."""

    item_id: str
    system: str
    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None  # noqa: N815 - the metric's usual name
    length: int = 0  # ROUGE tokens: words, or characters for Chinese
    reference_length: float = 0.0  # mean over the item's references
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    coherence: float | None = None
    summary: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.rouge1 is not None

    def to_dict(self, *, with_summary: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_summary:
            out.pop("summary")
        return out


@dataclass(frozen=True)
class SystemSummary:
    """Means over the items a system summarised (sums for calls, tokens and cost)."""

    system: str
    items: int
    failed: int
    rouge1: float
    rouge2: float
    rougeL: float  # noqa: N815
    length: float
    reference_length: float
    calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    coherence: float | None

    @property
    def length_ratio(self) -> float:
        return self.length / self.reference_length if self.reference_length else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "length_ratio": self.length_ratio}


def summarise_system(system: str, results: list[ItemResult]) -> SystemSummary:
    """The means of one system's scored items."""
    ok = [r for r in results if r.ok]
    judged = [r.coherence for r in ok if r.coherence is not None and not math.isnan(r.coherence)]

    def mean(values: list[float]) -> float:
        return fmean(values) if values else math.nan

    return SystemSummary(
        system=system,
        items=len(ok),
        failed=len(results) - len(ok),
        rouge1=mean([r.rouge1 for r in ok if r.rouge1 is not None]),
        rouge2=mean([r.rouge2 for r in ok if r.rouge2 is not None]),
        rougeL=mean([r.rougeL for r in ok if r.rougeL is not None]),
        length=mean([float(r.length) for r in ok]),
        reference_length=mean([r.reference_length for r in ok]),
        calls=sum(r.calls for r in results),
        cached_calls=sum(r.cached_calls for r in results),
        prompt_tokens=sum(r.prompt_tokens for r in results),
        completion_tokens=sum(r.completion_tokens for r in results),
        cost=sum(r.cost for r in results),
        coherence=mean(judged) if judged else None,
    )


def summarise_systems(results: list[ItemResult]) -> list[SystemSummary]:
    """One summary per system, in first-seen order (tome first, then the baselines)."""
    systems = list(dict.fromkeys(r.system for r in results))
    return [summarise_system(s, [r for r in results if r.system == s]) for s in systems]


@dataclass
class JudgeUsage:
    """What the coherence judge's calls took (only calls actually sent count tokens and cost)."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def add(self, judged: Any, cost: float) -> None:
        # As for summaries, ``calls`` includes the cached ones (a judgement's ``calls`` are only those sent).
        self.calls += judged.calls + judged.cached_calls
        self.cached_calls += judged.cached_calls
        self.prompt_tokens += judged.prompt_tokens
        self.completion_tokens += judged.completion_tokens
        self.cost += cost


@dataclass
class EvalReport:
    """An evaluation run: its id, dataset, settings and results."""

    run_id: str
    dataset: str
    settings: dict[str, Any]
    results: list[ItemResult] = field(default_factory=list)
    status: str = "done"
    started_at: str = ""
    judge_usage: JudgeUsage = field(default_factory=JudgeUsage)

    @property
    def systems(self) -> list[SystemSummary]:
        return summarise_systems(self.results)

    @property
    def items(self) -> list[str]:
        return list(dict.fromkeys(r.item_id for r in self.results))

    def to_dict(self, *, with_items: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "dataset": self.dataset,
            "status": self.status,
            "started_at": self.started_at,
            "settings": self.settings,
            "systems": [s.to_dict() for s in self.systems],
        }
        if self.judge_usage.calls:
            out["judge_usage"] = asdict(self.judge_usage)
        if with_items:
            out["items"] = [r.to_dict() for r in self.results]
        return out


@dataclass(frozen=True)
class SystemDelta:
    """How one system moved between two runs, on the items both runs scored."""

    system: str
    items: int
    before: dict[str, float]
    after: dict[str, float]
    better: int  # items whose ROUGE-L rose
    worse: int

    def delta(self, metric: str) -> float:
        return self.after[metric] - self.before[metric]


@dataclass(frozen=True)
class Comparison:
    """Run B against run A: the settings that differ and each system's metric changes."""

    run_a: str
    run_b: str
    settings_changed: dict[str, tuple[Any, Any]]
    systems: list[SystemDelta]
    only_a: int
    only_b: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "settings_changed": {k: {"a": a, "b": b} for k, (a, b) in self.settings_changed.items()},
            "systems": [
                {**asdict(s), "delta": {m: s.delta(m) for m in s.before}} for s in self.systems
            ],
            "items_only_in_a": self.only_a,
            "items_only_in_b": self.only_b,
        }


COMPARED = (*METRICS, "length", "coherence", "cost")


def compare(a: EvalReport, b: EvalReport) -> Comparison:
    """Pair the two runs' items by id; metrics are means over the items both scored."""
    changed = {
        key: (a.settings.get(key), b.settings.get(key))
        for key in sorted(set(a.settings) | set(b.settings))
        if a.settings.get(key) != b.settings.get(key) and key not in {"started_at"}
    }
    deltas = []
    for system in dict.fromkeys([r.system for r in a.results] + [r.system for r in b.results]):
        rows_a = {r.item_id: r for r in a.results if r.system == system and r.ok}
        rows_b = {r.item_id: r for r in b.results if r.system == system and r.ok}
        common = [i for i in rows_a if i in rows_b]
        if not common:
            continue
        before = _means(system, [rows_a[i] for i in common])
        after = _means(system, [rows_b[i] for i in common])
        better = sum((rows_b[i].rougeL or 0) > (rows_a[i].rougeL or 0) + 1e-12 for i in common)
        worse = sum((rows_b[i].rougeL or 0) < (rows_a[i].rougeL or 0) - 1e-12 for i in common)
        deltas.append(SystemDelta(system, len(common), before, after, better, worse))
    ids_a, ids_b = set(a.items), set(b.items)
    return Comparison(a.run_id, b.run_id, changed, deltas, len(ids_a - ids_b), len(ids_b - ids_a))


def _means(system: str, rows: list[ItemResult]) -> dict[str, float]:
    summary = summarise_system(system, rows)
    out = {m: getattr(summary, m) for m in METRICS}
    out["length"] = summary.length
    out["coherence"] = summary.coherence if summary.coherence is not None else math.nan
    out["cost"] = summary.cost
    return out
