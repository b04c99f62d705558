"""The drill flag follows the run, whoever writes: a plain journal handle (a trainee's CLI
command, the console) appending to a drill run, or creating a run from it, stamps the drill's
id; real runs are never stamped. SQLite and PostgreSQL journals."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import main
from console.config import Settings
from console.drill import service
from console.journal import Journal
from console.journal.verify import verify


def _created(parent: str | None = None, kind: str = "apply") -> dict[str, object]:
    return {"kind": kind, "parent_run": parent, "changeset": "cs", "version": 1, "steps": []}


def test_events_on_a_drill_run_are_stamped_by_any_handle(journal_url: str) -> None:
    drill = Journal(journal_url, actor="trainer", drill="d-7")
    drill.append("run.created", _created(), run_id="drill-run")
    drill.close()
    plain = Journal(journal_url, actor="trainee")
    try:
        plain.append("run.created", _created(), run_id="real-run")
        plain.append("annotation", {"text": "looks wrong"}, run_id="drill-run")
        plain.append("annotation", {"text": "fine"}, run_id="real-run")
        with plain.write() as w:  # a rollback of the drill run: created and used at once
            w.append("run.created", _created("drill-run", "rollback"), run_id="rb")
            w.append("rollback.planned", {"items": 1}, run_id="rb")
        plain.append("checkpoint", {"seg_no": 1}, run_id="rb")
        # A new handle (another command) finds the drill of the rollback run via its parent.
        again = Journal(journal_url, actor="approver")
        again.append("annotation", {"text": "approved"}, run_id="rb")
        again.close()
        stamped = {
            run: {e.payload.get("drill") for e in plain.events(run, limit=100)}
            for run in ("drill-run", "rb", "real-run")
        }
        assert stamped == {"drill-run": {"d-7"}, "rb": {"d-7"}, "real-run": {None}}
        assert {r.id for r in plain.runs(drills=True)} == {"drill-run", "rb"}
        assert [r.id for r in plain.runs(drills=False)] == ["real-run"]
        assert verify(plain, remember=False).ok
    finally:
        plain.close()


def test_outage_leaves_the_run_in_doubt_and_resume_is_flagged(pg_url: str, tmp_path: Path) -> None:
    """The outage scenario on a shared PostgreSQL journal: the batch's process was killed
    after a segment reached the target, so that segment is in doubt; a plain `backout resume`
    resolves it by reading the target, and its events are the drill's."""
    started = service.start(
        pg_url, Settings(), "trainer", "outage-midway", seed=3, root=tmp_path / "box"
    )
    j = Journal(pg_url, actor="test")
    try:
        run = j.get_run(started.run_id)
        assert run.status == "running" and run.drill
        doubt = [s.seg_no for s in j.segments(run.id) if s.status == "intent"]
        assert doubt == [started.facts["cut_after_segment"]]
    finally:
        j.close()
    with pytest.raises(SystemExit) as done:
        main(["--journal", pg_url, "resume", started.run_id])
    assert done.value.code == 0
    j = Journal(pg_url, actor="test")
    try:
        resumed = next(iter(j.events(started.run_id, kinds=["run.resumed"])))
        assert resumed.payload["in_doubt"] == doubt and resumed.payload["drill"] == started.drill_id
        assert j.get_run(started.run_id).status == "completed" and j.runs(drills=False) == []
    finally:
        j.close()
