"""The runs table: one row per summarisation run (settings, running totals, status), read back live.

``Store`` inherits these methods; it owns the engine. A run still marked running whose process on this
machine is gone reads as "interrupted".
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.db import store_failure
from pipeline.errors import StoreError
from pipeline.processes import process_alive
from pipeline.utc import utc_stamp

RUN_STATUSES = ("running", "done", "failed", "quota", "interrupted")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One summarisation run as recorded."""

    id: str
    document: str
    document_hash: str
    settings: dict[str, Any]
    status: str
    started_at: str
    finished_at: str | None
    calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    error: str | None


class RunRecords:
    """Start, update, finish and read run records in the database at ``url`` through ``engine``."""

    url: str
    engine: Engine

    def _fail(self, action: str, exc: SQLAlchemyError) -> StoreError:
        return store_failure(self.url, action, exc)

    def start_run(self, *, document: str, document_hash: str, settings: dict[str, Any]) -> str:
        """Record a new run (status "running"); returns its id."""
        run_id = uuid.uuid4().hex
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO runs (id, document, document_hash, settings, status, started_at, "
                        "owner_pid, owner_host) VALUES (:i, :d, :h, :s, 'running', :t, :pid, :host)"
                    ),
                    {
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "i": run_id,
                        "d": document,
                        "h": document_hash,
                        "s": json.dumps(settings, sort_keys=True, default=str),
                        "t": utc_stamp(),
                    },
                )
        except SQLAlchemyError as exc:
            raise self._fail("record the run", exc) from exc
        return run_id

    def update_run(
        self,
        run_id: str,
        *,
        calls: int,
        cached_calls: int,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
    ) -> None:
        """Store a run's running totals."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE runs SET calls = :c, cached_calls = :cc, prompt_tokens = :pt, "
                        "completion_tokens = :ct, cost = :cost WHERE id = :i"
                    ),
                    {
                        "i": run_id,
                        "c": calls,
                        "cc": cached_calls,
                        "pt": prompt_tokens,
                        "ct": completion_tokens,
                        "cost": cost,
                    },
                )
        except SQLAlchemyError as exc:
            raise self._fail("update the run", exc) from exc

    def finish_run(self, run_id: str, *, status: str, error: str | None = None) -> None:
        """Close a run: done | failed | quota | interrupted."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text("UPDATE runs SET status = :s, error = :e, finished_at = :t WHERE id = :i"),
                    {"i": run_id, "s": status, "e": error, "t": utc_stamp()},
                )
        except SQLAlchemyError as exc:
            raise self._fail("finish the run", exc) from exc

    def get_run(self, run_id: str) -> RunRecord | None:
        """One run by id."""
        rows = self._runs("WHERE id = :i", {"i": run_id}, 1)
        return rows[0] if rows else None

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The most recent runs, newest first."""
        return self._runs("", {}, limit)

    def _runs(self, where: str, params: dict[str, Any], limit: int) -> list[RunRecord]:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT id, document, document_hash, settings, status, started_at, finished_at, calls, "
                        "cached_calls, prompt_tokens, completion_tokens, cost, error, owner_pid, owner_host FROM runs "
                        f"{where} ORDER BY started_at DESC, id DESC LIMIT :lim"
                    ),
                    {**params, "lim": limit},
                ).all()
        except SQLAlchemyError as exc:
            raise self._fail("read the runs", exc) from exc
        return [
            RunRecord(
                id=r.id,
                document=r.document,
                document_hash=r.document_hash,
                settings=json.loads(r.settings),
                status=_live_status(r.status, r.owner_pid, r.owner_host),
                started_at=r.started_at,
                finished_at=r.finished_at,
                calls=r.calls,
                cached_calls=r.cached_calls,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens,
                cost=r.cost,
                error=r.error,
            )
            for r in rows
        ]


def _live_status(status: str, pid: int | None, host: str | None) -> str:
    """"interrupted" for a run still marked running whose process on this host is gone (killed, crashed)."""
    if status != "running" or pid is None or host != socket.gethostname():
        return status  # another machine's process cannot be checked from here
    return status if process_alive(pid) else "interrupted"
