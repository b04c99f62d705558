"""Grouped aggregates: with a group column declared in the change set, each group's count and
sums must move by exactly what the change set intended; a mismatch is a finding even when no
row-level finding explains it. Real SQLite, PostgreSQL and MariaDB targets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from console.changes import load_changeset
from console.changes.errors import ChangeSetInvalid
from console.config import ReconcileConfig, Settings
from console.engine.apply import Engine
from console.errors import Exit
from console.journal import Journal
from console.reconcile.service import reconcile_run
from tests.engine.helpers import changeset_doc, make_items, write_changeset

# No copy of the table: an edit outside the change set has no row-level finding.
SETTINGS = Settings(reconcile=ReconcileConfig(full_baseline_rows=0))


def _run(tmp_path: Path, url: str) -> tuple[Journal, str]:
    make_items(url, 40)
    doc = changeset_doc(url, updates=range(1, 11), deletes=range(30, 32))
    doc["steps"][0]["reconcile"] = {"group_by": "note"}
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")
    report = Engine(j, SETTINGS).apply(load_changeset(write_changeset(tmp_path / "cs.yaml", doc)))
    assert report.run_id
    return j, report.run_id


def _edit(url: str, sql: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def test_groups_move_as_intended_and_a_move_between_groups_is_found(
    target_url: str, tmp_path: Path
) -> None:
    j, run_id = _run(tmp_path, target_url)
    clean = reconcile_run(j, SETTINGS, run_id)
    assert clean.exit_code == Exit.DONE, clean.counts
    assert clean.checked["groups"] >= 30  # one per note, "v2" included
    # Outside the change set, a row moves from group "note 20" to "v2": the table's count
    # and sums do not move, and no row-level finding says which row it was.
    _edit(target_url, "UPDATE items SET note = 'v2' WHERE id = 20")
    res = reconcile_run(j, SETTINGS, run_id)
    assert res.exit_code == Exit.REVIEW
    agg = [f for f in res.findings if f.cls == "aggregate_mismatch"]
    assert {f.key for f in agg} == {("v2",), ("note 20",)}
    assert all(f.detail["group_by"] == "note" for f in agg)
    v2 = next(f for f in agg if f.key == ("v2",))
    assert v2.actual is not None and v2.expected is not None
    assert v2.actual["count"] == v2.expected["count"] + 1 == 10 + 1
    assert "count" in v2.columns and "amount" in v2.columns
    assert not any(f.cls == "aggregate_mismatch" and f.key == () for f in res.findings)


def test_in_scope_wrong_value_is_explained_per_group(target_url: str, tmp_path: Path) -> None:
    j, run_id = _run(tmp_path, target_url)
    _edit(target_url, "UPDATE items SET note = 'by hand' WHERE id = 3")  # its own finding
    res = reconcile_run(j, SETTINGS, run_id)
    assert {int(f.key[0]) for f in res.findings if f.cls == "wrong_value"} == {3}
    assert "aggregate_mismatch" not in res.counts  # the row-level finding explains it


def test_unknown_group_column_refuses_the_change_set(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 5)
    doc = changeset_doc(url, updates=range(1, 3))
    doc["steps"][0]["reconcile"] = {"group_by": "regoin"}
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")
    cs = load_changeset(write_changeset(tmp_path / "cs.yaml", doc))
    with pytest.raises(ChangeSetInvalid, match="group_by regoin: no such column"):
        Engine(j, SETTINGS).apply(cs)
    with j.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM snapshots")).scalar_one() == 0
    assert j.runs() == []
