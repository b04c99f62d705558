"""Aggregates pushed down to SQLite are exact: SQLite sums REALs in floating point and raises
on integer overflow, so sums are taken as proven scaled integers, with Python adding what SQL
cannot prove. Values chosen so that SQLite's own SUM is wrong."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from console.reconcile.sqlio import TableRef, table_aggregates
from console.targets.types import ColumnInfo, TableInfo

DDL = """CREATE TABLE t (id INTEGER PRIMARY KEY, grp TEXT, price NUMERIC(10, 2), w REAL,
big INTEGER, loose NUMERIC)"""
INFO = TableInfo(
    "t",
    {
        "id": ColumnInfo("id", "int", False, True),
        "grp": ColumnInfo("grp", "text", True, False),
        "price": ColumnInfo("price", "decimal", True, False, 2),
        "w": ColumnInfo("w", "float", True, False),
        "big": ColumnInfo("big", "int", True, False),
        "loose": ColumnInfo("loose", "decimal", True, False),
    },
    ("id",),
)
NUMERIC = ["price", "w", "big", "loose"]


def _rows() -> list[tuple[int, str, str, float, int, str]]:
    rows = []
    for i in range(1, 2001):
        grp = "a" if i % 2 else "b"
        price = "0.10" if i % 3 else "1.005"  # more places than declared on a third
        big = 2**62 if i <= 4 else i  # four of them overflow a 64-bit SUM
        loose = "0.1" if i % 5 else "12345.6789"
        rows.append((i, grp, price, 0.1, big, loose))
    return rows


def _db(tmp_path: Path) -> sa.Engine:
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path)
    conn.execute(DDL)
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", _rows())
    conn.commit()
    conn.close()
    return sa.create_engine(f"sqlite:///{path}")


def _want(group: str | None) -> dict[str, Decimal]:
    rows = [r for r in _rows() if group is None or r[1] == group]
    return {
        "price": sum((Decimal(r[2]) for r in rows), Decimal(0)),
        "w": sum((Decimal(repr(r[3])) for r in rows), Decimal(0)),
        "big": Decimal(sum(r[4] for r in rows)),
        "loose": sum((Decimal(r[5]) for r in rows), Decimal(0)),
    }


def _check(got: dict[str, str], want: dict[str, Decimal]) -> None:
    """Exact for integers and decimals; a float column's sum is a float sum (the aggregate
    check compares it with a relative tolerance of 1e-9)."""
    assert {c: Decimal(v) for c, v in got.items() if c != "w"} == {
        c: v for c, v in want.items() if c != "w"
    }
    assert abs(Decimal(got["w"]) - want["w"]) <= Decimal("1e-9") * want["w"]


def test_sqlite_float_sums_are_wrong_ours_are_exact(tmp_path: Path) -> None:
    engine = _db(tmp_path)
    with engine.connect() as conn:
        naive = conn.exec_driver_sql("SELECT total(price), total(big), total(loose) FROM t").one()
        want = _want(None)
        # the premise: SQLite's own sums are not exact for these values
        assert [Decimal(repr(v)) for v in naive] != [want["price"], want["big"], want["loose"]]
        (whole,) = table_aggregates(conn, INFO, TableRef("t"), NUMERIC).values()
        assert whole.count == 2000
        _check(whole.sums, want)
        grouped = table_aggregates(conn, INFO, TableRef("t"), NUMERIC, group_by="grp")
        assert set(grouped) == {("a",), ("b",)}
        for (g,), agg in grouped.items():
            _check(agg.sums, _want(g))
    engine.dispose()


def test_exact_sums_keep_the_declared_scale(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute(DDL)
    conn.executemany(
        "INSERT INTO t VALUES (?, 'a', ?, NULL, 1, NULL)", [(i, "0.10") for i in range(1, 11)]
    )
    conn.commit()
    conn.close()
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as c:
        (whole,) = table_aggregates(c, INFO, TableRef("t"), NUMERIC).values()
    engine.dispose()
    assert whole.sums == {"price": "1.00", "w": "0.0", "big": "10", "loose": "0"}
