"""The call cache, in SQL (SQLite in WAL mode by default) through SQLAlchemy; run records: pipeline.run_records.

Every model call is stored under :func:`cache_key` the moment it returns, so a rerun of a finished document
makes no calls and a killed run resumes without repeating any completed call. Two processes may write the
same database at once (WAL + busy_timeout + INSERT OR IGNORE-style upserts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.db import default_database_url, engine_url_for_humans, make_engine, normalise_url
from pipeline.llm.types import Completion, Message, Usage
from pipeline.run_records import RunRecords
from pipeline.utc import utc_stamp


def cache_key(
    *, provider: str, model: str, prompt_version: str, messages: Sequence[Message], params: dict[str, Any]
) -> str:
    """sha256 (hex) over everything that determines an answer: provider, model, prompt version, messages, params."""
    payload = {
        "provider": provider,
        "model": model,
        "prompt_version": prompt_version,
        # A partial (prefilled) message is marked; other keys are as before partial mode existed.
        "messages": [[m.role, m.content, *(["partial"] if m.partial else [])] for m in messages],
        "params": params,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedCompletion:
    """A stored answer and where it came from."""

    key: str
    provider: str
    model: str
    prompt_version: str
    completion: Completion
    created_at: str


@dataclass(frozen=True, slots=True)
class Overflow:
    """A call answered by splitting its input: the server rejected it as over the context (limit/requested
    given), or the engine predicted that (both None). Stored so that reruns split it without asking again."""

    key: str
    limit: int | None
    requested: int | None
    pieces: int = 2  # the pieces its input was split into (records from before pieces were stored: halves)


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What the cache holds."""

    entries: int
    bytes: int
    by_model: dict[str, int] = field(default_factory=dict)
    tokens_stored: int = 0  # prompt + completion tokens a rerun would not spend again
    tokens_saved: int = 0  # prompt + completion tokens cache hits have avoided so far
    hits: int = 0


def messages_json(messages: Sequence[Message]) -> str:
    """A prompt as stored beside its answer: ``[{"role": ..., "content": ...}, ...]``."""
    return json.dumps([m.as_dict() for m in messages], ensure_ascii=False)


