"""Fixes as journaled runs: plan (writes nothing) -> apply through the segment executor ->
verified; a precondition that no longer holds becomes a conflict for review."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from console.changes import load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.errors import Blocked, Exit
from console.journal import Journal
from console.journal.verify import verify
from console.reconcile.fixrun import apply_fixes, fix_plan
from console.reconcile.service import reconcile_run
from tests.engine.helpers import changeset_doc, dump, make_items, write_changeset


def _setup(url: str, tmp_path: Path) -> tuple[Journal, str]:
    make_items(url, 30)
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")
    doc = changeset_doc(url, updates=range(1, 11), inserts=range(100, 102))
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "c.yaml", doc)))
    assert report.run_id
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("UPDATE items SET note = 'hand edit' WHERE id IN (2, 3)"))
        conn.execute(text("DELETE FROM items WHERE id = 100"))
    eng.dispose()
    return j, report.run_id


def test_plan_apply_verified(target_url: str, tmp_path: Path) -> None:
    j, run_id = _setup(target_url, tmp_path)
    events = j.count_events()
    plan = fix_plan(j, Settings(), run_id)
    assert j.count_events() == events  # --plan writes nothing
    kinds = sorted((op.kind, tuple(op.key.values())) for op in plan.ops)
    assert kinds == [("insert", (100,)), ("update", (2,)), ("update", (3,))]
    assert len(plan.digest) == 64
    assert fix_plan(j, Settings(), run_id).digest == plan.digest  # stable
    report = apply_fixes(j, Settings(), run_id, plan_digest=plan.digest)
    assert report.exit_code == Exit.DONE, report.message
    assert report.verified and report.applied == 3
    fix_run = j.get_run(report.fix_run or "")
    assert fix_run.kind == "fix" and fix_run.parent_run == run_id
    assert fix_run.status == "completed"
    assert j.count_events(fix_run.id, ["fix.verified"]) == 1
    done = Engine(j, Settings()).request_pause(fix_run.id)  # finished: nothing to pause
    assert "is completed, not running; nothing to pause" in done.message
    rows = {r[0]: r for r in dump(target_url)}
    assert rows[2][3] == "v2" and 100 in rows
    again = reconcile_run(j, Settings(), run_id)
    assert again.exit_code == Exit.DONE and again.counts == {"applied": 12}
    assert verify(j, remember=False).ok


def test_changed_precondition_goes_to_review(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    j, run_id = _setup(url, tmp_path)
    plan = fix_plan(j, Settings(), run_id)
    eng = create_engine(url)
    with eng.begin() as conn:  # someone edits row 3 again after the plan was made
        conn.execute(text("UPDATE items SET note = 'edited again' WHERE id = 3"))
    eng.dispose()
    report = apply_fixes(j, Settings(), run_id, plan=plan)
    assert report.exit_code == Exit.REVIEW, report.message
    assert [c["key"] for c in report.conflicts] == [{"id": 3}]
    assert report.applied == 2 and report.verified
    assert {r[0]: r for r in dump(url)}[3][3] == "edited again"  # never "source wins"
    assert verify(j, remember=False).ok


def test_plan_changed_since_approval_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    j, run_id = _setup(url, tmp_path)
    with pytest.raises(Blocked):
        apply_fixes(j, Settings(), run_id, plan_digest="0" * 64)
    assert j.runs(kind="fix") == []


def test_a_fix_run_rolls_back_like_any_run(tmp_path: Path) -> None:
    """A fix is a journaled run: rolling it back puts the fixed rows back exactly as the fix
    found them (the hand edits and the deleted row), and nothing else moves."""
    from console.rollback.execute import Options, Rollback

    url = f"sqlite:///{tmp_path / 't.db'}"
    j, run_id = _setup(url, tmp_path)
    before_fix = dump(url)
    plan = fix_plan(j, Settings(), run_id)
    report = apply_fixes(j, Settings(), run_id, plan_digest=plan.digest)
    assert report.exit_code == Exit.DONE, report.message
    assert dump(url) != before_fix
    undone = Rollback(j, Settings()).execute(report.fix_run or "", Options())
    assert undone.exit_code == Exit.DONE, undone.message
    assert dump(url) == before_fix
    assert j.get_run(report.fix_run or "").status == "rolled_back"
    assert j.get_run(run_id).status == "completed"  # the batch itself is untouched
    assert verify(j, remember=False).ok
