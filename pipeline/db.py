"""The project's SQL database: one engine factory (SQLite in WAL mode by default, migrated on opening by
pipeline.migrations), its URL, and one-line messages for what goes wrong with it."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DatabaseError, SQLAlchemyError

from pipeline.config import tome_home
from pipeline.errors import ConfigError, DamagedDatabaseError, StoreError
from pipeline.migrations import migrate


def default_database_url() -> str:
    """``TOME_DATABASE_URL`` or a SQLite file in tome's state directory."""
    return os.environ.get("TOME_DATABASE_URL") or f"sqlite:///{tome_home() / 'tome.db'}"


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:  # DB-API connection: untyped by nature
    cur = dbapi_conn.cursor()
    # WAL lets readers and one writer work at once; busy_timeout makes concurrent writers wait, not fail.
    # busy_timeout first: switching a fresh file to WAL needs a lock another process may hold.
    cur.execute("PRAGMA busy_timeout=30000")
    # Switching a fresh file to WAL can answer "locked" at once (no busy handler) while another process
    # migrates it; WAL is persistent, so retry briefly until either we or it has switched.
    for attempt in range(600):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 599:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


POSTGRES_EXTRA_HINT = "PostgreSQL needs the psycopg driver: pip install 'tome[postgres]'."


def normalise_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` mean PostgreSQL through psycopg 3 (tome's driver)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def database_kind(url: str) -> str:
    """"SQLite", "PostgreSQL" or the URL's dialect name: how messages name the database in use."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL", "postgres": "PostgreSQL"}.get(scheme, scheme)


def make_engine(url: str | None = None) -> Engine:
    """An engine on ``url`` (default: tome's SQLite file), migrated to the current schema.

    Raises:
        ConfigError: the URL's driver is not installed (PostgreSQL: the ``tome[postgres]`` extra).
        StoreError: the database cannot be opened or migrated.
    """
    url = normalise_url(url or default_database_url())
    where = f"the {database_kind(url)} database at {engine_url_for_humans(url)}"
    try:
        engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    except ImportError as exc:
        if database_kind(url) == "PostgreSQL":
            raise ConfigError(f"{POSTGRES_EXTRA_HINT} ({where})") from None
        raise ConfigError(f"No driver for {where}: {exc.name or exc} is not installed.") from None
    except (SQLAlchemyError, ValueError) as exc:
        raise ConfigError(f"Invalid database URL for {where}: {exc.__class__.__name__}.") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        migrate(engine)
    except DatabaseError as exc:
        path = sqlite_path(url)
        if path is None or not is_damage(exc):
            engine.dispose()
            raise StoreError(f"Cannot open {where}: {exc.__class__.__name__}{failure_hint(engine.dialect.name, exc)}") from exc
        engine.dispose()
        raise DamagedDatabaseError(damaged_message(path, exc)) from None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"Cannot open {where}: {exc.__class__.__name__}{failure_hint(engine.dialect.name, exc)}") from exc
    return engine


def failure_hint(dialect: str, exc: SQLAlchemyError) -> str:
    """What to check, for the database actually in use (no SQLite advice for a PostgreSQL server)."""
    if dialect == "sqlite":
        return "; check the folder exists and the file is writable (not on a network share)."
    if dialect == "postgresql":
        if "connect" in str(exc).lower() or exc.__class__.__name__ == "OperationalError":
            return "; check the server is running, and the host, port, user and database in TOME_DATABASE_URL."
        return "; check the user may create tables in this database."
    return "."


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def is_damage(exc: BaseException) -> bool:
    """Whether a database error says the SQLite file itself is damaged (not locked, not missing)."""
    text = str(getattr(exc, "orig", exc)).lower()
    return any(sign in text for sign in ("not a database", "malformed", "disk image", "file is encrypted"))


def damaged_message(path: Path, exc: BaseException) -> str:
    """What to tell a user whose SQLite file is damaged: the file, the cause, and the two ways out."""
    cause = str(getattr(exc, "orig", exc)).splitlines()[0]
    return (
        f"The database {path} is damaged ({cause}). Run `tome cache repair` to copy every readable cached answer "
        f"and run into a fresh file (the damaged one is kept beside it), or move it aside "
        f"(mv {path} {path}.bad) to start empty."
    )



def engine_url_for_humans(url: str) -> str:
    """The URL with any password replaced, safe for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown without its credentials part
        return url.split("@")[-1]


def store_failure(url: str, action: str, exc: SQLAlchemyError) -> StoreError:
    """The one-line StoreError for a failed database ``action`` (no SQL, no password), naming the database
    in use and what to check for it."""
    path = sqlite_path(url)
    if path is not None and is_damage(exc):
        return DamagedDatabaseError(damaged_message(path, exc))
    kind = database_kind(url)
    hint = failure_hint("sqlite" if kind == "SQLite" else "postgresql" if kind == "PostgreSQL" else kind, exc)
    return StoreError(
        f"Could not {action} in the {kind} database at {engine_url_for_humans(url)} "
        f"({exc.__class__.__name__}){hint}"
    )
