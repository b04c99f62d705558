"""Property: for generated tables, change sets and out-of-band edits, the keys needing review
are exactly the edited keys, each in the class its edit implies; every other touched key is
``applied``; and the SQL pushdown finds exactly what the Python fallback finds."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.reconcile import Change, Scope, reconcile
from console.reconcile import pushdown as pd
from console.reconcile.pushdown import TableRef
from tests.reconcile.helpers import (
    by_key,
    connect,
    copy_baseline,
    create,
    insert,
    read,
    reflect,
    write_expected,
)

DDL = """
CREATE TABLE t (
    g TEXT NOT NULL, k INTEGER NOT NULL, a TEXT, n INTEGER, p NUMERIC(10, 2),
    PRIMARY KEY (g, k)
)
"""
KEYS = [(g, k) for g in ("x", "y") for k in range(12)]
Key = tuple[str, int]

# edit kind -> the class it must produce, by what the change set did to the key
EDITS: dict[str, dict[str, str]] = {
    "untouched": {"modify": "collateral", "delete": "collateral"},
    "absent": {"insert": "collateral"},
    "update": {"revert": "not_applied", "third": "wrong_value", "delete": "missing_row"},
    "delete": {"reinsert_b": "not_applied", "reinsert_other": "unexpected_row"},
    "insert": {"remove": "not_applied", "third": "wrong_value"},
}

values = st.fixed_dictionaries(
    {
        "a": st.none() | st.text(alphabet="abc", max_size=3),
        "n": st.integers(0, 500),
        "p": st.none() | st.integers(0, 99999).map(lambda c: f"{c // 100}.{c % 100:02d}"),
    }
)


@st.composite
def scenario(draw: st.DrawFn) -> dict[str, Any]:
    present = draw(st.sets(st.sampled_from(KEYS), min_size=1, max_size=len(KEYS)))
    rows = {k: {"g": k[0], "k": k[1], **draw(values)} for k in sorted(present)}
    plan: dict[Key, str] = {}
    for k in sorted(present):
        plan[k] = draw(st.sampled_from(["untouched", "untouched", "update", "delete"]))
    for k in KEYS:
        if k not in present:
            plan[k] = draw(st.sampled_from(["absent", "insert"]))
    edits: dict[Key, str] = {}
    for k, what in plan.items():
        if draw(st.integers(0, 3)) == 0:
            edits[k] = draw(st.sampled_from(sorted(EDITS[what])))
    p_too = draw(st.booleans())
    return {"rows": rows, "plan": plan, "edits": edits, "p_too": p_too}


def _write(conn: Any, k: Key, row: dict[str, Any] | None) -> None:
    conn.execute("DELETE FROM t WHERE g = ? AND k = ?", list(k))
    if row is not None:
        insert(conn, "t", [row])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_findings_are_exactly_the_edited_keys(case: dict[str, Any]) -> None:
    rows: dict[Key, dict[str, Any]] = case["rows"]
    plan: dict[Key, str] = case["plan"]
    edits: dict[Key, str] = case["edits"]
    with tempfile.TemporaryDirectory() as tmp:
        db, base_db = Path(tmp) / "t.db", Path(tmp) / "b.db"
        create(db, DDL, "t", rows.values())
        copy_baseline(db, base_db, "t")
        base = by_key(read(db, "t"), ["g", "k"])
        changes = []
        for op_no, (k, what) in enumerate(sorted(plan.items())):
            if what == "update":
                sets: dict[str, Any] = {"n": base[k]["n"] + 1000}
                if case["p_too"]:
                    sets["p"] = "0.01" if base[k]["p"] != 0.01 else "0.02"
                changes.append(Change(k, base[k], sets, op_no))
            elif what == "delete":
                changes.append(Change(k, base[k], None, op_no))
            elif what == "insert":
                changes.append(
                    Change(k, None, {"g": k[0], "k": k[1], "a": "new", "n": 1, "p": "2.50"}, op_no)
                )
        scope = Scope.from_changes(changes)
        write_expected(db, "t", ["g", "k"], scope)
        with connect(db) as conn:
            for k, edit in edits.items():
                b, e = base.get(k), scope.expected.get(k)
                if edit in ("modify",):
                    conn.execute("UPDATE t SET a = 'oob' WHERE g = ? AND k = ?", list(k))
                elif edit in ("delete", "remove"):
                    _write(conn, k, None)
                elif edit == "insert":
                    _write(conn, k, {"g": k[0], "k": k[1], "a": "oob", "n": 0, "p": None})
                elif edit in ("revert", "reinsert_b"):
                    _write(conn, k, b)
                elif edit == "reinsert_other":
                    assert b is not None
                    _write(conn, k, {**b, "a": f"other-{k[1]}"})
                elif edit == "third":
                    assert e is not None
                    _write(conn, k, {**e, "n": -5})
        conn.close()

        info = reflect(db, "t")
        full = dict(base)
        python = reconcile(
            info, full, scope.expected, read(db, "t"), scope.touched, full_baseline=True
        )
        engine = pd.sqlite_engine(str(db), {"b": str(base_db)})
        pushed = pd.reconcile_pushdown(
            engine,
            info,
            TableRef("t"),
            TableRef("t", "b"),
            scope.baseline,
            scope.expected,
            scope.touched,
        )
        engine.dispose()

    for report in (python, pushed):
        review: dict[Any, set[str]] = {}
        ok: dict[Any, set[str]] = {}
        for f in report.findings:
            (review if f.needs_review else ok).setdefault(tuple(f.key), set()).add(f.cls)
        expected_review = {k: {EDITS[plan[k]][edit]} for k, edit in edits.items()}
        assert review == expected_review
        touched_clean = {k for k in scope.touched if k not in edits}
        assert {k for k, c in ok.items() if k not in edits} == touched_clean
        assert all(ok[k] == {"applied"} for k in touched_clean)
    assert sorted(map(repr, python.findings)) == sorted(map(repr, pushed.findings))
