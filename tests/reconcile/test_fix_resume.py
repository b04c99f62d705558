"""A reconciliation fix whose process dies: `backout resume FIX` resolves its in-doubt segments
from the target (as an apply's are) and closes it; nothing is written twice, and nothing that
was not journaled is written (the rest is a new `backout fix --apply`)."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from console.changes import load_changeset
from console.config import Settings
from console.engine import lease
from console.engine.apply import Engine
from console.engine.lease import RunHeld
from console.engine.segments import SegmentRunner
from console.errors import Exit
from console.journal import Journal
from console.journal.verify import verify
from console.reconcile import fixrun
from console.reconcile.fixrun import FixRun, apply_fixes, fix_plan, resume_fix
from console.reconcile.service import reconcile_run
from tests.engine.helpers import (
    backout,
    changeset_doc,
    dump,
    make_items,
    write_changeset,
    write_counts,
)


def _drifted(url: str, tmp_path: Path, rows: int, edited: range) -> tuple[Journal, str]:
    """An applied run whose rows ``edited`` were changed by hand since (findings to fix)."""
    make_items(url, rows)
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")
    doc = changeset_doc(url, updates=range(1, rows + 1), segment_size=100)
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "c.yaml", doc)))
    assert report.run_id and report.exit_code == Exit.DONE, report.message
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(
            text("UPDATE items SET note = 'hand edit' WHERE id BETWEEN :a AND :b"),
            {"a": edited.start, "b": edited.stop - 1},
        )
    eng.dispose()
    return j, report.run_id


def _killed_after_intents(j: Journal, run_id: str, intents: int, *, wrote: bool) -> str:
    """A fix run as a SIGKILL leaves it: its first ``intents`` segments journaled with no
    outcome, the last one's rows written to the target (``wrote``) or not."""
    plan = fix_plan(j, Settings(), run_id)
    parent = j.get_run(run_id)
    fr = FixRun(j, Settings(), None)
    fix_id = fr.start(parent, plan)
    ref = {t.table: t.target_ref for t in plan.plans}
    for n, seg in enumerate(fr.segments(parent, fix_id, plan), start=1):
        if n > intents:
            break
        runner = SegmentRunner(j, fr.targets.get(ref[seg.table]), fr.holder)
        if n < intents:
            runner.journal_intent(seg)
            assert not runner.execute(seg).error
            continue
        runner.journal_intent(seg)
        if wrote:  # the target transaction committed; the process died before the outcome
            with fr.targets.get(ref[seg.table]).engine.begin() as conn:
                for op in seg.ops:
                    values = {c: v for c, v in (op.after or {}).items() if c != "id"}
                    sets = ", ".join(f"{c} = :{c}" for c in values)
                    conn.execute(
                        text(f"UPDATE items SET {sets} WHERE id = :id"), {**values, **op.key}
                    )
    fr.close()
    assert j.get_run(fix_id).status == "running"
    with pytest.raises(RunHeld):  # its holder is alive: not resumed under its feet
        resume_fix(j, Settings(), j.get_run(fix_id))
    with j.write() as w:  # the holder dies: its lease goes with it
        lease.release(w.conn, fix_id, fr.holder)
    return fix_id


@pytest.mark.parametrize("wrote", [False, True], ids=["before-write", "after-write"])
def test_resume_resolves_the_segment_in_doubt_and_completes(
    target_url: str, tmp_path: Path, wrote: bool
) -> None:
    j, run_id = _drifted(target_url, tmp_path, 40, range(1, 31))
    before = write_counts(target_url)
    fix_id = _killed_after_intents(j, run_id, 1, wrote=wrote)
    report = resume_fix(j, Settings(), j.get_run(fix_id))
    assert report.exit_code == Exit.DONE, report.message
    run = j.get_run(fix_id)
    assert run.status == "completed" and run.rows_applied == 30
    assert {o.status for o in j.operations(fix_id, limit=100)} == {"applied"}
    after = write_counts(target_url)
    written = {k for k in after if after[k] != before.get(k)}
    assert written == set(range(1, 31))
    assert all(after[k] == before[k] + 1 for k in written)  # once, never twice
    assert reconcile_run(j, Settings(), run_id).exit_code == Exit.DONE
    again = resume_fix(j, Settings(), j.get_run(fix_id))  # nothing left: no event
    assert again.exit_code == Exit.DONE and "nothing to resume" in again.message
    assert verify(j, remember=False).ok


