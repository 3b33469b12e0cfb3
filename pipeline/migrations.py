"""tome's schema: an append-only list of named migrations, applied once each, in order, by ``migrate``.

Opening a database always migrates (``pipeline.db.make_engine``); processes racing to open a fresh one
are serialised, and each migration is recorded in ``tome_migrations``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, inspect, text

# Append-only: never edit or reorder a migration that has shipped; add a new one.
MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = []


def migration(name: str) -> Callable[[Callable[[Connection], None]], Callable[[Connection], None]]:
    """Register a named schema migration (applied once, in registration order)."""

    def register(fn: Callable[[Connection], None]) -> Callable[[Connection], None]:
        MIGRATIONS.append((name, fn))
        return fn

    return register


@migration("m001_initial")
def _m001_initial(conn: Connection) -> None:
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS cache (
                key TEXT PRIMARY KEY,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                prompt_version TEXT NOT NULL,
                content TEXT NOT NULL,
                finish_reason TEXT,
                prompt_tokens INTEGER NOT NULL DEFAULT 0,
                completion_tokens INTEGER NOT NULL DEFAULT 0,
                cached_tokens INTEGER NOT NULL DEFAULT 0,
                request_id TEXT,
                latency_s REAL,
                created_at TEXT NOT NULL
            )"""
        )
    )
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS runs (
                id TEXT PRIMARY KEY,
                document TEXT NOT NULL,
                document_hash TEXT NOT NULL,
                settings TEXT NOT NULL,
                status TEXT NOT NULL,
                started_at TEXT NOT NULL,
                finished_at TEXT,
                calls INTEGER NOT NULL DEFAULT 0,
                cached_calls INTEGER NOT NULL DEFAULT 0,
                prompt_tokens INTEGER NOT NULL DEFAULT 0,
                completion_tokens INTEGER NOT NULL DEFAULT 0,
                cost REAL NOT NULL DEFAULT 0,
                error TEXT
            )"""
        )
    )
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS token_ledger (
                account TEXT NOT NULL,
                day TEXT NOT NULL,
                admitted_tokens INTEGER NOT NULL DEFAULT 0,
                used_tokens INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (account, day)
            )"""
        )
    )


