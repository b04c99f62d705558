"""Rows inserted or deleted around the changed ones never create phantom findings: rows are
paired by key, never by position (positional pairing reports every row after a shift)."""

from __future__ import annotations

from pathlib import Path

from console.reconcile import Change, Scope, reconcile
from tests.reconcile.helpers import ITEMS, by_key, connect, create, insert, item, read, reflect
from tests.reconcile.helpers import write_expected as apply_scope


def test_inserts_and_deletes_around_changed_rows(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    create(db, ITEMS, "items", [item(i) for i in range(2, 2002, 2)])  # even ids
    info = reflect(db, "items")
    base = by_key(read(db, "items"), ["id"])
    changed = [100, 102, 104, 500, 1000]
    scope = Scope.from_changes(
        [Change((i,), base[(i,)], {"qty": 777}, n) for n, i in enumerate(changed)]
        + [Change((i,), None, item(i), 10 + i) for i in (99, 101, 103, 105)]  # in between
        + [Change((i,), base[(i,)], None, 20 + i) for i in (2, 98, 106)]  # just around
    )
    apply_scope(db, "items", ["id"], scope)
    actual = read(db, "items", "id")
    before = sorted(base.values(), key=lambda r: r["id"])
    positional = sum(1 for a, b in zip(actual, before, strict=False) if a != b)
    assert positional > 900  # what pairing rows by position would report

    report = reconcile(info, base, scope.expected, actual, scope.touched, full_baseline=True)
    assert report.summary.counts == {"applied": 12}
    assert report.keys_of() == set(scope.touched)

    # the same, with out-of-band inserts and deletes around the changed rows
    with connect(db) as conn:
        insert(conn, "items", [item(i) for i in (97, 107, 499, 501)])
        conn.execute("DELETE FROM items WHERE id IN (96, 108, 498)")
    conn.close()
    report = reconcile(
        info, base, scope.expected, read(db, "items", "id"), scope.touched, full_baseline=True
    )
    assert report.keys_of("applied") == set(scope.touched)
    assert report.keys_of("collateral") == {(97,), (107,), (499,), (501,), (96,), (108,), (498,)}
    assert set(report.summary.counts) == {"applied", "collateral"}


def test_row_order_does_not_matter(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    create(db, ITEMS, "items", [item(i) for i in range(1, 301)])
    info = reflect(db, "items")
    base = by_key(read(db, "items"), ["id"])
    scope = Scope.from_changes([Change((7,), base[(7,)], {"sku": "X"}, 1)])
    apply_scope(db, "items", ["id"], scope)
    rows = read(db, "items", "id")
    forward = reconcile(info, base, scope.expected, rows, scope.touched, full_baseline=True)
    backward = reconcile(info, base, scope.expected, rows[::-1], scope.touched, full_baseline=True)
    assert forward.summary.counts == backward.summary.counts == {"applied": 1}
    assert forward.summary.digests == backward.summary.digests
