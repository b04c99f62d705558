"""``journal prune``: payloads of finished runs' old events go, the chain still verifies, and
every edit of what is left (tombstones, hashes, the checkpoint, the recorded state) is caught."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from console.journal import Journal
from console.journal.prune import PRUNED_KIND, prune
from console.journal.verify import VerifyReport, verify

from .gen import Attacker, populate

LATER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _check(journal: Journal) -> VerifyReport:
    return verify(journal, remember=False, trusted=None)


def _pruned_seqs(journal: Journal) -> list[int]:
    return [
        e.seq for e in journal.events(limit=100_000) if e.payload_text.startswith('{"payload_sha')
    ]


@pytest.fixture
def generated(journal: Journal, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Journal:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    populate(journal, seed=5, runs=4, max_segments=3)
    # A run still going: never pruned.
    journal.append("run.created", {"kind": "apply", "rows_total": 1, "steps": []}, run_id="live1")
    journal.append("run.started", {}, run_id="live1")
    assert _check(journal).ok
    return journal


def _projection_rows(journal: Journal) -> dict[str, list[tuple[object, ...]]]:
    with journal.read() as conn:
        return {
            t: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {t}")).all())
            for t in ("runs", "steps", "segments", "operations", "checkpoints")
        }


def test_prune_keeps_the_chain_verifiable_and_the_projections(generated: Journal) -> None:
    before_rows = _projection_rows(generated)
    head_before = generated.head()
    report = prune(generated, LATER, reason="test")
    assert report.seq == head_before[0] + 1
    assert report.plan.events > 0
    assert "live1" not in report.plan.runs
    assert {"run": "live1", "reason": "not finished (status running)"} in report.plan.kept
    pruned = _pruned_seqs(generated)
    assert len(pruned) == report.plan.events
    # Hashes and every column but the payload are unchanged; projections too.
    after_rows = _projection_rows(generated)
    assert after_rows == before_rows
    checked = _check(generated)
    assert checked.ok, checked.problem
    assert checked.projections_checked
    assert any("pruned" in n for n in checked.notes)
    # The live run's events keep their payloads.
    assert all(not e.payload_text.startswith('{"payload_sha') for e in generated.events("live1"))
    # A second prune finds nothing left to prune.
    assert prune(generated, LATER).plan.events == 0


def test_a_failed_run_is_kept_for_resume(generated: Journal) -> None:
    """A failed run can still be resumed, which reloads its journaled change set: its
    payloads stay until it is resolved (completed or rolled back)."""
    generated.append("run.created", {"kind": "apply", "rows_total": 1, "steps": []}, run_id="f1")
    generated.append("run.failed", {"reason": "target gone"}, run_id="f1")
    generated.append("run.status", {"status": "failed", "final": True}, run_id="f1")
    assert generated.get_run("f1").status == "failed"
    report = prune(generated, LATER, reason="test")
    assert {"run": "f1", "reason": "not finished (status failed)"} in report.plan.kept
    assert all(not e.payload_text.startswith('{"payload_sha') for e in generated.events("f1"))


def test_events_after_the_prune_still_project_onto_pruned_runs(generated: Journal) -> None:
    report = prune(generated, LATER)
    run_id = report.plan.runs[0]
    generated.append("annotation", {"text": "after the prune", "ref_seq": None}, run_id=run_id)
    generated.append("run.status", {"status": "rolled_back", "final": True}, run_id=run_id)
    checked = _check(generated)
    assert checked.ok, checked.problem
    assert generated.get_run(run_id).status == "rolled_back"
    # A second prune of the new events stacks on the first.
    second = prune(generated, LATER)
    assert second.plan.events == 2
    checked = _check(generated)
    assert checked.ok, checked.problem


def test_dry_run_writes_nothing(generated: Journal) -> None:
    head = generated.head()
    report = prune(generated, LATER, dry_run=True)
    assert report.plan.events > 0 and report.seq is None
    assert generated.head() == head
    assert _pruned_seqs(generated) == []


def test_nothing_newer_than_the_cut_is_pruned(generated: Journal) -> None:
    events = generated.events(limit=100_000)
    middle = events[len(events) // 2]
    cut = dt.datetime.strptime(middle.ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    report = prune(generated, cut)
    for e in generated.events(limit=100_000):
        if e.payload_text.startswith('{"payload_sha'):
            assert e.ts < middle.ts
    for kept in report.plan.kept:
        assert kept["reason"]
    assert _check(generated).ok


def test_the_trusted_head_still_holds_after_a_prune(generated: Journal) -> None:
    assert verify(generated).ok  # remembers the head
    prune(generated, LATER)
    again = verify(generated)
    assert again.ok, again.problem
    assert again.trusted_seq is not None


def test_the_triggers_still_refuse_edits_outside_a_prune(generated: Journal) -> None:
    tomb = '{"payload_sha256":"' + "0" * 64 + '","pruned":true,"pruned_by":1}'
    with pytest.raises(DBAPIError, match="append-only"), generated.engine.begin() as conn:
        conn.execute(text("UPDATE events SET payload = :p WHERE seq = 2"), {"p": tomb})
    prune(generated, LATER)
    seq = _pruned_seqs(generated)[0]
    with pytest.raises(DBAPIError, match="append-only"), generated.engine.begin() as conn:
        conn.execute(text("UPDATE events SET payload = '{}' WHERE seq = :s"), {"s": seq})
    with pytest.raises(DBAPIError, match="append-only"), generated.engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE seq = :s"), {"s": seq})


@pytest.fixture
def pruned(generated: Journal) -> Journal:
    prune(generated, LATER)
    generated.append("journal.note", {"text": "after"})
    assert _check(generated).ok
    return generated


def _tombstone(attacker: Attacker, seq: int) -> dict[str, object]:
    value = json.loads(attacker.event(seq)["payload"])
    assert isinstance(value, dict)
    return value


def test_an_edited_tombstone_is_detected(pruned: Journal) -> None:
    seq = _pruned_seqs(pruned)[1]
    a = Attacker(pruned.url)
    try:
        tomb = _tombstone(a, seq)
        tomb["payload_sha256"] = "f" * 64
        a.set_field(seq, "payload", json.dumps(tomb, separators=(",", ":"), sort_keys=True))
        report = _check(pruned)
        assert not report.ok and report.first_bad_seq is not None
        assert "do not match its digest" in (report.problem or "")
    finally:
        a.close()


@pytest.mark.parametrize("column", ["hash", "kind", "ts"])
def test_an_edited_pruned_event_is_detected(pruned: Journal, column: str) -> None:
    seq = _pruned_seqs(pruned)[2]
    a = Attacker(pruned.url)
    try:
        value = "a" * 64 if column == "hash" else "2099-01-01T00:00:00.000000Z"
        if column == "kind":
            value = "run.completed"
        a.set_field(seq, column, value)
        report = _check(pruned)
        assert not report.ok
    finally:
        a.close()


def test_a_forged_tombstone_on_a_kept_event_is_detected(pruned: Journal) -> None:
    last = pruned.events(limit=1, newest_first=True)[0]
    a = Attacker(pruned.url)
    try:
        forged = '{"payload_sha256":"' + "0" * 64 + '","pruned":true,"pruned_by":1}'
        a.set_field(last.seq, "payload", forged)
        report = _check(pruned)
        assert not report.ok and report.first_bad_seq == last.seq
    finally:
        a.close()


def test_an_edited_checkpoint_or_recorded_state_is_detected(pruned: Journal) -> None:
    cp = pruned.events(kinds=[PRUNED_KIND], limit=1)[0]
    a = Attacker(pruned.url)
    try:
        a.execute(
            "UPDATE pruned_state SET row = replace(row, '\"status\":', '\"status\": ') "
            "WHERE tbl = 'runs'"
        )
        report = _check(pruned)
        assert not report.ok and report.first_bad_seq == cp.seq
        assert "state recorded by prune" in (report.problem or "")
        a.execute(
            "UPDATE pruned_state SET row = replace(row, '\"status\": ', '\"status\":') "
            "WHERE tbl = 'runs'"
        )
        assert _check(pruned).ok
        a.set_field(cp.seq, "payload", cp.payload_text.replace('"events":', '"events": '))
        assert not _check(pruned).ok
    finally:
        a.close()


def test_a_removed_pruned_event_is_detected(pruned: Journal) -> None:
    seq = _pruned_seqs(pruned)[0]
    a = Attacker(pruned.url)
    try:
        a.delete(seq)
        report = _check(pruned)
        assert not report.ok and report.first_bad_seq == seq
    finally:
        a.close()


def test_a_broken_chain_is_not_pruned(generated: Journal) -> None:
    from console.errors import JournalTampered

    seq = next(e.seq for e in generated.events(limit=1000) if e.kind == "segment.intent")
    a = Attacker(generated.url)
    try:
        a.set_field(seq, "actor", "mallory")
    finally:
        a.close()
    with pytest.raises(JournalTampered, match=f"event {seq} does not match its hash"):
        prune(generated, LATER)
