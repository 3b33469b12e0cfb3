"""Evaluation runs in the project database (tables from migration m005_eval), so runs can be compared later."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.db import store_failure
from pipeline.errors import ConfigError, StoreError
from pipeline.evaluation.results import EvalReport, ItemResult
from pipeline.utc import utc_stamp

_COLUMNS = (
    "item_id, system, rouge1, rouge2, rouge_l, length, reference_length, calls, cached_calls, prompt_tokens, "
    "completion_tokens, cost, coherence, summary, error"
)
# `--compare previous latest`: the two newest runs, without copying ids.
ALIASES = {"latest": 0, "last": 0, "previous": 1, "prev": 1}


@dataclass(frozen=True)
class EvalRunInfo:
    """A line of `tome eval --list`."""

    id: str
    dataset: str
    status: str
    items: int
    started_at: str
    settings: dict[str, Any]


class EvalRecords:
    """Reads and writes evaluation runs through the store's SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _fail(self, action: str, exc: SQLAlchemyError) -> StoreError:
        return store_failure(self.engine.url.render_as_string(), action, exc)

    def start(
        self, *, dataset: str, dataset_sha256: str, fields: dict[str, Any], settings: dict[str, Any], items: int
    ) -> tuple[str, str]:
        """Record a new evaluation (status "running"); returns its id and start time."""
        run_id, started = uuid.uuid4().hex, utc_stamp()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO eval_runs (id, dataset, dataset_sha256, fields, settings, items, status, "
                        "started_at) VALUES (:i, :d, :h, :f, :s, :n, 'running', :t)"
                    ),
                    {
                        "i": run_id,
                        "d": dataset,
                        "h": dataset_sha256,
                        "f": json.dumps(fields, sort_keys=True),
                        "s": json.dumps(settings, sort_keys=True, default=str),
                        "n": items,
                        "t": started,
                    },
                )
        except SQLAlchemyError as exc:
            raise self._fail("record the evaluation", exc) from exc
        return run_id, started

    def add(self, run_id: str, results: list[ItemResult]) -> None:
        """Store an item's results as soon as they exist (an interrupted evaluation keeps them)."""
        first = time.time_ns()  # insertion order, portable (no rowid); batches are far more than len() ns apart
        rows = [
            {
                "run": run_id,
                "item_id": r.item_id,
                "system": r.system,
                "rouge1": r.rouge1,
                "rouge2": r.rouge2,
                "rouge_l": r.rougeL,
                "length": r.length,
                "reference_length": r.reference_length,
                "calls": r.calls,
                "cached_calls": r.cached_calls,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "cost": r.cost,
                "coherence": r.coherence,
                "summary": r.summary,
                "error": r.error,
                "seq": first + i,
            }
            for i, r in enumerate(results)
        ]
        names = _COLUMNS.split(", ")
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        f"INSERT INTO eval_results (run_id, {_COLUMNS}, seq) "
                        f"VALUES (:run, {', '.join(':' + n for n in names)}, :seq)"
                    ),
                    rows,
                )
        except SQLAlchemyError as exc:
            raise self._fail("store evaluation results", exc) from exc

    def finish(self, run_id: str, status: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text("UPDATE eval_runs SET status = :s, finished_at = :t WHERE id = :i"),
                    {"s": status, "t": utc_stamp(), "i": run_id},
                )
        except SQLAlchemyError as exc:
            raise self._fail("finish the evaluation record", exc) from exc

    def list(self, limit: int = 20) -> list[EvalRunInfo]:
        """The newest evaluations first."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT id, dataset, status, items, started_at, settings FROM eval_runs "
                        "ORDER BY started_at DESC, id DESC LIMIT :n"
                    ),
                    {"n": limit},
                ).all()
        except SQLAlchemyError as exc:
            raise self._fail("list evaluations", exc) from exc
        return [EvalRunInfo(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def resolve(self, ref: str) -> str:
        """A full run id from an id, a unique prefix of one, or "latest"/"previous"."""
        ref = ref.strip()
        if ref.lower() in ALIASES:
            newest = self.list(limit=ALIASES[ref.lower()] + 1)
            if len(newest) <= ALIASES[ref.lower()]:
                raise ConfigError(f"There is no '{ref}' evaluation: {len(newest)} recorded so far.")
            return newest[ALIASES[ref.lower()]].id
        try:
            with self.engine.connect() as conn:
                ids = [
                    r[0]
                    for r in conn.execute(
                        # A prefix compared as text: LIKE would read "%" and "_" in what the user typed.
                        text("SELECT id FROM eval_runs WHERE substr(id, 1, :n) = :p LIMIT 2"),
                        {"n": len(ref), "p": ref},
                    )
                ]
        except SQLAlchemyError as exc:
            raise self._fail("find the evaluation", exc) from exc
        if not ids or not ref:
            raise ConfigError(f"No evaluation run '{ref}'. `tome eval --list` shows the recorded ones.")
        if len(ids) > 1:
            raise ConfigError(f"'{ref}' names more than one evaluation run; give more of its id.")
        return str(ids[0])

    def get(self, ref: str) -> EvalReport:
        """The run ``ref`` names (see resolve) with all its results."""
        run_id = self.resolve(ref)
        try:
            with self.engine.connect() as conn:
                head = conn.execute(
                    text("SELECT dataset, settings, status, started_at FROM eval_runs WHERE id = :i"), {"i": run_id}
                ).one()
                rows = conn.execute(
                    text(f"SELECT {_COLUMNS} FROM eval_results WHERE run_id = :i ORDER BY seq, item_id, system"),
                    {"i": run_id},
                ).all()
        except SQLAlchemyError as exc:
            raise self._fail("read the evaluation", exc) from exc
        results = [
            ItemResult(
                item_id=r[0], system=r[1], rouge1=r[2], rouge2=r[3], rougeL=r[4], length=r[5],
                reference_length=r[6], calls=r[7], cached_calls=r[8], prompt_tokens=r[9],
                completion_tokens=r[10], cost=r[11], coherence=r[12], summary=r[13], error=r[14],
            )  # fmt: skip
            for r in rows
        ]
        return EvalReport(run_id, head[0], json.loads(head[1]), results, status=head[2], started_at=head[3])
