"""SQL pushdown: the same findings as the Python fallback, on real SQLite files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from console.reconcile import Change, Normalisers, Scope, intended_deltas, reconcile
from console.reconcile import pushdown as pd
from console.reconcile.pushdown import TableRef
from console.reconcile.report import Finding, Report
from tests.reconcile.helpers import (
    ITEMS,
    LOOSE,
    STOCK,
    by_key,
    connect,
    copy_baseline,
    create,
    insert,
    item,
    read,
    reflect,
    write_expected,
)


def comparable(report: Report) -> list[tuple[Any, ...]]:
    def one(f: Finding) -> tuple[Any, ...]:
        dups = sorted(repr(sorted(r.items())) for r in f.duplicates)
        return (
            repr(f.key),
            f.cls,
            tuple(f.columns),
            repr(f.before),
            repr(f.expected),
            repr(f.actual),
            f.op_no,
            tuple(dups),
            f.in_scope,
        )

    return sorted(one(f) for f in report.findings)


def both(
    db: Path,
    base_db: Path,
    table: str,
    scope: Scope,
    key: list[str],
    order: str,
    **kw: Any,
) -> tuple[Report, Report]:
    """(Python fallback over a full scan, pushdown) for the same data."""
    info = reflect(db, table)
    full = by_key(read(base_db, table, order), key)
    full.update(scope.baseline)
    python = reconcile(
        info,
        full,
        scope.expected,
        read(db, table, order),
        scope.touched,
        key_columns=key,
        full_baseline=True,
        **kw,
    )
    engine = pd.sqlite_engine(str(db), {"b": str(base_db)})
    try:
        pushed = pd.reconcile_pushdown(
            engine,
            info,
            TableRef(table),
            TableRef(table, "b"),
            scope.baseline,
            scope.expected,
            scope.touched,
            key_columns=key,
            **kw,
        )
    finally:
        engine.dispose()
    return python, pushed


@pytest.fixture
def items(tmp_path: Path) -> Iterator[tuple[Path, Path, Scope]]:
    db, base_db = tmp_path / "target.db", tmp_path / "baseline.db"
    create(db, ITEMS, "items", [item(i) for i in range(1, 301)])
    engine = pd.sqlite_engine(str(db), {"b": str(base_db)})
    with engine.begin() as sa_conn:
        assert pd.copy_table(sa_conn, TableRef("items"), TableRef("items", "b")) == 300
    engine.dispose()
    base = by_key(read(db, "items"), ["id"])
    scope = Scope.from_changes(
        [Change((i,), base[(i,)], {"qty": 1000 + i, "price": "1.25"}, i) for i in range(10, 60)]
        + [Change((i,), base[(i,)], None, i) for i in range(60, 70)]
        + [Change((i,), None, item(i), i) for i in range(400, 410)]
    )
    write_expected(db, "items", ["id"], scope)
    with connect(db) as conn:
        conn.execute("UPDATE items SET qty = -1 WHERE id IN (11, 12)")  # wrong_value
        conn.execute("UPDATE items SET updated_at = '2026-01-01T10:05:00' WHERE id = 5")
        conn.execute("UPDATE items SET email = 'x@y.z' WHERE id IN (100, 200)")  # collateral
        conn.execute("UPDATE items SET weight = weight + 0.0000001 WHERE id = 250")
        conn.execute("DELETE FROM items WHERE id IN (150, 151, 401)")
        insert(conn, "items", [item(500), item(61, sku="AGAIN")])
    conn.close()
    yield db, base_db, scope


def test_pushdown_equals_python_fallback(items: tuple[Path, Path, Scope]) -> None:
    db, base_db, scope = items
    python, pushed = both(db, base_db, "items", scope, ["id"], "id")
    assert comparable(python) == comparable(pushed)
    assert python.summary.counts == pushed.summary.counts
    assert python.summary.digests == pushed.summary.digests
    assert python.summary.checked["rows_scanned"] == pushed.summary.checked["rows_scanned"]
    assert python.summary.checked["baseline_rows"] == pushed.summary.checked["baseline_rows"]
    assert python.keys_of("collateral") == {(100,), (150,), (151,), (200,), (250,), (500,)}
    # 10:05:00 in ISO form is the same moment: SQL flags it, the classifier clears it
    assert (5,) not in python.keys_of()
    assert pushed.summary.checked["flagged_in_sql"] > len(pushed.keys_of()) - 60


def test_normalisers_apply_in_both_paths(items: tuple[Path, Path, Scope]) -> None:
    db, base_db, scope = items
    norms = Normalisers.parse({"weight": {"epsilon": 0.001}, "ignore": ["email"]})
    python, pushed = both(db, base_db, "items", scope, ["id"], "id", normalisers=norms)
    assert comparable(python) == comparable(pushed)
    assert python.keys_of("tolerated") == {(250,)}
    assert (100,) not in python.keys_of()  # email is ignored


def test_parallel_partitions_find_the_same_keys(
    items: tuple[Path, Path, Scope], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, base_db, _scope = items
    info = reflect(db, "items")
    engine = pd.sqlite_engine(str(db), {"b": str(base_db)})
    columns = list(info.columns)
    serial = pd.detect(
        engine, info, TableRef("items"), TableRef("items", "b"), ["id"], columns, workers=1
    )
    monkeypatch.setattr(pd, "_PARALLEL_MIN_ROWS", 10)
    parallel = pd.detect(
        engine, info, TableRef("items"), TableRef("items", "b"), ["id"], columns, workers=3
    )
    engine.dispose()
    assert parallel.partitions == 3 and serial.partitions == 1
    assert sorted(parallel.keys) == sorted(serial.keys)
    assert serial.rows_compared == 300 - 10 + 10 - 3 + 2


def test_duplicates_and_null_keys_without_a_key_constraint(tmp_path: Path) -> None:
    db, base_db = tmp_path / "target.db", tmp_path / "baseline.db"
    create(db, LOOSE, "loose", [{"id": i, "name": f"n{i}", "qty": i} for i in range(1, 40)])
    copy_baseline(db, base_db, "loose")
    base = by_key(read(db, "loose"), ["id"])
    scope = Scope.from_changes([Change((3,), base[(3,)], {"qty": 30}, 1)])
    write_expected(db, "loose", ["id"], scope)
    with connect(db) as conn:
        insert(
            conn,
            "loose",
            [
                {"id": 3, "name": "twin", "qty": 30},
                {"id": 20, "name": "n20", "qty": 20},
                {"id": None, "name": "nokey", "qty": 0},
            ],
        )
        conn.execute("DELETE FROM loose WHERE id = 30")
    conn.close()
    python, pushed = both(db, base_db, "loose", scope, ["id"], "rowid")
    assert comparable(python) == comparable(pushed)
    assert python.summary.counts == {"duplicate_key": 2, "null_key": 1, "collateral": 1}


def test_composite_keys_and_a_nocase_collation(tmp_path: Path) -> None:
    db, base_db = tmp_path / "target.db", tmp_path / "baseline.db"
    ddl = STOCK.replace("price NUMERIC(10, 2)", "price NUMERIC(10, 2), label TEXT COLLATE NOCASE")
    rows = [
        {"warehouse": w, "sku": f"S{i}", "qty": i, "price": f"{i}.50", "label": "abc"}
        for w in ("east", "west")
        for i in range(30)
    ]
    create(db, ddl, "stock", rows)
    copy_baseline(db, base_db, "stock")
    key = ["warehouse", "sku"]
    base = by_key(read(db, "stock"), key)
    scope = Scope.from_changes([Change(("east", "S1"), base["east", "S1"], {"qty": 100}, 1)])
    write_expected(db, "stock", key, scope)
    with connect(db) as conn:
        conn.execute("UPDATE stock SET label = 'ABC' WHERE warehouse = 'west' AND sku = 'S2'")
    conn.close()
    python, pushed = both(db, base_db, "stock", scope, key, "warehouse, sku")
    assert comparable(python) == comparable(pushed)
    # NOCASE would call 'abc' and 'ABC' equal; detection compares BINARY
    assert python.keys_of("collateral") == {("west", "S2")}
    assert python.keys_of("applied") == {("east", "S1")}


def test_exact_aggregates_in_sql(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    create(db, ITEMS, "items", [item(i, price="0.10", weight=0.1) for i in range(1, 1001)])
    info = reflect(db, "items")
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        (whole,) = pd.table_aggregates(conn, info, TableRef("items"), ["qty", "price"]).values()
        grouped = pd.table_aggregates(conn, info, TableRef("items"), ["qty"], group_by="active")
    engine.dispose()
    assert whole.count == 1000
    assert whole.sums["price"] == "100.00"  # 1000 x 0.10 exactly, though SQLite stores REAL
    assert sum(a.count for a in grouped.values()) == 1000
    assert set(grouped) == {(0,), (1,)}


def test_aggregates_are_checked_alongside(items: tuple[Path, Path, Scope]) -> None:
    db, base_db, scope = items
    info = reflect(db, "items")
    engine = pd.sqlite_engine(str(db), {"b": str(base_db)})
    with engine.connect() as conn:
        before = pd.table_aggregates(conn, info, TableRef("items", "b"), ["qty", "price"])
    check = pd.AggregateCheck(
        before, intended_deltas(info, scope.changes(), ["qty", "price"]), ["qty", "price"]
    )
    timings: dict[str, float] = {}
    report = pd.reconcile_pushdown(
        engine,
        info,
        TableRef("items"),
        TableRef("items", "b"),
        scope.baseline,
        scope.expected,
        scope.touched,
        aggregates=check,
        timings=timings,
    )
    with engine.connect() as conn:  # one connection: the same, without overlap
        serial = pd.reconcile_pushdown(
            conn,
            info,
            TableRef("items"),
            TableRef("items", "b"),
            scope.baseline,
            scope.expected,
            scope.touched,
            aggregates=check,
        )
    engine.dispose()
    (agg,) = report.of_class("aggregate_mismatch")
    assert agg.columns == ["count", "price", "qty"]  # the out-of-band rows moved all three
    assert comparable(report) == comparable(serial)
    assert report.summary.checked["aggregates"] == 3
    assert set(timings) == {"hygiene", "detect", "fetch", "classify", "aggregates"}


@pytest.mark.postgres
def test_pushdown_on_postgresql_uses_is_distinct_from(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, "
            "price NUMERIC(10, 2), seen TIMESTAMP, note TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO items SELECT i, 'S' || i, i / 4.0, TIMESTAMP '2026-01-01' + i * "
            "INTERVAL '1 minute', CASE WHEN mod(i, 3) = 0 THEN NULL ELSE 'n' END "
            "FROM generate_series(1, 200) AS i"
        )
        conn.exec_driver_sql("CREATE TABLE items_b (LIKE items INCLUDING ALL)")
        conn.exec_driver_sql("INSERT INTO items_b SELECT * FROM items")
    info = reflect(pg_url, "items")
    with engine.connect() as conn:
        base = {(r.id,): dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM items"))}
    scope = Scope.from_changes(
        [Change((i,), base[(i,)], {"price": "9.99", "note": None}, i) for i in (3, 4, 5)]
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE items SET price = 9.99, note = NULL WHERE id IN (3, 4, 5)")
        conn.exec_driver_sql("UPDATE items SET price = 1.00 WHERE id = 5")  # wrong value
        conn.exec_driver_sql("UPDATE items SET note = 'x' WHERE id = 7")  # NULL-safe: n -> x
        conn.exec_driver_sql("UPDATE items SET note = NULL WHERE id = 8")  # n -> NULL
        conn.exec_driver_sql("DELETE FROM items WHERE id = 9")
        rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM items"))]
    python = reconcile(info, base, scope.expected, rows, scope.touched, full_baseline=True)
    pushed = pd.reconcile_pushdown(
        engine,
        info,
        TableRef("items"),
        TableRef("items_b"),
        scope.baseline,
        scope.expected,
        scope.touched,
    )
    engine.dispose()
    assert comparable(python) == comparable(pushed)
    assert python.keys_of("collateral") == {(7,), (8,), (9,)}
    assert python.keys_of("wrong_value") == {(5,)}
    assert python.keys_of("applied") == {(3,), (4,), (5,)}  # note applied on 5 too
