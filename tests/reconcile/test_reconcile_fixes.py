"""Guarded fix plans: smallest operations with preconditions; applying them (here directly
with sqlite3, checking each precondition) leaves nothing to review."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from console.errors import BadInput
from console.reconcile import Change, FixOp, Scope, plan_fixes, reconcile
from console.reconcile.report import Report
from console.targets.types import TableInfo
from console.targets.values import same
from tests.reconcile.helpers import (
    ITEMS,
    by_key,
    connect,
    create,
    insert,
    item,
    read,
    reflect,
    write_expected,
)


def _apply(conn: sqlite3.Connection, info: TableInfo, op: FixOp) -> bool:
    """Apply one fix if its precondition holds (what the engine will do through the journal)."""
    where = " AND ".join(f"{c} = ?" for c in op.key)
    found = conn.execute(f"SELECT * FROM items WHERE {where}", list(op.key.values())).fetchone()
    now = None if found is None else dict(found)
    if op.precondition is None:
        if now is not None:
            return False
    elif now is None or not all(
        same(info.columns[c], now[c], v) for c, v in op.precondition.items()
    ):
        return False
    if op.kind == "update":
        assert op.set is not None
        sets = ", ".join(f"{c} = ?" for c in op.set)
        conn.execute(f"UPDATE items SET {sets} WHERE {where}", [*op.set.values(), *op.key.values()])
    elif op.kind == "delete":
        conn.execute(f"DELETE FROM items WHERE {where}", list(op.key.values()))
    else:
        assert op.row is not None
        insert(conn, "items", [op.row])
    return True


@pytest.fixture
def drifted(tmp_path: Path) -> tuple[Path, Scope, dict[tuple[Any, ...], dict[str, Any]]]:
    db = tmp_path / "target.db"
    create(db, ITEMS, "items", [item(i) for i in range(1, 31)])
    base = by_key(read(db, "items"), ["id"])
    scope = Scope.from_changes(
        [
            Change((1,), base[(1,)], {"price": "1.11", "qty": 11}, 1),
            Change((2,), base[(2,)], {"price": "2.22"}, 2),
            Change((3,), base[(3,)], None, 3),
            Change((4,), base[(4,)], {"sku": "S4"}, 4),
            Change((40,), None, item(40), 5),
            Change((41,), None, item(41), 6),
        ]
    )
    write_expected(db, "items", ["id"], scope)
    with connect(db) as conn:
        conn.execute("UPDATE items SET qty = ? WHERE id = 1", [base[(1,)]["qty"]])  # half done
        conn.execute("UPDATE items SET price = 9.99 WHERE id = 2")  # wrong value
        insert(conn, "items", [item(3, sku="BACK")])  # deleted row is back
        conn.execute("UPDATE items SET sku = 'THEIRS' WHERE id = 4")  # later writer
        conn.execute("DELETE FROM items WHERE id = 40")  # insert lost
        conn.execute("UPDATE items SET email = 'oops' WHERE id = 20")  # collateral
        conn.execute("DELETE FROM items WHERE id = 21")  # collateral
    conn.close()
    return db, scope, base


def _report(db: Path, scope: Scope, base: dict[tuple[Any, ...], dict[str, Any]]) -> Report:
    return reconcile(
        reflect(db, "items"),
        base,
        scope.expected,
        read(db, "items"),
        scope.touched,
        later={(4,)},
        full_baseline=True,
    )


def test_smallest_fix_per_finding_with_preconditions(
    drifted: tuple[Path, Scope, dict[tuple[Any, ...], dict[str, Any]]],
) -> None:
    db, scope, base = drifted
    info = reflect(db, "items")
    report = _report(db, scope, base)
    plan = plan_fixes(report.findings, info)
    ops = {tuple(op.key.values()): op for op in plan.ops}
    assert set(ops) == {(1,), (2,), (3,), (20,), (21,), (40,)}
    assert (ops[1,].kind, ops[1,].set, ops[1,].precondition) == (
        "update",
        {"qty": 11},
        {"qty": base[(1,)]["qty"]},
    )  # only the column not applied
    assert (ops[2,].set, ops[2,].precondition) == ({"price": "2.22"}, {"price": 9.99})
    assert ops[3,].kind == "delete" and ops[3,].precondition["sku"] == "BACK"  # type: ignore[index]
    assert ops[40,].kind == "insert" and ops[40,].precondition is None
    assert ops[40,].row == scope.expected[(40,)]
    assert (ops[20,].set, ops[20,].precondition) == (
        {"email": base[(20,)]["email"]},
        {"email": "oops"},
    )
    assert ops[21,].kind == "insert" and ops[21,].row == base[(21,)]
    assert ops[1,].op_no == 1 and ops[20,].op_no is None
    assert plan.review == (
        {"key": [4], "class": "later_overwrite", "reason": plan.review[0]["reason"]},
    )
    # the digest is of the canonical plan: same findings, same digest; JSON, no pickle
    again = plan_fixes(list(reversed(report.findings)), info)
    assert again.digest == plan.digest and len(plan.digest) == 64
    assert json.loads(json.dumps(plan.as_dict()))["digest"] == plan.digest
    only = plan_fixes(report.findings, info, classes=["wrong_value"])
    assert [op.key for op in only.ops] == [{"id": 2}] and only.digest != plan.digest
    with pytest.raises(BadInput):
        plan_fixes(report.findings, info, classes=["wrong"])


def test_applying_the_plan_leaves_nothing_to_review(
    drifted: tuple[Path, Scope, dict[tuple[Any, ...], dict[str, Any]]],
) -> None:
    db, scope, base = drifted
    info = reflect(db, "items")
    plan = plan_fixes(_report(db, scope, base).findings, info)
    with connect(db) as conn:
        assert all(_apply(conn, info, op) for op in plan.ops)
    conn.close()
    after = _report(db, scope, base)
    assert {f.cls for f in after.findings if f.needs_review} == {"later_overwrite"}
    assert after.keys_of("applied") == {(1,), (2,), (3,), (40,), (41,)}


def test_a_stale_precondition_is_refused(
    drifted: tuple[Path, Scope, dict[tuple[Any, ...], dict[str, Any]]],
) -> None:
    db, scope, base = drifted
    info = reflect(db, "items")
    plan = plan_fixes(_report(db, scope, base).findings, info)
    with connect(db) as conn:
        conn.execute("UPDATE items SET price = 5.55 WHERE id = 2")  # changed since the plan
        applied = {tuple(op.key.values()): _apply(conn, info, op) for op in plan.ops}
    conn.close()
    assert applied[(2,)] is False and applied[(1,)] is True