def test_resume_closes_what_was_never_journaled_and_a_new_fix_does_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    monkeypatch.setattr(fixrun, "SEGMENT", 10)
    j, run_id = _drifted(url, tmp_path, 60, range(1, 51))
    before = write_counts(url)
    fix_id = _killed_after_intents(j, run_id, 2, wrote=True)
    report = resume_fix(j, Settings(), j.get_run(fix_id))
    assert report.exit_code == Exit.FAILED
    assert "interrupted after 20 of 50" in report.message and f"fix {run_id}" in report.message
    run = j.get_run(fix_id)
    assert run.status == "failed" and run.rows_applied == 20
    # Only the journaled rows were written: the other 30 wait for a new, gated plan.
    journaled = {json.loads(o.key)["id"] for o in j.operations(fix_id, limit=100)}
    assert len(journaled) == 20
    after = write_counts(url)
    assert {k for k in after if after[k] != before.get(k)} == journaled
    rest = apply_fixes(j, Settings(), run_id)
    assert rest.exit_code == Exit.DONE and rest.applied == 30, rest.message
    final = write_counts(url)
    assert all(final[k] == before[k] + 1 for k in range(1, 51))
    assert reconcile_run(j, Settings(), run_id).exit_code == Exit.DONE
    assert verify(j, remember=False).ok


def test_cli_resume_of_a_fix(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    j, run_id = _drifted(url, tmp_path, 20, range(1, 11))
    fix_id = _killed_after_intents(j, run_id, 1, wrote=False)
    proc = backout(tmp_path / "journal.db", "resume", fix_id, "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b'"status": "completed"' in out or b'"status":"completed"' in out
    assert j.get_run(fix_id).status == "completed"


def _kill_trial(tmp_path: Path, seed: int) -> None:
    """SIGKILL a real `backout fix --apply` at a seeded moment after its run appears; resume
    it, fix the rest; every edited row ends fixed, each written exactly once by the fixes."""
    url = f"sqlite:///{tmp_path / 'target.db'}"
    j, run_id = _drifted(url, tmp_path, 900, range(1, 801))
    journal = tmp_path / "journal.db"
    before = write_counts(url)
    proc = backout(journal, "fix", run_id, "--apply")
    deadline = time.monotonic() + 60
    while not [r for r in j.runs(limit=5) if r.kind == "fix"] and proc.poll() is None:
        assert time.monotonic() < deadline, "the fix run never started"
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    fixes = [r for r in j.runs(limit=5) if r.kind == "fix"]
    for fix in fixes:
        resumed = backout(journal, "resume", fix.id)
        _out, err = resumed.communicate(timeout=120)
        assert resumed.returncode in (0, 1), err.decode()
        assert j.get_run(fix.id).status in ("completed", "failed")
    rest = backout(journal, "fix", run_id, "--apply")
    _out, err = rest.communicate(timeout=120)
    assert rest.returncode == 0, f"seed {seed}: {err.decode()}"
    after = write_counts(url)
    twice = {k: after[k] - before[k] for k in range(1, 801) if after[k] != before[k] + 1}
    assert not twice, f"seed {seed}: rows not fixed exactly once: {twice}"
    assert all(after[k] == before[k] for k in range(801, 901))
    assert {r[3] for r in dump(url) if r[0] <= 800} == {"v2"}
    pending = [o for f in fixes for o in j.operations(f.id, limit=1000) if o.status == "pending"]
    assert not pending, f"seed {seed}: operations left in doubt"
    assert verify(j, remember=False).ok


@pytest.mark.parametrize("seed", range(4))
def test_kill_fix_then_resume(tmp_path: Path, seed: int) -> None:
    _kill_trial(tmp_path, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4, 40))
def test_kill_fix_then_resume_many(tmp_path: Path, seed: int) -> None:
    _kill_trial(tmp_path, seed)


def test_a_fix_stops_at_a_pause_request_and_resume_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`backout pause FIX` stops a fix at its next segment boundary, as it stops an apply;
    `backout resume FIX` closes it, and a new fix plans what is still wrong."""
    url = f"sqlite:///{tmp_path / 'target.db'}"
    monkeypatch.setattr(fixrun, "SEGMENT", 5)
    j, run_id = _drifted(url, tmp_path, 40, range(1, 31))
    segments = FixRun.segments

    def pause_after_two(self: FixRun, *args: object) -> object:
        for n, seg in enumerate(segments(self, *args), start=1):  # type: ignore[arg-type]
            if n == 3:  # asked by someone else while segment 2 was being written
                Engine(Journal(j.url, actor="oncall"), Settings()).request_pause(seg.run_id)
            yield seg

    monkeypatch.setattr(FixRun, "segments", pause_after_two)
    report = apply_fixes(j, Settings(), run_id)
    assert report.exit_code == Exit.FAILED and "paused by oncall after 10 of 30" in report.message
    fix = j.get_run(report.fix_run or "")
    assert fix.status == "paused" and fix.rows_applied == 10
    closed = resume_fix(j, Settings(), fix)
    assert closed.exit_code == Exit.FAILED and "interrupted after 10 of 30" in closed.message
    monkeypatch.setattr(FixRun, "segments", segments)
    rest = apply_fixes(j, Settings(), run_id)
    assert rest.exit_code == Exit.DONE and rest.applied == 20, rest.message
    assert reconcile_run(j, Settings(), run_id).exit_code == Exit.DONE
    assert verify(j, remember=False).ok
