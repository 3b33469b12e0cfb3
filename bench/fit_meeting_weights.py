"""Fit the English meeting scorer's weights (configs/meeting_weights.toml) on public dev meetings; judge them
leave-one-meeting-out.

Run from the repo root:  .venv/bin/python bench/fit_meeting_weights.py [--loo] [--write | --verify]

Each sentence of each meeting (as pipeline.extractive splits and cleans it: one call over the whole meeting at its
reference's length) gets the features of pipeline/extractive_learned.py and a label: 1 when a greedy oracle keeps
it (the sentence adding the most ROUGE-1 + ROUGE-2 + ROUGE-L F1, until the reference's length or no gain). An
L2-penalised logistic regression (Newton steps from zero: deterministic) maps features to labels, each set of
meetings weighing the same. ``--loo`` summarises each meeting with the weights fitted on all the others and prints the
means per set beside the hand-set blend, the lead and TextRank; ``--write`` stores the weights fitted on all the
meetings; ``--verify`` refits and fails unless the table holds those weights. Meetings: $TOME_DEVDATA or
../devdata (the files FIT_FILES names; the held-out folders are never read) and the project's bench/data.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_eval import _DEVDATA_DIRS  # noqa: E402

import pipeline.extractive as extractive  # noqa: E402
import pipeline.extractive_learned as learned  # noqa: E402
from pipeline.documents.loader import document_from_text  # noqa: E402
from pipeline.evaluation.baselines import lead, textrank  # noqa: E402
from pipeline.evaluation.rouge import Rouge  # noqa: E402
from pipeline.lengths import measure  # noqa: E402
from pipeline.tokens import TiktokenCounter  # noqa: E402

# 16 QMSum dev meetings (AMI, ICSI, Senedd), 22 fresh QMSum train meetings (AMI, ICSI, Welsh committees), the
# project's 5 English dev meetings: every public English dev meeting the project has.
FIT_FILES = (
    "meetings2_qmsum_en.jsonl", "meetings_qmsum_train_en.jsonl", "meetings_qmsum_val_en.jsonl",
    "meetings3_dev_en.jsonl", "meetings3_dev_b_en.jsonl", str(REPO / "bench" / "data" / "eval_dev_en.jsonl"),
)  # fmt: skip
TABLE = REPO / "configs" / "meeting_weights.toml"
RIDGE = 0.01  # L2 penalty (the loss is a mean over each meeting's sentences, summed over meetings)
HAND_SET = {"words": 0.4, "pairs": 0.4, "central": 0.2, "opening": 0.0, "chair": 0.0}  # before, by hand
Row = tuple[float, float, float]


def load(names: Sequence[str]) -> list[dict[str, Any]]:
    """The meetings of each file (a file's other genres left out), each tagged with its file's name."""
    items: list[dict[str, Any]] = []
    for name in names:
        path = next((folder / name for folder in _DEVDATA_DIRS if (folder / name).is_file()), Path(name))
        records = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        items.extend({**r, "set": path.stem} for r in records if r.get("genre", "meeting") == "meeting")
    return items


def fit_logistic(
    rows: Sequence[np.ndarray], labels: Sequence[np.ndarray], shares: Sequence[float], ridge: float = RIDGE
) -> np.ndarray:
    """Weights (no intercept, summing to 1 in absolute value) of an L2-penalised logistic regression; each group
    of rows (a meeting's sentences) weighs its share."""
    xs = [np.hstack([x, np.ones((len(x), 1))]) for x in rows]
    d = xs[0].shape[1]
    penalty = ridge * np.eye(d)
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    w = np.zeros(d)
    for _ in range(30):
        grad, hess = penalty @ w, penalty.copy()
        for x, y, share in zip(xs, labels, shares, strict=True):
            p = 1 / (1 + np.exp(-(x @ w)))
            grad += share * x.T @ (p - y) / len(x)
            hess += share * (x.T * (p * (1 - p))) @ x / len(x)
        w = w - np.linalg.solve(hess, grad)
    return w[:-1] / (np.abs(w[:-1]).sum() or 1.0)


# What does not depend on the weights is computed once per meeting (the same summaries, many times faster).
_clean = functools.lru_cache(maxsize=1 << 18)(extractive.clean_turn)
_raw_components, _raw_features = extractive._components, learned.meeting_features
_memo: dict[Any, Any] = {}


def _components(feats: list[frozenset[str]], *, cjk: bool) -> Any:
    key = ("components", tuple(feats), cjk)
    if key not in _memo:
        _memo[key] = _raw_components(feats, cjk=cjk)
    return _memo[key]


def _features(sentences: Sequence[str], *args: Any, **kwargs: Any) -> Any:
    key = ("features", tuple(sentences), tuple(args[2]))
    if key not in _memo:
        _memo[key] = _raw_features(sentences, *args, **kwargs)
    return _memo[key]


@contextlib.contextmanager
def fast() -> Iterator[None]:
    with (
        mock.patch.object(extractive, "clean_turn", _clean),
        mock.patch.object(extractive, "_components", _components),
        mock.patch.object(learned, "meeting_features", _features),
    ):
        yield


class Meetings:
    """The meetings, each with the feature rows of the sentences the backend ranks and their oracle labels."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.rouge, self.counter = Rouge(), TiktokenCounter()
        self.items = items
        self.docs = [document_from_text(Path(f"{it['id']}.txt"), it["document"]) for it in items]
        self.sizes = [round(statistics.fmean(measure(r, "words") for r in it["references"])) for it in items]
        self.memo: dict[tuple[int, tuple[float, ...]], Row] = {}
        self.rows: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        for k, item in enumerate(items):
            seen: list[tuple[list[str], list[list[float]]]] = []
            self.summarise(k, HAND_SET, seen)
            sentences, rows = seen[-1]
            self.rows.append(np.array(rows, dtype=float))
            self.labels.append(self.oracle(sentences, item["references"], self.sizes[k]))
            print(f"labelled {item['id']}", file=sys.stderr)

    def oracle(self, sentences: list[str], references: list[str], budget: int) -> np.ndarray:
        """1 for each sentence a greedy oracle keeps: the most ROUGE-1 + 2 + L F1 added, within the length."""
        sizes = [measure(s, "words") for s in sentences]
        picked: list[int] = []
        best = 0.0
        while True:
            used = sum(sizes[i] for i in picked)
            gains = []
            for i in range(len(sentences)):
                if i not in picked and used + sizes[i] <= budget * 1.1:
                    s = self.rouge.score(" ".join(sentences[j] for j in sorted([*picked, i])), references)
                    gains.append((s.rouge1 + s.rouge2 + s.rougeL, -i))
            if not gains or max(gains)[0] <= best:
                break
            best, i = max(gains)
            picked.append(-i)
        out = np.zeros(len(sentences))
        out[picked] = 1.0
        return out

    def summarise(self, k: int, weights: dict[str, float], seen: list[Any] | None = None) -> str:
        """Meeting ``k``'s summary with ``weights`` in place of the table's."""

        def scores(sentences: Sequence[str], *args: Any, **kwargs: Any) -> list[float]:
            rows = learned.meeting_features(sentences, *args, **kwargs)
            if seen is not None:
                seen.append((list(sentences), rows))
            return [sum(weights[n] * x for n, x in zip(learned.FEATURES, r, strict=True)) for r in rows]

        with mock.patch.object(learned, "meeting_scores", scores), fast():
            return extractive.extract(self.docs[k].text, language="en", max_units=self.sizes[k], max_tokens=10**6,
                                      counter=self.counter, unit="words", where=(0.0, 1.0))  # fmt: skip

    def score(self, k: int, summary: str) -> Row:
        s = self.rouge.score(summary, self.items[k]["references"])
        return 100 * s.rouge1, 100 * s.rouge2, 100 * s.rougeL

    def row(self, k: int, weights: dict[str, float]) -> Row:
        key = (k, tuple(weights[n] for n in learned.FEATURES))
        if key not in self.memo:
            self.memo[key] = self.score(k, self.summarise(k, weights))
        return self.memo[key]

    def fit(self, keep: Sequence[int]) -> dict[str, float]:
        # Each set of meetings weighs the same: the 11 of one source do not outweigh the project's 5.
        sets = Counter(self.items[k]["set"] for k in keep)
        shares = [len(keep) / (len(sets) * sets[self.items[k]["set"]]) for k in keep]
        w = fit_logistic([self.rows[k] for k in keep], [self.labels[k] for k in keep], shares)
        return {n: round(float(v), 4) for n, v in zip(learned.FEATURES, w, strict=True)}


def mean(rows: Sequence[Row]) -> str:
    return " / ".join(f"{statistics.fmean(r[m] for r in rows):.2f}" for m in range(3))


def leave_one_out(fit: Meetings) -> None:
    n = len(fit.items)
    held, hand, lead_rows, textrank_rows = [], [], [], []
    for k in range(n):
        held.append(fit.row(k, fit.fit([j for j in range(n) if j != k])))
        hand.append(fit.row(k, HAND_SET))
        text, size = fit.docs[k].text, fit.sizes[k]
        lead_rows.append(fit.score(k, lead(text, size)))
        textrank_rows.append(fit.score(k, textrank(text, size, fit.rouge.tokenizer)))
    print(f"Leave one meeting out, {n} meetings; R-1 / R-2 / R-L F1 x 100 at the reference's length")
    print("| set (meetings) | hand-set blend | fitted on the others | lead | TextRank |\n|---|---|---|---|---|")
    groups = {it["set"]: [k for k in range(n) if fit.items[k]["set"] == it["set"]] for it in fit.items}
    groups["all, item-weighted"] = list(range(n))
    for name, ks in groups.items():
        cells = [mean([rows[k] for k in ks]) for rows in (hand, held, lead_rows, textrank_rows)]
        print(f"| {name} ({len(ks)}) | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loo", action="store_true", help="judge the fit leave-one-meeting-out")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--write", action="store_true", help=f"store the weights fitted on all in {TABLE.name}")
    what.add_argument("--verify", action="store_true", help=f"fail unless {TABLE.name} holds the refitted weights")
    args = parser.parse_args()
    fit = Meetings(load(FIT_FILES))
    if args.loo:
        leave_one_out(fit)
    final = fit.fit(range(len(fit.items)))
    print(f"weights fitted on all {len(fit.items)}: {final}")
    if args.verify:
        shipped = tomllib.loads(TABLE.read_text(encoding="utf-8"))["weights"]
        if shipped != final:
            sys.exit(f"{TABLE} holds {shipped}, the refit gives {final}")
        print(f"{TABLE.name} holds the refitted weights")
    if args.write:
        counts = Counter(it["set"] for it in fit.items)
        body = "\n".join(f"{k} = {v}" for k, v in final.items())
        TABLE.write_text(
            "# English meetings' sentence scorer (pipeline/extractive_learned.py): a weight per feature, fitted by\n"
            f"# bench/fit_meeting_weights.py on {len(fit.items)} public dev meetings, {date.today().isoformat()}:\n"
            f"# {', '.join(f'{name} {c}' for name, c in counts.items())}.\n"
            "# Refit: .venv/bin/python bench/fit_meeting_weights.py --write (--verify checks this table).\n"
            f"[weights]\n{body}\n",
            encoding="utf-8",
        )
        print(f"wrote {TABLE}")


if __name__ == "__main__":
    main()
