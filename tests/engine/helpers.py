"""Real target databases for engine tests: a table of items with a write counter that a
trigger bumps inside the writing transaction, so "applied exactly once" is observable."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text

SQLITE_DDL = [
    """CREATE TABLE items (
         id INTEGER PRIMARY KEY,
         name TEXT NOT NULL,
         amount NUMERIC(10, 2) NOT NULL CHECK (amount >= 0),
         note TEXT,
         seen_at TIMESTAMP)""",
    "CREATE TABLE writes (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    """CREATE TRIGGER items_upd AFTER UPDATE ON items BEGIN
         INSERT INTO writes VALUES (NEW.id, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1; END""",
    """CREATE TRIGGER items_ins AFTER INSERT ON items BEGIN
         INSERT INTO writes VALUES (NEW.id, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1; END""",
    """CREATE TRIGGER items_del AFTER DELETE ON items BEGIN
         INSERT INTO writes VALUES (OLD.id, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1; END""",
]

PG_DDL = [
    """CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
         amount NUMERIC(10, 2) NOT NULL CHECK (amount >= 0), note TEXT, seen_at TIMESTAMP)""",
    "CREATE TABLE writes (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    """CREATE FUNCTION count_write() RETURNS trigger AS $$ BEGIN
         INSERT INTO writes VALUES (COALESCE(NEW.id, OLD.id), 1)
         ON CONFLICT (id) DO UPDATE SET n = writes.n + 1; RETURN NULL; END $$
       LANGUAGE plpgsql""",
    """CREATE TRIGGER items_w AFTER INSERT OR UPDATE OR DELETE ON items
         FOR EACH ROW EXECUTE FUNCTION count_write()""",
]

MARIADB_DDL = [
    """CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL,
         amount DECIMAL(10, 2) NOT NULL CHECK (amount >= 0), note TEXT, seen_at DATETIME(6))""",
    "CREATE TABLE writes (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    """CREATE TRIGGER items_u AFTER UPDATE ON items FOR EACH ROW
         INSERT INTO writes VALUES (NEW.id, 1) ON DUPLICATE KEY UPDATE n = n + 1""",
    """CREATE TRIGGER items_i AFTER INSERT ON items FOR EACH ROW
         INSERT INTO writes VALUES (NEW.id, 1) ON DUPLICATE KEY UPDATE n = n + 1""",
    """CREATE TRIGGER items_d AFTER DELETE ON items FOR EACH ROW
         INSERT INTO writes VALUES (OLD.id, 1) ON DUPLICATE KEY UPDATE n = n + 1""",
]


def seed_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"item {i}",
            "amount": str(Decimal(i % 997) + Decimal("0.50")),
            "note": None if i % 7 == 0 else f"note {i}",
            "seen_at": f"2026-11-{1 + i % 27:02d} 10:{i % 60:02d}:00",
        }
        for i in range(1, n + 1)
    ]


def make_items(url: str, n: int) -> None:
    """Create ``items`` (n rows) and the write counter on a real database."""
    ddl = SQLITE_DDL if url.startswith("sqlite") else PG_DDL if "postgres" in url else MARIADB_DDL
    engine = create_engine(url)
    with engine.begin() as conn:
        for stmt in ddl:
            conn.exec_driver_sql(stmt)
        if n:
            conn.execute(
                text("INSERT INTO items VALUES (:id, :name, :amount, :note, :seen_at)"),
                seed_rows(n),
            )
        conn.execute(text("DELETE FROM writes"))
    engine.dispose()


def dump(url: str, table: str = "items") -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
    engine.dispose()
    return rows


def sqlite_dump(path: Path) -> list[tuple[Any, ...]]:
    """Raw values with their storage classes: byte-for-byte comparison on SQLite."""
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT id, name, typeof(name), amount, typeof(amount), note, typeof(note), "
        "seen_at, typeof(seen_at) FROM items ORDER BY id"
    ).fetchall()
    conn.close()
    return rows


def write_counts(url: str) -> dict[int, int]:
    return {int(r[0]): int(r[1]) for r in dump(url, "writes")}


def changeset_doc(
    url: str,
    *,
    name: str = "items-batch",
    version: int = 1,
    updates: range = range(1, 1),
    inserts: range = range(0),
    deletes: range = range(0),
    segment_size: int = 10,
    **options: Any,
) -> dict[str, Any]:
    ops: list[dict[str, Any]] = [
        {"op": "update", "key": {"id": i}, "set": {"amount": f"{i % 500}.25", "note": "v2"}}
        for i in updates
    ]
    ops += [
        {
            "op": "insert",
            "row": {
                "id": i,
                "name": f"new {i}",
                "amount": "1.00",
                "note": None,
                "seen_at": "2026-11-27 12:00:00",
            },
        }
        for i in inserts
    ]
    ops += [{"op": "delete", "key": {"id": i}} for i in deletes]
    return {
        "changeset": name,
        "version": version,
        "automation": "test:suite",
        "target": url,
        "options": {"segment_size": segment_size, **options},
        "steps": [{"name": "items", "table": "items", "key": ["id"], "operations": ops}],
    }


def write_changeset(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def backout(journal: Path, *args: str, user: str = "killer") -> subprocess.Popen[bytes]:
    """A real ``backout`` process on ``journal`` (the kill tests SIGKILL it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "console", "--journal", str(journal), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "BACKOUT_USER": user},
    )


def finish(journal: Path, next_args: Callable[[], Sequence[str]], timeout: float = 180) -> str:
    """Run ``backout *next_args()`` until it exits 0 (at most 5 times, as an operator
    would); '' when it did, else the last stderr."""
    err = b""
    for _ in range(5):
        proc = backout(journal, *next_args())
        _out, err = proc.communicate(timeout=timeout)
        if proc.returncode == 0:
            return ""
    return err.decode() or "no error output"
