"""``on_error: rollback``: a failed batch is reversed through the rollback code and the gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from console.changes import load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.errors import Exit
from console.journal import Journal
from console.journal.verify import verify
from tests.engine.helpers import changeset_doc, dump, make_items, write_changeset, write_counts

BAD_ROW = 25  # its update breaks the CHECK (amount >= 0): the fifth segment fails


def _journal(tmp_path: Path) -> Journal:
    return Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")


def failing_doc(url: str, **options: Any) -> dict[str, Any]:
    """Deletes, inserts, then updates (segments of 10): four segments apply, the fifth
    fails on row 25."""
    doc = changeset_doc(
        url,
        updates=range(1, 51),
        inserts=range(1001, 1011),
        deletes=range(90, 96),
        segment_size=10,
        **options,
    )
    ops = doc["steps"][0]["operations"]
    ops[:] = ops[56:] + ops[50:56] + ops[:50]  # deletes, inserts, updates
    for op in ops:
        if op.get("key") == {"id": BAD_ROW} and op["op"] == "update":
            op["set"]["amount"] = "-5.00"
    return doc


def test_on_error_rollback_restores_the_baseline(target_url: str, tmp_path: Path) -> None:
    make_items(target_url, 100)
    baseline = dump(target_url)
    cs = load_changeset(
        write_changeset(tmp_path / "cs.yaml", failing_doc(target_url, on_error="rollback"))
    )
    j = _journal(tmp_path)
    report = Engine(j, Settings()).apply(cs)
    assert report.exit_code == Exit.FAILED, report.message
    assert report.applied == 40 and report.failed == 10
    assert "on_error: rollback" in report.message and "reverted 40 rows" in report.message
    assert dump(target_url) == baseline
    # Every row the batch wrote was written once and reverted once.
    assert set(write_counts(target_url).values()) == {2}
    run = j.get_run(report.run_id or "")
    assert run.status == "rolled_back"
    rb = j.get_run(report.extra["rollback_run"])
    assert rb.kind == "rollback" and rb.parent_run == run.id and rb.status == "completed"
    assert report.extra["rollback"]["counts"]["reverted"] == 40
    trigger = j.events(run.id, kinds=["rollback.triggered"])[0].payload
    assert (trigger["seg_no"], trigger["step"], trigger["cause"]) == (5, "items", "segment.failed")
    assert "CHECK" in trigger["error"].upper() or "constraint" in trigger["error"].lower()
    assert verify(j, remember=False).ok


def test_gate_refuses_the_automatic_rollback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 100)
    baseline = dump(url)
    settings = Settings.model_validate(
        {"policy": {"version": 3, "rollback": {"require_runbook": True}}}
    )
    cs = load_changeset(
        write_changeset(tmp_path / "cs.yaml", failing_doc(url, on_error="rollback"))
    )
    j = _journal(tmp_path)
    report = Engine(j, settings).apply(cs)
    assert report.exit_code == Exit.BLOCKED, report.message
    assert report.status == "paused" and "refused by the gate" in report.message
    refusal = report.extra["rollback"]
    assert refusal["refused"] and refusal["rule"] == "policy.rollback.require_runbook"
    assert refusal["policy_version"] == 3
    run = j.get_run(report.run_id or "")
    assert run.status == "paused"
    assert j.runs(kind="rollback", drills=None) == []
    assert len(dump(url)) == len(baseline) + 10 - 6  # what was applied stays applied
    refused = j.events(run.id, kinds=["gate.refused"])
    assert [e.payload["rule"] for e in refused] == ["policy.rollback.require_runbook"]
    assert j.count_events(run.id, ["rollback.triggered"]) == 1
    assert verify(j, remember=False).ok


def test_step_on_error_overrides_the_changeset(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 100)
    baseline = dump(url)
    # The change set says pause, the step says rollback: rolled back.
    doc = failing_doc(url, on_error="pause")
    doc["steps"][0]["on_error"] = "rollback"
    j = _journal(tmp_path)
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "a.yaml", doc)))
    assert report.status == "rolled_back" and dump(url) == baseline
    # The change set says rollback, the step says pause: paused, nothing reverted.
    doc = failing_doc(url, on_error="rollback", name="other")
    doc["steps"][0]["on_error"] = "pause"
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "b.yaml", doc)))
    assert report.status == "paused" and report.exit_code == Exit.FAILED
    assert "rollback_run" not in report.extra
    assert len(j.runs(kind="rollback", drills=None)) == 1


def test_guard_trip_follows_on_error_rollback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 30)
    baseline = dump(url)
    doc = changeset_doc(url, updates=range(1, 21), segment_size=5, on_error="rollback")
    doc["steps"][0]["invariants"] = [
        {"name": "few-v2", "sql": "SELECT COUNT(*) < 8 FROM items WHERE note = 'v2'", "expect": 1}
    ]
    j = _journal(tmp_path)
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "c.yaml", doc)))
    assert report.exit_code == Exit.FAILED and report.status == "rolled_back"
    assert report.applied == 10 and dump(url) == baseline
    run = j.get_run(report.run_id or "")
    assert j.events(run.id, kinds=["guard.tripped"])[0].payload["invariant"] == "few-v2"
    trigger = j.events(run.id, kinds=["rollback.triggered"])[0].payload
    assert trigger["cause"] == "guard.tripped" and trigger["seg_no"] == 2


def test_resumed_run_follows_on_error_rollback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 100)
    baseline = dump(url)
    path = write_changeset(tmp_path / "cs.yaml", failing_doc(url, on_error="rollback"))
    j = _journal(tmp_path)

    def pause_early(done: int, total: int) -> None:
        if done == 20:
            Engine(j, Settings()).request_pause(j.runs(limit=1)[0].id)

    first = Engine(j, Settings(), progress=pause_early).apply(load_changeset(path))
    assert first.status == "paused" and first.applied == 20
    assert j.runs(kind="rollback", drills=None) == []  # a pause is not an error
    report = Engine(j, Settings()).resume(first.run_id or "")
    assert report.exit_code == Exit.FAILED and report.status == "rolled_back"
    assert dump(url) == baseline
    assert j.get_run(report.extra["rollback_run"]).parent_run == first.run_id


def test_an_invariant_that_cannot_run_is_bad_input_before_any_write(tmp_path: Path) -> None:
    """A typo in an invariant used to pause the run after its first segment was written (and a
    dry run, which checks no invariant, called it fine): it is now refused up front."""
    from console.changes import ChangeSetInvalid

    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 10)
    before = dump(url)
    doc = changeset_doc(url, updates=range(1, 6), segment_size=2)
    doc["steps"][0]["invariants"] = [{"name": "typo", "sql": "SELEC 1", "expect": 1}]
    cs = load_changeset(write_changeset(tmp_path / "c.yaml", doc))
    j = Journal(f"sqlite:///{tmp_path / 'j.db'}", actor="t")
    for dry_run in (True, False):
        try:
            Engine(j, Settings()).apply(cs, dry_run=dry_run)
        except ChangeSetInvalid as exc:
            assert exc.exit_code == Exit.BAD_INPUT
            assert exc.problems[0].field == "steps[0].invariants[0].sql"
            assert "invariant 'typo' cannot run" in exc.problems[0].message
        else:
            raise AssertionError("an invariant that cannot run was accepted")
    assert dump(url) == before and j.runs(limit=5) == []


def test_a_dry_run_judges_invariants_inside_each_segment(tmp_path: Path) -> None:
    """A dry run rolls each segment back, so it judges the invariants inside the segment's
    transaction, before the rollback: the trip a real run would hit is reported, and the
    target is unchanged. An invariant that holds lets the dry run complete."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 30)
    before = dump(url)
    j = Journal(f"sqlite:///{tmp_path / 'j.db'}", actor="t")
    doc = changeset_doc(url, updates=range(1, 21), segment_size=5)
    doc["steps"][0]["invariants"] = [
        {"name": "no-v2-yet", "sql": "SELECT COUNT(*) FROM items WHERE note = 'v2'", "expect": 0}
    ]
    cs = load_changeset(write_changeset(tmp_path / "c.yaml", doc))
    report = Engine(j, Settings()).apply(cs, dry_run=True)
    assert report.exit_code == Exit.FAILED and report.status == "paused", report.message
    assert "invariant 'no-v2-yet' returned 5, expected 0" in report.message
    tripped = j.events(report.run_id, kinds=["guard.tripped"])
    assert tripped and tripped[0].payload["seg_no"] == 1
    assert dump(url) == before
    doc["version"] = 2
    doc["steps"][0]["invariants"] = [
        {"name": "no-negative", "sql": "SELECT COUNT(*) FROM items WHERE amount < 0", "expect": 0}
    ]
    fine = Engine(j, Settings()).apply(
        load_changeset(write_changeset(tmp_path / "c2.yaml", doc)), dry_run=True
    )
    assert fine.exit_code == Exit.DONE and fine.applied == 20, fine.message
    assert dump(url) == before
