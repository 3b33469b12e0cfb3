"""A damaged SQLite database: salvage what can still be read into a fresh file, or move the file aside.

SQLite keeps rows in B-tree pages; a damaged page hides its rows but not the others. ``repair_sqlite`` copies
every row it can read, table by table (whole tables first, then rowid blocks, then single rows around a bad
page), into a freshly migrated file, keeps the damaged one beside it and puts the new one in its place.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.db import make_engine

_BLOCK = 256
_UNKNOWN_MAX_ROWID = 1 << 20
_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class RepairReport:
    """What a repair salvaged (rows per table) and where the damaged file now lies."""

    path: Path
    damaged_copy: Path
    salvaged: dict[str, int] = field(default_factory=dict)
    unreadable: bool = False  # not even the table list could be read: nothing was salvaged


def move_aside(path: Path) -> Path:
    """Rename the database file (and its WAL/SHM files) to ``<name>.damaged-<UTC time>``; returns the new path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(aside)
    for suffix in _SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(aside.with_name(aside.name + suffix))
    return aside


def repair_sqlite(path: Path) -> RepairReport:
    """Copy every readable row of the SQLite file at ``path`` into a fresh database that replaces it."""
    fresh = path.with_name(f".{path.name}.repairing")
    for stale in (fresh, *(fresh.with_name(fresh.name + s) for s in _SIDE_FILES)):
        stale.unlink(missing_ok=True)
    make_engine(f"sqlite:///{fresh}").dispose()  # the current schema, migrated
    salvaged: dict[str, int] = {}
    unreadable = False
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(fresh)
    try:
        try:
            source.execute("SELECT name FROM sqlite_master").fetchall()
        except sqlite3.DatabaseError:
            unreadable = True
        tables = [row[0] for row in target.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            if unreadable or table == "tome_migrations" or table.startswith("sqlite_"):
                continue
            columns = [row[1] for row in target.execute(f'PRAGMA table_info("{table}")')]
            try:
                present = {row[1] for row in source.execute(f'PRAGMA table_info("{table}")')}
            except sqlite3.DatabaseError:
                continue
            common = [c for c in columns if c in present]
            if not common:
                continue
            rows = _readable_rows(source, table, common)
            names = ", ".join(f'"{c}"' for c in common)
            marks = ", ".join("?" for _ in common)
            target.executemany(f'INSERT OR IGNORE INTO "{table}" ({names}) VALUES ({marks})', rows)
            salvaged[table] = len(rows)
        target.commit()
    finally:
        source.close()
        target.close()
    aside = move_aside(path)
    fresh.rename(path)
    for suffix in _SIDE_FILES:
        side = fresh.with_name(fresh.name + suffix)
        if side.exists():
            side.rename(path.with_name(path.name + suffix))
    return RepairReport(path=path, damaged_copy=aside, salvaged=salvaged, unreadable=unreadable)


def _readable_rows(source: sqlite3.Connection, table: str, columns: list[str]) -> list[tuple[object, ...]]:
    """Every row of ``table`` that can be read: the whole table, else block by block, else row by row."""
    names = ", ".join(f'"{c}"' for c in columns)
    try:
        return source.execute(f'SELECT {names} FROM "{table}"').fetchall()
    except sqlite3.DatabaseError:
        pass
    try:
        top = source.execute(f'SELECT max(rowid) FROM "{table}"').fetchone()[0] or 0
    except sqlite3.DatabaseError:
        top = _UNKNOWN_MAX_ROWID
    rows: list[tuple[object, ...]] = []
    query = f'SELECT {names} FROM "{table}" WHERE rowid BETWEEN ? AND ?'
    for low in range(0, top + 1, _BLOCK):
        try:
            rows += source.execute(query, (low, low + _BLOCK - 1)).fetchall()
        except sqlite3.DatabaseError:
            for rowid in range(low, low + _BLOCK):
                try:
                    rows += source.execute(query, (rowid, rowid)).fetchall()
                except sqlite3.DatabaseError:
                    continue
    return rows
