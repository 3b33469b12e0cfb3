"""Every request a run made or read from the cache, by tree node: what `tome runs show` prints.

The engine appends a :class:`CallRecord` per request to its run state and writes them with the run's usage
(throttled, and always at the end of each level and of the run). The prompt and the answer themselves stay in
the cache (``cache.messages`` and ``cache.content``), found by the record's key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.db import store_failure
from pipeline.errors import ConfigError
from pipeline.run_records import RunRecord
from pipeline.store import Store

# What became of a request: answered by the backend, read from the cache, rejected as over the context by the
# server, or not sent because a rejection was recorded earlier or predicted (the input was split instead, or the
# same prompt sent with less output room: "refit").
OUTCOMES = ("answer", "cached", "rejected", "split-recorded", "split-predicted", "refit-recorded", "refit-predicted")
_FIELDS = (
    "level", "node", "seq", "key", "kind", "prompt_version", "outcome", "cached", "finish_reason",
    "prompt_tokens", "completion_tokens", "cost", "inputs",
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """One request of a run: which node (level, index) it served, its cache key, prompt version and usage."""

    level: int
    node: int
    seq: int  # order among the requests of one node (splits and retries make several)
    key: str
    kind: str  # "map" | "reduce"
    prompt_version: str
    outcome: str  # one of OUTCOMES
    cached: bool
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # what this run paid (0 when cached)
    inputs: str = ""  # level 0: the chunk index; above: the merged nodes of the level below ("0-7")


def inputs_label(inputs: tuple[int, ...]) -> str:
    """``(3,)`` -> "3"; ``(0, 1, 2)`` -> "0-2"; other runs joined with commas."""
    if not inputs:
        return ""
    if list(inputs) == list(range(inputs[0], inputs[0] + len(inputs))) and len(inputs) > 1:
        return f"{inputs[0]}-{inputs[-1]}"
    return ",".join(str(i) for i in inputs)


def record_calls(store: Store, run_id: str, records: list[CallRecord]) -> None:
    """Write ``records`` of run ``run_id`` (a record written before is kept as it was)."""
    if not records:
        return
    rows = [{"run_id": run_id, **{f: getattr(r, f) for f in _FIELDS}} for r in records]
    for row in rows:
        row["cached"] = int(row["cached"])
    try:
        with store.engine.begin() as conn:
            conn.execute(
                text(
                    f"INSERT INTO run_calls (run_id, {', '.join(_FIELDS)}) VALUES "
                    f"(:run_id, {', '.join(':' + f for f in _FIELDS)}) "
                    "ON CONFLICT (run_id, level, node, seq) DO NOTHING"
                ),
                rows,
            )
    except SQLAlchemyError as exc:
        raise store_failure(store.url, "record the run's calls", exc) from exc


def read_calls(store: Store, run_id: str) -> list[CallRecord]:
    """The requests of run ``run_id``, level by level, node by node."""
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT {', '.join(_FIELDS)} FROM run_calls WHERE run_id = :r ORDER BY level, node, seq"),
                {"r": run_id},
            ).all()
    except SQLAlchemyError as exc:
        raise store_failure(store.url, "read the run's calls", exc) from exc
    out = []
    for row in rows:
        values: dict[str, Any] = dict(zip(_FIELDS, row, strict=True))
        values["cached"] = bool(values["cached"])
        values["inputs"] = values["inputs"] or ""
        out.append(CallRecord(**values))
    return out


def find_run(store: Store, ref: str) -> RunRecord:
    """The run called ``ref``: its id, a unique prefix of it, or ``latest``.

    Raises:
        ConfigError: no run, or several, match (the message says which).
    """
    if ref == "latest":
        runs = store.list_runs(1)
        if not runs:
            raise ConfigError("No runs yet. Summarise something: tome summarise FILE")
        return runs[0]
    exact = store.get_run(ref)
    if exact is not None:
        return exact
    try:
        with store.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(text("SELECT id FROM runs WHERE id LIKE :p LIMIT 3"), {"p": f"{ref}%"})]
    except SQLAlchemyError as exc:
        raise store_failure(store.url, "read the runs", exc) from exc
    if len(ids) == 1:
        run = store.get_run(ids[0])
        assert run is not None
        return run
    if not ids or not ref:
        raise ConfigError(f"No run '{ref}'. `tome runs` lists them (the first column is the id).")
    raise ConfigError(f"'{ref}' matches several runs ({', '.join(ids[:2])}, ...); give more of the id.")


@dataclass(frozen=True, slots=True)
class StoredExchange:
    """A request's prompt and answer as the cache holds them (None: not cached any more, or stored before
    prompts were kept)."""

    messages: list[dict[str, str]] | None
    answer: str | None
    finish_reason: str | None


def stored_exchange(store: Store, key: str) -> StoredExchange:
    """The prompt and the answer the cache holds for ``key``."""
    try:
        with store.engine.connect() as conn:
            row = conn.execute(
                text("SELECT messages, content, finish_reason FROM cache WHERE key = :k"), {"k": key}
            ).one_or_none()
    except SQLAlchemyError as exc:
        raise store_failure(store.url, "read the cache", exc) from exc
    if row is None:
        return StoredExchange(None, None, None)
    return StoredExchange(json.loads(row[0]) if row[0] else None, row[1], row[2])
