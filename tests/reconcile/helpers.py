"""Real SQLite databases for the reconciliation tests: schemas, reflection, direct reads and
writes with the sqlite3 module (no mocks)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import types as sqltypes

from console.reconcile import pushdown as pd
from console.reconcile.scope import Scope
from console.targets.types import ColumnInfo, ColumnKind, Row, TableInfo

ITEMS = """
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL,
    price NUMERIC(10, 2),
    weight REAL,
    qty INTEGER NOT NULL DEFAULT 0,
    active BOOLEAN,
    updated_at DATETIME,
    email TEXT,
    note TEXT
)
"""
STOCK = """
CREATE TABLE stock (
    warehouse TEXT NOT NULL,
    sku TEXT NOT NULL,
    qty INTEGER NOT NULL,
    price NUMERIC(10, 2),
    PRIMARY KEY (warehouse, sku)
)
"""
LOOSE = "CREATE TABLE loose (id INTEGER, name TEXT, qty INTEGER)"  # no key enforced


def item(i: int, **over: Any) -> Row:
    row: Row = {
        "id": i,
        "sku": f"SKU-{i:04d}",
        "price": f"{10 + i % 7}.{i % 100:02d}",
        "weight": 1.0 + i / 8,
        "qty": i % 13,
        "active": i % 2,
        "updated_at": f"2026-01-01 10:{i % 60:02d}:00",
        "email": f"user{i}@example.org",
        "note": None if i % 3 else f"note {i}",
    }
    row.update(over)
    return row


def connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA synchronous = OFF")  # throwaway test files: no fsync per commit
    return conn


def copy_baseline(db: Path, base_db: Path, table: str) -> None:
    """A full-table baseline copy in another file, as ``pushdown.copy_table`` makes it."""
    engine = pd.sqlite_engine(str(db), {"b": str(base_db)})
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA b.synchronous = OFF")
        pd.copy_table(conn, pd.TableRef(table), pd.TableRef(table, "b"))
    engine.dispose()


def create(db: Path, ddl: str, table: str, rows: Iterable[Row] = ()) -> None:
    with connect(db) as conn:
        conn.execute(ddl)
        insert(conn, table, rows)
    conn.close()


def insert(conn: sqlite3.Connection, table: str, rows: Iterable[Row]) -> None:
    for r in rows:
        cols = ", ".join(r)
        marks = ", ".join("?" * len(r))
        conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(r.values()))


def execute(db: Path, sql: str, params: Sequence[Any] = ()) -> None:
    with connect(db) as conn:
        conn.execute(sql, params)
    conn.close()


def read(db: Path, table: str, order: str = "rowid") -> list[Row]:
    with connect(db) as conn:
        out = [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order}")]
    conn.close()
    return out


def by_key(rows: Iterable[Row], key: Sequence[str]) -> dict[tuple[Any, ...], Row]:
    return {tuple(r[k] for k in key): r for r in rows}


def _kind(type_: Any) -> ColumnKind:
    checks: list[tuple[type[Any], ColumnKind]] = [
        (sqltypes.Boolean, "bool"),
        (sqltypes.Integer, "int"),
        (sqltypes.Float, "float"),
        (sqltypes.Numeric, "decimal"),
        (sqltypes.DateTime, "datetime"),
        (sqltypes.Date, "date"),
        (sqltypes.Time, "time"),
        (sqltypes.LargeBinary, "bytes"),
        (sqltypes.JSON, "json"),
        (sqltypes.String, "text"),
    ]
    return next((kind for cls, kind in checks if isinstance(type_, cls)), "other")


def reflect(db: Path | str, table: str) -> TableInfo:
    """TableInfo of a real table (a SQLite file or a database URL), reflected with SQLAlchemy."""
    engine = sa.create_engine(db if isinstance(db, str) else f"sqlite:///{db}")
    insp = sa.inspect(engine)
    pk = tuple(insp.get_pk_constraint(table)["constrained_columns"] or ())
    cols = {}
    for c in insp.get_columns(table):
        kind = _kind(c["type"])
        scale = getattr(c["type"], "scale", None) if kind == "decimal" else None
        cols[c["name"]] = ColumnInfo(
            c["name"], kind, bool(c["nullable"]), c["name"] in pk, scale, type_name=str(c["type"])
        )
    engine.dispose()
    return TableInfo(table, cols, pk)


def write_expected(db: Path, table: str, key: Sequence[str], scope: Scope) -> None:
    """What the engine would have done: make every touched key equal to E."""
    with connect(db) as conn:
        for k in scope.touched:
            where = " AND ".join(f"{c} = ?" for c in key)
            conn.execute(f"DELETE FROM {table} WHERE {where}", list(k))
            row = scope.expected[k]
            if row is not None:
                insert(conn, table, [row])
    conn.close()
