"""Every class produced on purpose, on real SQLite files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from console.reconcile import (
    Change,
    Explainer,
    Normalisers,
    Scope,
    check_aggregates,
    intended_deltas,
    reconcile,
)
from console.reconcile.aggregates import numeric_columns
from console.reconcile.pushdown import TableRef, table_aggregates
from console.reconcile.report import Report
from tests.reconcile.helpers import (
    ITEMS,
    LOOSE,
    STOCK,
    by_key,
    connect,
    create,
    execute,
    insert,
    item,
    read,
    reflect,
    write_expected,
)

NORMS = {
    "weight": {"epsilon": 0.001},
    "updated_at": {"truncate": "second"},
    "email": {"trim": True, "case": "lower"},
}


def classes(report: Report) -> dict[tuple[Any, ...], set[str]]:
    out: dict[tuple[Any, ...], set[str]] = {}
    for f in report.findings:
        out.setdefault(tuple(f.key), set()).add(f.cls)
    return out


def _b(rows: dict[tuple[Any, ...], dict[str, Any]], i: int) -> dict[str, Any]:
    return dict(rows[(i,)])


@pytest.fixture
def applied(tmp_path: Path) -> tuple[Path, Scope, dict[tuple[Any, ...], dict[str, Any]]]:
    """items 1..20 and a change set; the target after the run and after out-of-band edits."""
    db = tmp_path / "target.db"
    create(db, ITEMS, "items", [item(i) for i in range(1, 21)])
    base = by_key(read(db, "items"), ["id"])
    changes = [
        Change((1,), _b(base, 1), {"price": "11.50"}, 1),  # applied (stored as REAL 11.5)
        Change((2,), _b(base, 2), {"price": "12.00"}, 2),  # not_applied
        Change((3,), _b(base, 3), {"price": "13.00"}, 3),  # wrong_value
        Change((4,), _b(base, 4), {"weight": 2.5}, 4),  # tolerated (within epsilon)
        Change((5,), _b(base, 5), {"note": "ours"}, 5),  # later_overwrite
        Change((6,), _b(base, 6), None, 6),  # delete, applied
        Change((7,), _b(base, 7), None, 7),  # delete; someone re-inserted: unexpected_row
        Change((8,), _b(base, 8), {"qty": 99}, 8),  # row deleted out of band: missing_row
        Change((9,), _b(base, 9), None, 9),  # deleted then re-inserted by the change set
        Change((9,), None, item(9, sku="NEW-9", price="1.10"), 10),
        Change((10,), _b(base, 10), {"updated_at": "2026-02-01T08:00:00"}, 11),
        Change((11,), _b(base, 11), {"note": "was null"}, 12),  # NULL not replaced
        Change((12,), _b(base, 12), {"note": None}, 13),  # set NULL: applied
        Change((21,), None, item(21), 14),  # insert applied
        Change((22,), None, item(22), 15),  # insert not applied
    ]
    scope = Scope.from_changes(changes)
    write_expected(db, "items", ["id"], scope)
    with connect(db) as conn:
        conn.execute("UPDATE items SET price = ? WHERE id = 2", [base[(2,)]["price"]])
        conn.execute("UPDATE items SET price = 99.99 WHERE id = 3")
        conn.execute("UPDATE items SET weight = 2.5004 WHERE id = 4")
        conn.execute("UPDATE items SET note = 'theirs' WHERE id = 5")
        insert(conn, "items", [item(7, sku="BACK-7")])
        conn.execute("DELETE FROM items WHERE id = 8")
        # a format the database returns, and sub-second noise the normaliser truncates
        conn.execute("UPDATE items SET updated_at = '2026-02-01 08:00:00.400' WHERE id = 10")
        conn.execute("UPDATE items SET note = NULL WHERE id = 11")
        conn.execute("DELETE FROM items WHERE id = 22")
        # out of band, outside the change set
        conn.execute("UPDATE items SET email = 'Other@example.org' WHERE id = 15")
        conn.execute("UPDATE items SET email = '  USER16@Example.org ' WHERE id = 16")
        conn.execute("DELETE FROM items WHERE id = 17")
        insert(conn, "items", [item(30)])
    conn.close()
    return db, scope, base


def test_every_class_after_an_apply(
    applied: tuple[Path, Scope, dict[tuple[Any, ...], dict[str, Any]]],
) -> None:
    db, scope, base = applied
    info = reflect(db, "items")
    norms = Normalisers.parse(NORMS, info, ["id"])
    report = reconcile(
        info,
        base,
        scope.expected,
        read(db, "items"),
        scope.touched,
        normalisers=norms,
        later={(5,)},
        full_baseline=True,
    )
    got = classes(report)
    assert got == {
        (1,): {"applied"},
        (2,): {"not_applied"},
        (3,): {"wrong_value"},
        (4,): {"tolerated"},
        (5,): {"later_overwrite"},
        (6,): {"applied"},
        (7,): {"unexpected_row"},
        (8,): {"missing_row"},
        (9,): {"applied"},
        (10,): {"applied"},
        (11,): {"not_applied"},
        (12,): {"applied"},
        (21,): {"applied"},
        (22,): {"not_applied"},
        (15,): {"collateral"},
        (17,): {"collateral"},
        (30,): {"collateral"},
    }
    by = {(tuple(f.key), f.cls): f for f in report.findings}
    assert by[(3,), "wrong_value"].columns == ["price"]
    assert by[(3,), "wrong_value"].op_no == 3
    assert by[(9,), "applied"].op_no == 10  # the last write of the key
    assert by[(15,), "collateral"].columns == ["email"]
    assert by[(15,), "collateral"].op_no is None
    assert not by[(15,), "collateral"].in_scope
    s = report.summary
    assert s.counts["applied"] == 6 and s.counts["collateral"] == 3
    assert s.checked["keys_in_scope"] == 14 and s.checked["rows_scanned"] == 19
    assert s.needs_review
    assert [f.cls for f in s.worst][:2] == ["wrong_value", "collateral"]
    assert set(s.digests) == {"baseline", "expected", "actual", "normalisers"}
    json.dumps(report.as_dict())  # the summary and findings are plain JSON


def test_tolerated_in_summary_and_in_explanation(
    applied: tuple[Path, Scope, dict[tuple[Any, ...], dict[str, Any]]],
) -> None:
    db, scope, base = applied
    info = reflect(db, "items")
    norms = Normalisers.parse(NORMS, info, ["id"])
    report = reconcile(
        info, base, scope.expected, read(db, "items"), scope.touched, normalisers=norms
    )
    (tol,) = report.of_class("tolerated")
    assert report.summary.counts["tolerated"] == 1
    explain = Explainer(info, norms)
    field = explain(tol).field("weight")
    assert field is not None
    assert field.cls == "tolerated" and field.tolerance == "epsilon 0.001"
    assert (field.expected, field.actual) == (2.5, 2.5004)
    # the same difference without the declared tolerance is a wrong value, in both stages
    plain = reconcile(info, base, scope.expected, read(db, "items"), scope.touched)
    (wrong,) = [f for f in plain.of_class("wrong_value") if f.key == (4,)]
    bare = Explainer(info)(wrong).field("weight")
    assert bare is not None and bare.cls == "wrong_value" and bare.tolerance is None
    # and the canonicalising normalisers make differences vanish in both stages
    assert (10,) in plain.keys_of("wrong_value")  # 08:00:00.400 is not 08:00:00 ...
    ten = [f for f in report.findings if f.key == (10,)]
    assert [f.cls for f in ten] == ["applied"]  # ... at second precision
    assert explain(ten[0]).field("updated_at").cls == "applied"  # type: ignore[union-attr]


def test_explanation_is_lazy_json_and_names_three_values(
    applied: tuple[Path, Scope, dict[tuple[Any, ...], dict[str, Any]]],
) -> None:
    db, scope, base = applied
    info = reflect(db, "items")
    report = reconcile(info, base, scope.expected, read(db, "items"), scope.touched)
    explain = Explainer(info)
    (wrong,) = [f for f in report.of_class("wrong_value") if f.key == (3,)]
    first = explain(wrong)
    assert explain(wrong) is first  # computed once
    f = first.field("price")
    assert f is not None
    assert (f.before, f.expected, f.actual) == (base[(3,)]["price"], "13.00", 99.99)
    assert f.paths == ["root['price']"]
    doc = json.loads(json.dumps(first.as_dict()))
    assert doc["fields"][0]["class"] == "wrong_value"
    assert "reference_to_actual" in doc["deepdiff"]
    missing = report.of_class("missing_row")[0]
    gone = explain(missing)
    assert gone.present == {"before": True, "expected": True, "actual": False}
    assert {x.cls for x in gone.fields} == {"missing_row"}


def test_restored_and_not_restored_after_a_rollback(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    create(db, ITEMS, "items", [item(i) for i in range(1, 11)])
    base = by_key(read(db, "items"), ["id"])
    scope = Scope.from_changes(
        [
            Change((1,), _b(base, 1), {"price": "50.00"}, 1),  # restored
            Change((2,), _b(base, 2), {"price": "51.00"}, 2),  # rollback missed: not_restored
            Change((3,), _b(base, 3), None, 3),  # delete undone: restored
            Change((4,), None, item(4 + 100), 4),  # placeholder replaced below
            Change((5,), _b(base, 5), {"qty": 77}, 5),  # overwritten later: later_overwrite
            Change((6,), _b(base, 6), {"qty": 78}, 6),  # deleted since: missing_row
            Change((11,), None, item(11), 7),  # insert undone: restored
            Change((12,), None, item(12), 8),  # insert still there: not_restored
            Change((13,), None, item(13), 9),  # removed, then someone put another: unexpected
        ]
    )
    del scope.touched[(4,)], scope.baseline[(4,)], scope.expected[(4,)]
    with connect(db) as conn:  # the target after a partial rollback and other writers
        conn.execute("UPDATE items SET price = 51.00 WHERE id = 2")
        conn.execute("UPDATE items SET qty = 1234 WHERE id = 5")
        conn.execute("DELETE FROM items WHERE id = 6")
        insert(conn, "items", [item(12), item(13, sku="OTHER")])
    conn.close()
    info = reflect(db, "items")
    report = reconcile(
        info, base, scope.expected, read(db, "items"), scope.touched, mode="baseline", later={(5,)}
    )
    assert classes(report) == {
        (1,): {"restored"},
        (2,): {"not_restored"},
        (3,): {"restored"},
        (5,): {"later_overwrite"},
        (6,): {"missing_row"},
        (11,): {"restored"},
        (12,): {"not_restored"},
        (13,): {"unexpected_row"},
    }
    (two,) = [f for f in report.of_class("not_restored") if f.key == (2,)]
    explained = Explainer(info, mode="baseline")(two)
    assert [(f.column, f.cls) for f in explained.fields] == [("price", "not_restored")]


def test_composite_keys_decimals_and_nulls(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    rows = [
        {"warehouse": w, "sku": s, "qty": q, "price": p}
        for w, s, q, p in [
            ("east", "A1", 5, "10.50"),
            ("east", "A2", 0, None),
            ("west", "A1", 7, "3.00"),
            ("west", "A2", 1, "0.10"),
        ]
    ]
    create(db, STOCK, "stock", rows)
    key = ["warehouse", "sku"]
    base = by_key(read(db, "stock"), key)
    scope = Scope.from_changes(
        [
            Change(("east", "A1"), base["east", "A1"], {"price": "10.5"}, 1),  # same value
            Change(("east", "A2"), base["east", "A2"], {"price": "2.00"}, 2),  # from NULL
            Change(("west", "A1"), base["west", "A1"], {"qty": 8}, 3),
        ]
    )
    write_expected(db, "stock", key, scope)
    execute(db, "UPDATE stock SET qty = 9 WHERE warehouse = 'west' AND sku = 'A1'")
    execute(db, "UPDATE stock SET price = NULL WHERE warehouse = 'west' AND sku = 'A2'")
    info = reflect(db, "stock")
    report = reconcile(
        info,
        base,
        scope.expected,
        read(db, "stock", "warehouse, sku"),
        scope.touched,
        full_baseline=True,
    )
    assert classes(report) == {
        ("east", "A2"): {"applied"},
        ("west", "A1"): {"wrong_value"},
        ("west", "A2"): {"collateral"},
    }  # 10.50 -> "10.5" is no change at all; NULL -> 2.00 applied; NULL collateral
    (wrong,) = report.of_class("wrong_value")
    assert wrong.key == ("west", "A1") and wrong.columns == ["qty"]


def test_duplicate_and_null_keys_are_findings_of_their_own(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    create(db, LOOSE, "loose", [{"id": i, "name": f"n{i}", "qty": i} for i in range(1, 6)])
    base = by_key(read(db, "loose"), ["id"])
    scope = Scope.from_changes([Change((2,), base[(2,)], {"qty": 20}, 1)])
    write_expected(db, "loose", ["id"], scope)
    with connect(db) as conn:
        insert(conn, "loose", [{"id": 2, "name": "twin", "qty": 20}])  # duplicate in scope
        insert(conn, "loose", [{"id": 4, "name": "n4", "qty": 4}])  # duplicate, identical
        insert(conn, "loose", [{"id": None, "name": "nokey", "qty": 1}] * 2)
    conn.close()
    info = reflect(db, "loose")
    report = reconcile(
        info,
        base,
        scope.expected,
        read(db, "loose"),
        scope.touched,
        key_columns=["id"],
        full_baseline=True,
    )
    assert report.summary.counts == {"duplicate_key": 2, "null_key": 2}
    dup2 = next(f for f in report.of_class("duplicate_key") if f.key == (2,))
    assert {r["name"] for r in dup2.duplicates} == {"n2", "twin"}  # never collapsed
    assert dup2.op_no == 1 and dup2.detail["occurrences"] == 2
    dup4 = next(f for f in report.of_class("duplicate_key") if f.key == (4,))
    assert len(dup4.duplicates) == 2
    assert all(f.actual["name"] == "nokey" for f in report.of_class("null_key"))  # type: ignore[index]


def test_aggregate_mismatch_without_a_row_that_explains_it(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    create(db, ITEMS, "items", [item(i) for i in range(1, 51)])
    info = reflect(db, "items")
    numeric = numeric_columns(info)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        before = table_aggregates(conn, info, TableRef("items"), numeric)
    base = by_key(read(db, "items"), ["id"])
    scope = Scope.from_changes(
        [
            Change((1,), base[(1,)], {"qty": 100, "price": "99.99"}, 1),
            Change((60,), None, item(60), 2),
        ]
    )
    write_expected(db, "items", ["id"], scope)
    deltas = intended_deltas(info, scope.changes(), numeric)
    with engine.connect() as conn:
        after = table_aggregates(conn, info, TableRef("items"), numeric)
    assert check_aggregates(info, before, after, deltas) == []
    # a write outside the change set's keys: no row-level check looks there
    execute(db, "UPDATE items SET qty = qty + 5 WHERE id = 40")
    report = reconcile(info, base, scope.expected, read(db, "items"), scope.touched)
    assert report.summary.needs_review is False  # the scope is fine
    with engine.connect() as conn:
        now = table_aggregates(conn, info, TableRef("items"), numeric)
    engine.dispose()
    (mismatch,) = check_aggregates(info, before, now, deltas)
    assert mismatch.cls == "aggregate_mismatch" and mismatch.columns == ["qty"]
    assert mismatch.expected is not None and mismatch.actual is not None
    assert int(mismatch.actual["sums"]["qty"]) - int(mismatch.expected["sums"]["qty"]) == 5
    merged = report.with_findings([mismatch], {"aggregates": len(numeric) + 1})
    assert merged.summary.counts["aggregate_mismatch"] == 1 and merged.summary.needs_review
    field = Explainer(info)(mismatch).field("qty")
    assert field is not None and field.cls == "aggregate_mismatch"
