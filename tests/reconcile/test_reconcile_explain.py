"""Explanations: one row, three states, DeepDiff paths inside JSON values, plain JSON out."""

from __future__ import annotations

import json
from pathlib import Path

from console.reconcile import Change, Explainer, Normalisers, Scope, reconcile
from tests.reconcile.helpers import by_key, connect, create, read, reflect, write_expected

DDL = "CREATE TABLE docs (id INTEGER PRIMARY KEY, body JSON, seen DATETIME, n INTEGER)"


def test_nested_json_paths_and_ignored_columns(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    rows = [
        {
            "id": i,
            "body": json.dumps({"a": {"b": [1, 2]}, "c": i}),
            "seen": "2026-01-01 00:00:00",
            "n": i,
        }
        for i in range(1, 6)
    ]
    create(db, DDL, "docs", rows)
    info = reflect(db, "docs")
    base = by_key(read(db, "docs"), ["id"])
    new_body = json.dumps({"c": 2, "a": {"b": [1, 3]}})
    scope = Scope.from_changes([Change((2,), base[(2,)], {"body": new_body, "n": 20}, 7)])
    write_expected(db, "docs", ["id"], scope)
    with connect(db) as conn:
        conn.execute(
            "UPDATE docs SET body = ?, seen = '2026-06-01 00:00:00' WHERE id = 2",
            [json.dumps({"a": {"b": [1, 4]}, "c": 2})],
        )
    conn.close()
    norms = Normalisers.parse({"ignore": ["seen"]}, info, ["id"])
    report = reconcile(
        info, base, scope.expected, read(db, "docs"), scope.touched, normalisers=norms
    )
    assert [(f.cls, f.columns) for f in report.findings] == [
        ("wrong_value", ["body"]),
        ("applied", ["n"]),
    ]
    explain = Explainer(info, norms)
    wrong = explain(report.findings[0])
    (field,) = wrong.fields[:1]
    assert field.column == "body" and field.cls == "wrong_value"
    assert field.paths == ["root['body']['a']['b'][1]"]  # where inside the document
    assert wrong.ignored == ["seen"] and wrong.field("seen") is None
    assert {f.column: f.cls for f in wrong.fields} == {"body": "wrong_value", "n": "applied"}
    doc = wrong.as_dict()
    assert json.loads(json.dumps(doc)) == doc  # JSON all the way down
    # the intended document with its keys in another order is the intended document
    with connect(db) as conn:
        conn.execute(
            "UPDATE docs SET body = ? WHERE id = 2", [json.dumps({"a": {"b": [1, 3]}, "c": 2})]
        )
    conn.close()
    fixed = reconcile(
        info, base, scope.expected, read(db, "docs"), scope.touched, normalisers=norms
    )
    assert [(f.cls, f.columns) for f in fixed.findings] == [("applied", ["body", "n"])]