@migration("m002_engine_cache_hits_overflow")
def _m002_engine_cache_hits_overflow(conn: Connection) -> None:
    # hits: cache_stats reports tokens saved; cache_overflow: context-length rejections, so reruns split at once.
    # Idempotent: two processes opening a fresh database may both run it.
    if "hits" not in {c["name"] for c in inspect(conn).get_columns("cache")}:
        conn.execute(text("ALTER TABLE cache ADD COLUMN hits INTEGER NOT NULL DEFAULT 0"))
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS cache_overflow (
                key TEXT PRIMARY KEY,
                model TEXT NOT NULL,
                limit_tokens INTEGER,
                requested_tokens INTEGER,
                created_at TEXT NOT NULL
            )"""
        )
    )
    conn.execute(text("CREATE INDEX IF NOT EXISTS runs_started_at ON runs (started_at)"))


@migration("m003_budget")
def _m003_budget(conn: Connection) -> None:
    # The shared rate budget (pipeline/budget/sql.py). Times are wall-clock epoch seconds; DOUBLE PRECISION
    # because PostgreSQL's REAL is single precision. One budget_accounts row per provider account is the lock
    # every admission takes, and holds the state learnt from 429s (pause, per-axis scales).
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS budget_accounts (
                account TEXT PRIMARY KEY,
                paused_until DOUBLE PRECISION NOT NULL DEFAULT 0,
                scale_concurrency DOUBLE PRECISION NOT NULL DEFAULT 1,
                scale_rpm DOUBLE PRECISION NOT NULL DEFAULT 1,
                scale_tpm DOUBLE PRECISION NOT NULL DEFAULT 1,
                guard_concurrency DOUBLE PRECISION NOT NULL DEFAULT 0,
                guard_rpm DOUBLE PRECISION NOT NULL DEFAULT 0,
                guard_tpm DOUBLE PRECISION NOT NULL DEFAULT 0,
                quota_day TEXT
            )"""
        )
    )
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS budget_admissions (
                id TEXT PRIMARY KEY,
                account TEXT NOT NULL,
                admitted_at DOUBLE PRECISION NOT NULL,
                tokens INTEGER NOT NULL,
                lease_until DOUBLE PRECISION
            )"""
        )
    )
    conn.execute(
        text("CREATE INDEX IF NOT EXISTS budget_admissions_account_time ON budget_admissions (account, admitted_at)")
    )


@migration("m004_budget_caps")
def _m004_budget_caps(conn: Connection) -> None:
    # The highest share of each configured limit the shared budget may recover to: set when a 429 names the
    # account's real limit, so the shared budget, like the in-process one, never climbs back above it.
    for axis in ("concurrency", "rpm", "tpm"):
        conn.execute(text(f"ALTER TABLE budget_accounts ADD COLUMN cap_{axis} DOUBLE PRECISION NOT NULL DEFAULT 1"))


@migration("m005_eval")
def _m005_eval(conn: Connection) -> None:
    # `tome eval`: one eval_runs row per evaluation (with the settings that produced it, so two can be
    # compared), one eval_results row per item and system (tome and the baselines).
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS eval_runs (
                id TEXT PRIMARY KEY,
                dataset TEXT NOT NULL,
                dataset_sha256 TEXT NOT NULL,
                fields TEXT NOT NULL,
                settings TEXT NOT NULL,
                items INTEGER NOT NULL,
                status TEXT NOT NULL,
                started_at TEXT NOT NULL,
                finished_at TEXT
            )"""
        )
    )
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS eval_results (
                run_id TEXT NOT NULL,
                item_id TEXT NOT NULL,
                system TEXT NOT NULL,
                rouge1 DOUBLE PRECISION,
                rouge2 DOUBLE PRECISION,
                rouge_l DOUBLE PRECISION,
                length INTEGER NOT NULL DEFAULT 0,
                reference_length DOUBLE PRECISION NOT NULL DEFAULT 0,
                calls INTEGER NOT NULL DEFAULT 0,
                cached_calls INTEGER NOT NULL DEFAULT 0,
                prompt_tokens INTEGER NOT NULL DEFAULT 0,
                completion_tokens INTEGER NOT NULL DEFAULT 0,
                cost DOUBLE PRECISION NOT NULL DEFAULT 0,
                coherence DOUBLE PRECISION,
                summary TEXT NOT NULL DEFAULT '',
                error TEXT,
                PRIMARY KEY (run_id, item_id, system)
            )"""
        )
    )
    conn.execute(text("CREATE INDEX IF NOT EXISTS eval_runs_started_at ON eval_runs (started_at)"))


@migration("m006_cli_prompts_run_calls")
def _m006_cli_prompts_run_calls(conn: Connection) -> None:
    # `tome runs show`: the exact prompt of each cached answer (cache.messages, JSON; never a key: prompts hold
    # only the document and the instructions), and every request a run made or read from the cache, by node.
    if "messages" not in {c["name"] for c in inspect(conn).get_columns("cache")}:
        conn.execute(text("ALTER TABLE cache ADD COLUMN messages TEXT"))
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS run_calls (
                run_id TEXT NOT NULL,
                level INTEGER NOT NULL,
                node INTEGER NOT NULL,
                seq INTEGER NOT NULL,
                key TEXT NOT NULL,
                kind TEXT NOT NULL,
                prompt_version TEXT NOT NULL,
                outcome TEXT NOT NULL,
                cached INTEGER NOT NULL DEFAULT 0,
                finish_reason TEXT,
                prompt_tokens INTEGER NOT NULL DEFAULT 0,
                completion_tokens INTEGER NOT NULL DEFAULT 0,
                cost DOUBLE PRECISION NOT NULL DEFAULT 0,
                PRIMARY KEY (run_id, level, node, seq)
            )"""
        )
    )


