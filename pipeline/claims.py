"""Claims in the database, so no document and no call is done twice by processes sharing it.

A document is claimed (``document_claims``, keyed by content hash + options fingerprint) for as long as it is
summarised; a model call is claimed (``call_claims``, keyed by its cache key) while it is in flight. A process
that finds a claim held waits: for a call, until the answer is in the cache; for a document, until it is free
(its calls are then cached). Claims carry a lease that a heartbeat thread of the owning process renews; the
claims of a process that died lapse after ``lease_s`` and are taken over. Times are this machine's wall clock,
so machines sharing a database need clocks within a fraction of the lease (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import ConfigError, StoreError
from pipeline.utc import utc_stamp

log = logging.getLogger("tome.claims")

LEASE_S = 30.0  # a dead process's claims are taken over after this long
POLL_S = 0.2  # first re-check while waiting for another process; grows to MAX_POLL_S
MAX_POLL_S = 2.0

T = TypeVar("T")
LEASE_ENV = "TOME_CLAIM_LEASE_S"


def lease_from_env(env: Mapping[str, str]) -> float:
    """The claim lease in seconds: ``TOME_CLAIM_LEASE_S`` (every process sharing a database should agree)."""
    raw = env.get(LEASE_ENV, "").strip()
    try:
        value = float(raw) if raw else LEASE_S
    except ValueError:
        raise ConfigError(f"{LEASE_ENV} must be a number of seconds, not {raw!r}.") from None
    if value < 1:
        raise ConfigError(f"{LEASE_ENV} must be at least 1 second.")
    return value


class Claims:
    """This process's document and call claims on ``engine``; ``close()`` releases them and stops renewing.

    Args:
        engine: a migrated engine (``pipeline.db.make_engine``), shared by the processes to coordinate.
        lease_s: how long a claim lasts without renewal (renewed every ``lease_s / 3`` while held).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        lease_s: float = LEASE_S,
        poll_s: float = POLL_S,
        max_poll_s: float = MAX_POLL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.owner = uuid.uuid4().hex
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s
        self._clock = clock
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._lock = threading.Lock()
        self.waited_calls = 0  # calls answered by another process while this one waited

    def __repr__(self) -> str:
        return f"Claims(owner={self.owner[:8]}, lease_s={self.lease_s}, dialect={self.engine.dialect.name})"

    # -- documents ----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def document(self, key: str, *, document: str) -> AsyncIterator[None]:
        """Hold the claim on ``key`` for the block, waiting first while another live process holds it."""
        await self._wait_until(lambda: self.try_claim_document(key, document=document), lambda: None)
        try:
            yield
        finally:
            await asyncio.shield(asyncio.to_thread(self._release, "document_claims", key))

    def try_claim_document(self, key: str, *, document: str) -> bool:
        """Take ``key`` if nobody holds it or its holder's lease ran out."""
        return self._try_claim(
            "INSERT INTO document_claims (key, owner, document, lease_until, claimed_at) "
            "VALUES (:k, :o, :d, :l, :t) ON CONFLICT (key) DO UPDATE SET owner = :o, document = :d, "
            "lease_until = :l, claimed_at = :t WHERE document_claims.lease_until < :now",
            {"k": key, "d": document, "t": utc_stamp()},
        )

    # -- calls --------------------------------------------------------------------------------------------

    async def call(self, key: str, fetch: Callable[[], T | None]) -> T | None:
        """The answer another process got for ``key`` (waiting while it is in flight there), or None when this
        process now holds the call's claim and must make it, then ``release_call(key)``."""
        outcome = await self._wait_until(lambda: self.try_claim_call(key), fetch)
        if outcome is not None:
            return outcome
        answered = await asyncio.to_thread(fetch)  # it may have been answered just before we claimed it
        if answered is not None:
            # Answered by the process that held the claim until a moment ago: this one paid nothing either.
            self.waited_calls += 1
            await asyncio.to_thread(self.release_call, key)
        return answered

    def try_claim_call(self, key: str) -> bool:
        """Mark the call ``key`` in flight for this process, unless a live process has it in flight."""
        return self._try_claim(
            "INSERT INTO call_claims (key, owner, lease_until) VALUES (:k, :o, :l) "
            "ON CONFLICT (key) DO UPDATE SET owner = :o, lease_until = :l WHERE call_claims.lease_until < :now",
            {"k": key},
        )

    def release_call(self, key: str) -> None:
        """The call is answered (or failed): others may now read the cache, or ask themselves."""
        self._release("call_claims", key)

    # -- common -------------------------------------------------------------------------------------------

    async def _wait_until(self, claim: Callable[[], bool], fetch: Callable[[], T | None]) -> T | None:
        delay = self.poll_s
        while True:
            if await asyncio.to_thread(claim):
                return None
            await asyncio.sleep(delay)
            delay = min(self.max_poll_s, delay * 1.5)
            found = await asyncio.to_thread(fetch)
            if found is not None:
                self.waited_calls += 1
                return found

    def _try_claim(self, sql: str, params: dict[str, object]) -> bool:
        now = self._clock()
        try:
            with self.engine.begin() as conn:
                taken = conn.execute(text(sql), {**params, "o": self.owner, "l": now + self.lease_s, "now": now})
        except SQLAlchemyError as exc:
            raise StoreError(f"Could not record a claim in the database: {exc.__class__.__name__}.") from exc
        if taken.rowcount == 1:
            self._ensure_heartbeat()
            return True
        return False

    def _release(self, table: str, key: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(text(f"DELETE FROM {table} WHERE key = :k AND owner = :o"), {"k": key, "o": self.owner})
        except SQLAlchemyError as exc:  # the lease then lapses by itself
            log.warning("Could not release a claim: %s", exc.__class__.__name__)

    def renew(self) -> None:
        """Extend every claim this process holds by a full lease."""
        until = self._clock() + self.lease_s
        with self.engine.begin() as conn:
            for table in ("document_claims", "call_claims"):
                conn.execute(
                    text(f"UPDATE {table} SET lease_until = :l WHERE owner = :o"), {"l": until, "o": self.owner}
                )

    def _ensure_heartbeat(self) -> None:
        with self._lock:
            if self._heartbeat is None and not self._stop.is_set():
                self._heartbeat = threading.Thread(target=self._beat, name="tome-claims-heartbeat", daemon=True)
                self._heartbeat.start()

    def _beat(self) -> None:
        # A thread, not a task: a busy event loop (a long PDF parse) must not let live claims lapse.
        while not self._stop.wait(self.lease_s / 3):
            try:
                self.renew()
            except SQLAlchemyError as exc:
                log.warning("Could not renew claims (they lapse in %.0f s): %s", self.lease_s, exc.__class__.__name__)

    def close(self) -> None:
        """Stop renewing and release whatever this process still holds."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        try:
            with self.engine.begin() as conn:
                for table in ("document_claims", "call_claims"):
                    conn.execute(text(f"DELETE FROM {table} WHERE owner = :o"), {"o": self.owner})
        except SQLAlchemyError as exc:
            log.warning("Could not release claims at exit: %s", exc.__class__.__name__)