class Store(RunRecords):
    """Owns the SQLAlchemy engine; every method is one short transaction.

    Here: the call cache (answers, context refusals, learned windows); the run records come from RunRecords.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = normalise_url(url or default_database_url())
        self.engine: Engine = make_engine(self.url)

    def __repr__(self) -> str:
        return f"Store({engine_url_for_humans(self.url)!r})"

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    # -- cache -------------------------------------------------------------------------------------------------

    def cache_get(self, key: str) -> CachedCompletion | None:
        """The stored answer for ``key`` (counting the hit), or None."""
        try:
            with self.engine.begin() as conn:
                row = conn.execute(
                    text(
                        "SELECT provider, model, prompt_version, content, finish_reason, prompt_tokens, "
                        "completion_tokens, cached_tokens, request_id, latency_s, created_at FROM cache WHERE key = :k"
                    ),
                    {"k": key},
                ).one_or_none()
                if row is None:
                    return None
                conn.execute(text("UPDATE cache SET hits = hits + 1 WHERE key = :k"), {"k": key})
        except SQLAlchemyError as exc:
            raise self._fail("read the cache", exc) from exc
        completion = Completion(
            content=row.content,
            finish_reason=row.finish_reason,
            usage=Usage(row.prompt_tokens, row.completion_tokens, row.cached_tokens),
            model=row.model,
            request_id=row.request_id,
            latency_s=row.latency_s or 0.0,
        )
        return CachedCompletion(key, row.provider, row.model, row.prompt_version, completion, row.created_at)

    def cache_put(
        self,
        key: str,
        *,
        provider: str,
        model: str,
        prompt_version: str,
        completion: Completion,
        messages: Sequence[Message] | None = None,
    ) -> None:
        """Store an answer (a concurrent writer of the same key wins; answers for one key are interchangeable).

        ``messages``, the exact prompt, is kept beside it for `tome runs show --call`.
        """
        params = {
            "k": key,
            "p": provider,
            "m": model,
            "v": prompt_version,
            "c": completion.content,
            "f": completion.finish_reason,
            "pt": completion.usage.prompt_tokens,
            "ct": completion.usage.completion_tokens,
            "xt": completion.usage.cached_tokens,
            "r": completion.request_id,
            "l": completion.latency_s,
            "t": utc_stamp(),
            "msg": messages_json(messages) if messages is not None else None,
            "b": len(completion.content.encode("utf-8")),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO cache (key, provider, model, prompt_version, content, finish_reason, "
                        "prompt_tokens, completion_tokens, cached_tokens, request_id, latency_s, created_at, "
                        "messages, content_bytes) VALUES (:k, :p, :m, :v, :c, :f, :pt, :ct, :xt, :r, :l, :t, :msg, :b) "
                        "ON CONFLICT (key) DO NOTHING"
                    ),
                    params,
                )
        except SQLAlchemyError as exc:
            raise self._fail("write the cache", exc) from exc

    def overflow_get(self, key: str) -> Overflow | None:
        """A stored context-length rejection for ``key``, or None."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    text("SELECT limit_tokens, requested_tokens, pieces FROM cache_overflow WHERE key = :k"),
                    {"k": key},
                ).one_or_none()
        except SQLAlchemyError as exc:
            raise self._fail("read the cache", exc) from exc
        if row is None:
            return None
        return Overflow(key, row.limit_tokens, row.requested_tokens, row.pieces or 2)

    def overflow_put(
        self, key: str, *, model: str, limit: int | None, requested: int | None, pieces: int = 2
    ) -> None:
        """Remember that ``key`` was rejected as over the model's context, and into how many pieces it was split."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO cache_overflow (key, model, limit_tokens, requested_tokens, pieces, created_at) "
                        "VALUES (:k, :m, :l, :r, :n, :t) ON CONFLICT (key) DO NOTHING"
                    ),
                    {"k": key, "m": model, "l": limit, "r": requested, "n": pieces, "t": utc_stamp()},
                )
        except SQLAlchemyError as exc:
            raise self._fail("write the cache", exc) from exc

    def window_get(self, model: str, base_url: str) -> int | None:
        """The window learned for ``model`` at ``base_url`` (prompt + completion tokens), or None."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    text("SELECT context_tokens FROM server_windows WHERE model = :m AND base_url = :u"),
                    {"m": model, "u": base_url},
                ).one_or_none()
        except SQLAlchemyError as exc:
            raise self._fail("read the learned windows", exc) from exc
        return None if row is None else int(row.context_tokens)

    def window_put(self, model: str, base_url: str, context_tokens: int) -> None:
        """Remember the window ``base_url`` runs ``model`` with; a smaller one replaces a larger one."""
        params = {"m": model, "u": base_url, "c": context_tokens, "t": utc_stamp()}
        try:
            with self.engine.begin() as conn:
                updated = conn.execute(
                    text(
                        "UPDATE server_windows SET context_tokens = :c, learned_at = :t "
                        "WHERE model = :m AND base_url = :u AND context_tokens > :c"
                    ),
                    params,
                ).rowcount
                if not updated:
                    conn.execute(
                        text(
                            "INSERT INTO server_windows (model, base_url, context_tokens, learned_at) "
                            "VALUES (:m, :u, :c, :t) ON CONFLICT (model, base_url) DO NOTHING"
                        ),
                        params,
                    )
        except SQLAlchemyError as exc:
            raise self._fail("record a learned window", exc) from exc

    def cache_stats(self) -> CacheStats:
        """Entries, bytes of stored text, entries per model, tokens stored and saved by hits."""
        try:
            with self.engine.connect() as conn:
                total = conn.execute(
                    text(
                        "SELECT COUNT(*), COALESCE(SUM(COALESCE(content_bytes, LENGTH(content))), 0), "
                        "COALESCE(SUM(prompt_tokens + completion_tokens), 0), "
                        "COALESCE(SUM(hits * (prompt_tokens + completion_tokens)), 0), COALESCE(SUM(hits), 0) "
                        "FROM cache"
                    )
                ).one()
                by_model: dict[str, int] = dict(conn.execute(text("SELECT model, COUNT(*) FROM cache GROUP BY model")).all())
        except SQLAlchemyError as exc:
            raise self._fail("read the cache", exc) from exc
        return CacheStats(
            entries=int(total[0]),
            bytes=int(total[1]),
            by_model={str(k): int(v) for k, v in by_model.items()},
            tokens_stored=int(total[2]),
            tokens_saved=int(total[3]),
            hits=int(total[4]),
        )

    def cache_clear(self, *, model: str | None = None) -> int:
        """Delete cached answers, refusals and learned windows (all, or one model's); returns the answers deleted."""
        where, params = ("WHERE model = :m", {"m": model}) if model else ("", {})
        try:
            with self.engine.begin() as conn:
                deleted = conn.execute(text(f"DELETE FROM cache {where}"), params).rowcount
                conn.execute(text(f"DELETE FROM cache_overflow {where}"), params)
                # Learned windows go too: clearing is how a user says the server has changed.
                conn.execute(text(f"DELETE FROM server_windows {where}"), params)
        except SQLAlchemyError as exc:
            raise self._fail("clear the cache", exc) from exc
        return int(deleted or 0)



def document_hash(text_: str) -> str:
    """sha256 (hex) of a document's normalised text (UTF-8), encoded a block at a time: no whole copy."""
    digest = hashlib.sha256()
    for start in range(0, len(text_), _HASH_BLOCK_CHARS):
        digest.update(text_[start : start + _HASH_BLOCK_CHARS].encode("utf-8"))
    return digest.hexdigest()


_HASH_BLOCK_CHARS = 1 << 20
