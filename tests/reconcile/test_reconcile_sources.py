"""The thin layer over a target's reading methods (SqlTarget), on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.reconcile import Change, Scope
from console.reconcile.sources import check_source_aggregates, read_scope, reconcile_source
from tests.reconcile.helpers import LOOSE, by_key, connect, create, insert, read, write_expected

sql = pytest.importorskip("console.targets.sql")


def test_reconcile_through_a_target(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    create(db, LOOSE, "loose", [{"id": i, "name": f"n{i}", "qty": i} for i in range(1, 21)])
    base = by_key(read(db, "loose"), ["id"])
    target = sql.SqlTarget(f"sqlite:///{db}")
    try:
        before = target.aggregates("loose", ["qty"])
        scope = Scope.from_changes(
            [Change((2,), base[(2,)], {"qty": 200}, 1), Change((3,), base[(3,)], {"qty": 300}, 2)]
        )
        write_expected(db, "loose", ["id"], scope)
        with connect(db) as conn:
            conn.execute("UPDATE loose SET qty = 7 WHERE id = 3")
            conn.execute("UPDATE loose SET name = 'x' WHERE id = 9")
        conn.close()
        report = reconcile_source(
            target, "loose", scope.baseline, scope.expected, scope.touched, key_columns=["id"]
        )
        assert {(f.key, f.cls) for f in report.findings} == {
            ((2,), "applied"),
            ((3,), "wrong_value"),
        }
        scanned = reconcile_source(
            target,
            "loose",
            base,
            scope.expected,
            scope.touched,
            key_columns=["id"],
            scan=True,
            full_baseline=True,
        )
        assert scanned.keys_of("collateral") == {(9,)}
        (agg,) = check_source_aggregates(target, "loose", before, scope.changes())
        assert agg.columns == ["qty"]
        # a duplicate key: read_rows refuses it, the scan keeps every row
        with connect(db) as conn:
            insert(conn, "loose", [{"id": 2, "name": "twin", "qty": 200}])
        conn.close()
        rows = read_scope(target, "loose", ["id"], [(2,), (3,)])
        assert sorted(r["name"] for r in rows) == ["n2", "n3", "twin"]
        again = reconcile_source(
            target, "loose", scope.baseline, scope.expected, scope.touched, key_columns=["id"]
        )
        assert again.keys_of("duplicate_key") == {(2,)}
    finally:
        target.close()
