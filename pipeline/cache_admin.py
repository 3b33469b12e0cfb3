"""Looking after the call cache: what an entry set is worth, and moving it between machines as JSON Lines.

An export line is one JSON object: ``{"type": "answer", ...}`` (a cached answer, with its prompt when stored)
or ``{"type": "overflow", ...}`` (a recorded context-length rejection, so the importing machine splits the same
calls). Imports never overwrite: a key already present is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.config import Catalog
from pipeline.db import store_failure
from pipeline.errors import DocumentError
from pipeline.store import Store

OFFLINE_PROVIDERS = frozenset({"extractive"})  # answers that cost nothing, whatever model name they carry

_ANSWER_FIELDS = (
    "key", "provider", "model", "prompt_version", "content", "finish_reason", "prompt_tokens",
    "completion_tokens", "cached_tokens", "request_id", "latency_s", "created_at", "messages",
)  # fmt: skip
_OVERFLOW_FIELDS = ("key", "model", "limit_tokens", "requested_tokens", "created_at")
_REQUIRED = {"answer": ("key", "provider", "model", "prompt_version", "content", "created_at"),
             "overflow": ("key", "model", "created_at")}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CacheGroup:
    """The cached answers of one backend and model."""

    provider: str
    model: str
    entries: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def label(self) -> str:
        """What the user calls it: ``extractive`` for the offline backend, else the model name."""
        return self.provider if self.provider in OFFLINE_PROVIDERS else self.model


def cache_groups(store: Store, *, model: str | None = None) -> list[CacheGroup]:
    """Entries and tokens per (provider, model), optionally of one model (or ``extractive``)."""
    where, params = _model_filter(model)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT provider, model, COUNT(*), COALESCE(SUM(prompt_tokens), 0), "
                    f"COALESCE(SUM(completion_tokens), 0) FROM cache {where} GROUP BY provider, model "
                    "ORDER BY provider, model"
                ),
                params,
            ).all()
    except SQLAlchemyError as exc:
        raise store_failure(store.url, "read the cache", exc) from exc
    return [CacheGroup(str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]


def answers_cost(groups: Iterable[CacheGroup], catalog: Catalog) -> dict[str, float]:
    """What the answers cost when they were made, per currency (offline answers and unknown models: nothing)."""
    totals: dict[str, float] = {}
    for g in groups:
        spec = catalog.models.get(g.model)
        if g.provider in OFFLINE_PROVIDERS or spec is None:
            continue
        totals[spec.currency] = totals.get(spec.currency, 0.0) + spec.cost(g.prompt_tokens, g.completion_tokens)
    return totals


def clear_cache(store: Store, *, model: str | None = None) -> int:
    """Delete cached answers and recorded rejections (all, one model's, or ``extractive``'s); how many answers."""
    where, params = _model_filter(model)
    try:
        with store.engine.begin() as conn:
            deleted = conn.execute(text(f"DELETE FROM cache {where}"), params).rowcount
            if model not in OFFLINE_PROVIDERS:  # rejections record a model's context limit
                o_where = "WHERE model = :m" if model else ""
                conn.execute(text(f"DELETE FROM cache_overflow {o_where}"), params)
    except SQLAlchemyError as exc:
        raise store_failure(store.url, "clear the cache", exc) from exc
    return int(deleted or 0)


def _model_filter(model: str | None) -> tuple[str, dict[str, Any]]:
    if model is None:
        return "", {}
    if model in OFFLINE_PROVIDERS:
        return "WHERE provider = :m", {"m": model}
    return "WHERE model = :m AND provider NOT IN ('extractive')", {"m": model}


def export_lines(store: Store, *, model: str | None = None) -> Iterator[str]:
    """The cache as JSON Lines (answers, then recorded rejections), oldest first."""
    where, params = _model_filter(model)
    try:
        with store.engine.connect() as conn:
            answers = conn.execute(
                text(f"SELECT {', '.join(_ANSWER_FIELDS)} FROM cache {where} ORDER BY created_at, key"), params
            ).all()
            overflows: Sequence[Any] = []
            if model not in OFFLINE_PROVIDERS:
                o_where = "WHERE model = :m" if model else ""
                overflows = conn.execute(
                    text(f"SELECT {', '.join(_OVERFLOW_FIELDS)} FROM cache_overflow {o_where} ORDER BY created_at, key"),
                    params,
                ).all()
    except SQLAlchemyError as exc:
        raise store_failure(store.url, "read the cache", exc) from exc
    for row in answers:
        record: dict[str, Any] = {"type": "answer", **dict(zip(_ANSWER_FIELDS, row, strict=True))}
        record["messages"] = json.loads(record["messages"]) if record["messages"] else None
        yield json.dumps(record, ensure_ascii=False)
    for row in overflows:
        yield json.dumps({"type": "overflow", **dict(zip(_OVERFLOW_FIELDS, row, strict=True))}, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What an import did."""

    added: int
    already: int
    overflows: int


def import_lines(store: Store, lines: Iterable[str], *, source: str = "input") -> ImportCounts:
    """Add the exported records to the cache; keys already present are kept. Checks every line before writing.

    Raises:
        DocumentError: a line is not JSON or not a cache record (``source`` and the line number say which).
    """
    answers: list[dict[str, Any]] = []
    overflows: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise DocumentError(f"{source} line {n}: not JSON; expected a line of `tome cache export`.") from None
        kind = record.get("type") if isinstance(record, dict) else None
        if kind not in _REQUIRED:
            raise DocumentError(f"{source} line {n}: not a cache record (\"type\" must be answer or overflow).")
        missing = [f for f in _REQUIRED[kind] if record.get(f) in (None, "")]
        if missing:
            raise DocumentError(f"{source} line {n}: the {kind} record has no {', '.join(missing)}.")
        if kind == "answer":
            row = {f: record.get(f) for f in _ANSWER_FIELDS}
            for f in ("prompt_tokens", "completion_tokens", "cached_tokens"):
                row[f] = int(row[f] or 0)
            if row["messages"] is not None:
                row["messages"] = json.dumps(row["messages"], ensure_ascii=False)
            row["content_bytes"] = len(str(row["content"]).encode("utf-8"))  # what cache stats sums
            answers.append(row)
        else:
            overflows.append({f: record.get(f) for f in _OVERFLOW_FIELDS})
    added = 0
    try:
        with store.engine.begin() as conn:
            for row in answers:
                added += conn.execute(
                    text(
                        f"INSERT INTO cache ({', '.join(_ANSWER_FIELDS)}, content_bytes) VALUES "
                        f"({', '.join(':' + f for f in _ANSWER_FIELDS)}, :content_bytes) ON CONFLICT (key) DO NOTHING"
                    ),
                    row,
                ).rowcount or 0
            for row in overflows:
                conn.execute(
                    text(
                        f"INSERT INTO cache_overflow ({', '.join(_OVERFLOW_FIELDS)}) VALUES "
                        f"({', '.join(':' + f for f in _OVERFLOW_FIELDS)}) ON CONFLICT (key) DO NOTHING"
                    ),
                    row,
                )
    except SQLAlchemyError as exc:
        raise store_failure(store.url, "import into the cache", exc) from exc
    return ImportCounts(added=added, already=len(answers) - added, overflows=len(overflows))
