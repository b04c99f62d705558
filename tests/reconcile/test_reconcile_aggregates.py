"""Aggregate checks: counts and sums must move by exactly what the change set intended."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from console.reconcile import Change, Normalisers, Scope, check_aggregates, intended_deltas
from console.reconcile.pushdown import TableRef, table_aggregates
from console.targets.types import Aggregates
from tests.reconcile.helpers import (
    STOCK,
    by_key,
    connect,
    create,
    execute,
    read,
    reflect,
    write_expected,
)


def _aggs(db: Path, group: str | None = None) -> dict[tuple[object, ...], Aggregates]:
    info = reflect(db, "stock")
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        out = table_aggregates(conn, info, TableRef("stock"), ["qty", "price"], group_by=group)
    engine.dispose()
    return out


def test_grouped_deltas_follow_rows_between_groups(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    rows = [
        {"warehouse": w, "sku": f"S{i}", "qty": i, "price": "0.10"}
        for w in ("east", "west")
        for i in range(10)
    ]
    create(db, STOCK, "stock", rows)
    info = reflect(db, "stock")
    key = ["warehouse", "sku"]
    base = by_key(read(db, "stock"), key)
    before, before_g = _aggs(db), _aggs(db, "warehouse")
    moved = {**base["east", "S1"], "warehouse": "north"}
    scope = Scope.from_changes(
        [
            Change(("east", "S2"), base["east", "S2"], {"qty": 100, "price": "0.30"}, 1),
            Change(("west", "S3"), base["west", "S3"], None, 2),
            Change(("east", "S1"), base["east", "S1"], None, 3),
            Change(("north", "S1"), None, moved, 4),
        ]
    )
    write_expected(db, "stock", key, scope)
    deltas = intended_deltas(info, scope.changes(), ["qty", "price"])
    assert deltas[()].count == -1 and str(deltas[()].sums["qty"]) == "95"
    assert check_aggregates(info, before, _aggs(db), deltas) == []
    grouped = intended_deltas(info, scope.changes(), ["qty", "price"], group_by="warehouse")
    assert grouped[("north",)].count == 1 and grouped[("east",)].count == -1
    assert (
        check_aggregates(info, before_g, _aggs(db, "warehouse"), grouped, group_by="warehouse")
        == []
    )
    # one row changed out of band: the table and its group disagree, the others do not
    execute(db, "UPDATE stock SET price = 0.11 WHERE warehouse = 'west' AND sku = 'S9'")
    (table,) = check_aggregates(info, before, _aggs(db), deltas)
    assert table.key == () and table.columns == ["price"]
    (group,) = check_aggregates(
        info, before_g, _aggs(db, "warehouse"), grouped, group_by="warehouse"
    )
    assert group.key == ("west",) and group.columns == ["price"]
    assert group.expected == {"count": 9, "sums": {"price": "0.90", "qty": "42"}}


def test_after_a_rollback_aggregates_match_the_baseline(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    create(
        db,
        STOCK,
        "stock",
        [{"warehouse": "e", "sku": f"S{i}", "qty": i, "price": "1.00"} for i in range(5)],
    )
    info = reflect(db, "stock")
    before = _aggs(db)
    with connect(db) as conn:
        conn.execute("UPDATE stock SET qty = qty + 1 WHERE sku = 'S1'")
        conn.execute("UPDATE stock SET qty = qty - 1 WHERE sku = 'S1'")
    conn.close()
    assert check_aggregates(info, before, _aggs(db), {}) == []
    execute(db, "DELETE FROM stock WHERE sku = 'S4'")
    (f,) = check_aggregates(info, before, _aggs(db), {})
    assert f.columns == ["count", "price", "qty"]


def test_float_sums_compare_within_tolerance() -> None:
    from console.targets.types import ColumnInfo, TableInfo

    info = TableInfo(
        "m",
        {
            "id": ColumnInfo("id", "int", False, True),
            "w": ColumnInfo("w", "float", True),
            "d": ColumnInfo("d", "decimal", True),
        },
        ("id",),
    )
    deltas = intended_deltas(
        info, [({"id": 1, "w": 0.1, "d": "1"}, {"id": 1, "w": 0.2, "d": "1"})], ["w", "d"]
    )
    base = {(): Aggregates(10, {"w": "1000000.1", "d": "5"})}
    summed = {(): Aggregates(10, {"w": "1000000.2000000001", "d": "5"})}
    assert check_aggregates(info, base, summed, deltas) == []  # float summation noise
    off = {(): Aggregates(10, {"w": "1000000.3", "d": "5.01"})}
    (f,) = check_aggregates(info, base, off, deltas)
    assert f.columns == ["d", "w"]
    norms = Normalisers.parse({"w": {"epsilon": 0.2}, "d": {"epsilon": 0.01}})
    assert check_aggregates(info, base, off, deltas, normalisers=norms) == []