@migration("m007_portable_claims_spending")
def _m007_portable_claims_spending(conn: Connection) -> None:
    # Portable SQL on SQLite and PostgreSQL alike: the cache stores each answer's size in bytes (stats need no
    # dialect's byte-length function), eval results carry their insertion order (no rowid), and the claims
    # tables (pipeline/claims.py) let workers share documents and calls without doing one twice.
    columns = {c["name"] for c in inspect(conn).get_columns("cache")}
    if "content_bytes" not in columns:
        conn.execute(text("ALTER TABLE cache ADD COLUMN content_bytes INTEGER"))
    rows = conn.execute(text("SELECT key, content FROM cache WHERE content_bytes IS NULL")).all()
    for key, content in rows:
        conn.execute(
            text("UPDATE cache SET content_bytes = :b WHERE key = :k"), {"b": len(content.encode("utf-8")), "k": key}
        )
    if "seq" not in {c["name"] for c in inspect(conn).get_columns("eval_results")}:
        conn.execute(text("ALTER TABLE eval_results ADD COLUMN seq BIGINT"))
    if conn.dialect.name == "sqlite":
        conn.execute(text("UPDATE eval_results SET seq = rowid WHERE seq IS NULL"))  # keep the old order
    conn.execute(text("CREATE INDEX IF NOT EXISTS eval_runs_started_at_id ON eval_runs (started_at, id)"))
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS document_claims (
                key TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                document TEXT NOT NULL,
                lease_until DOUBLE PRECISION NOT NULL,
                claimed_at TEXT NOT NULL
            )"""
        )
    )
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS call_claims (
                key TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                lease_until DOUBLE PRECISION NOT NULL
            )"""
        )
    )
    conn.execute(text("CREATE INDEX IF NOT EXISTS document_claims_owner ON document_claims (owner)"))
    conn.execute(text("CREATE INDEX IF NOT EXISTS call_claims_owner ON call_claims (owner)"))
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS spending (
                scope TEXT PRIMARY KEY,
                cap DOUBLE PRECISION NOT NULL,
                spent DOUBLE PRECISION NOT NULL DEFAULT 0,
                reserved DOUBLE PRECISION NOT NULL DEFAULT 0,
                currency TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )"""
        )
    )


@migration("m008_run_owner_process")
def _m008_run_owner_process(conn: Connection) -> None:
    # The process that runs a run (pid on host), so a run left "running" by a killed process shows as
    # "interrupted" once that process is gone.
    columns = {c["name"] for c in inspect(conn).get_columns("runs")}
    if "owner_pid" not in columns:
        conn.execute(text("ALTER TABLE runs ADD COLUMN owner_pid INTEGER"))
    if "owner_host" not in columns:
        conn.execute(text("ALTER TABLE runs ADD COLUMN owner_host TEXT"))


@migration("m009_run_calls_inputs")
def _m009_run_calls_inputs(conn: Connection) -> None:
    # `tome runs show` draws the tree: which nodes of the level below (or which chunk) each node summarised.
    if "inputs" not in {c["name"] for c in inspect(conn).get_columns("run_calls")}:
        conn.execute(text("ALTER TABLE run_calls ADD COLUMN inputs TEXT"))
@migration("m010_server_windows")
def _m010_server_windows(conn: Connection) -> None:
    # The window a server turned out to run a model with (learned from its refusals or silent cuts), so later
    # runs against the same server start with it instead of the configured one.
    conn.execute(
        text(
            """CREATE TABLE IF NOT EXISTS server_windows (
                model TEXT NOT NULL,
                base_url TEXT NOT NULL,
                context_tokens INTEGER NOT NULL,
                learned_at TEXT NOT NULL,
                PRIMARY KEY (model, base_url)
            )"""
        )
    )
    # How many pieces an overflowing call was split into: reruns split it the same way without asking.
    if "pieces" not in {c["name"] for c in inspect(conn).get_columns("cache_overflow")}:
        conn.execute(text("ALTER TABLE cache_overflow ADD COLUMN pieces INTEGER"))


def _applied(conn: Connection) -> set[str]:
    conn.execute(text("CREATE TABLE IF NOT EXISTS tome_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"))
    return {row[0] for row in conn.execute(text("SELECT name FROM tome_migrations"))}


# pg_advisory_xact_lock key that serialises tome's migrations on one PostgreSQL database ("tome" in ASCII).
MIGRATION_LOCK_KEY = 0x746F6D65


def _lock_for_migration(conn: Connection) -> None:
    """Serialise migrating processes: SQLite takes the write lock, PostgreSQL a transaction advisory lock.

    Without it, processes opening a fresh database together race on CREATE TABLE (PostgreSQL answers
    UniqueViolation on its catalog) and may apply one migration twice.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})


def _pending(engine: Engine) -> bool:
    """Whether any migration is unrecorded (a lock-free read, so opening a current database costs no lock)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("tome_migrations"):
            return True
        done = {row[0] for row in conn.execute(text("SELECT name FROM tome_migrations"))}
    return any(name not in done for name, _ in MIGRATIONS)


def migrate(engine: Engine) -> None:
    """Apply every registered migration not yet recorded in ``tome_migrations`` (safe for racing processes)."""
    if not _pending(engine):
        return
    with engine.begin() as conn:
        _lock_for_migration(conn)
        done = _applied(conn)
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            fn(conn)
            conn.execute(
                text("INSERT INTO tome_migrations (name, applied_at) VALUES (:n, :t)"),
                {"n": name, "t": datetime.now(UTC).isoformat()},
            )
