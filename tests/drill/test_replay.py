"""Replay of a recorded run in a sandbox: the sandbox ends where the real target was, every
event carries the drill id, and the source journal and target are never written."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from console.changes import load_changeset
from console.cli import main
from console.config import Settings
from console.drill.clock import SimClock
from console.drill.replay import Recording, Replayer, build_sandbox
from console.engine.apply import Engine
from console.errors import Exit
from console.journal import Journal
from console.journal.store import T_EVENTS, T_RUNS, T_SNAPSHOTS, parse_ts
from console.journal.verify import verify
from tests.engine.helpers import changeset_doc, dump, make_items, write_changeset

SCOPE = {*range(1, 13), *range(1001, 1004), 20, 21}


@dataclass
class Recorded:
    journal_url: str
    target_path: Path
    run_id: str


def record(tmp_path: Path, journal_url: str) -> Recorded:
    """A small completed run: 12 updates, 3 inserts, 2 deletes in segments of 4."""
    target = tmp_path / "target.db"
    url = f"sqlite:///{target}"
    make_items(url, 30)
    doc = changeset_doc(
        url, updates=range(1, 13), inserts=range(1001, 1004), deletes=range(20, 22), segment_size=4
    )
    cs = load_changeset(write_changeset(tmp_path / "cs.yaml", doc))
    journal = Journal(journal_url, actor="oncall")
    try:
        report = Engine(journal, Settings()).apply(cs)
    finally:
        journal.close()
    assert report.exit_code == Exit.DONE, report.message
    return Recorded(journal_url, target, report.run_id or "")


@pytest.fixture
def recorded(tmp_path: Path) -> Recorded:
    return record(tmp_path, f"sqlite:///{tmp_path / 'journal.db'}")


def rollback_meeting_an_edit(rec: Recorded) -> Recorded:
    """Someone edits row 3 by hand after the run; its rollback meets the edit as a conflict
    (exit 3). The rollback run, recorded."""
    import sqlite3

    from console.rollback.execute import Options, Rollback

    with sqlite3.connect(rec.target_path) as conn:
        conn.execute("UPDATE items SET note = 'edited by hand' WHERE id = 3")
    source = Journal(rec.journal_url, actor="oncall")
    try:
        report = Rollback(source, Settings()).execute(rec.run_id, Options())
        [rollback_run] = source.runs(kind="rollback")
    finally:
        source.close()
    assert report.exit_code == Exit.REVIEW, report.message
    return Recorded(rec.journal_url, rec.target_path, rollback_run.id)


def files_digest(*paths: Path) -> dict[str, str]:
    """sha256 of each file and of its WAL companions, as they are on disk."""
    out: dict[str, str] = {}
    for p in paths:
        for f in sorted(p.parent.glob(p.name + "*")):
            out[f.name] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def rows(url: str) -> list[dict[str, object]]:
    """The items in scope by column name (a sandbox table orders its columns otherwise)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        found = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM items ORDER BY id"))]
    engine.dispose()
    return [r for r in found if r["id"] in SCOPE]


def counts(url: str) -> tuple[int, int, int, str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        n_events = conn.execute(select(func.count()).select_from(T_EVENTS)).scalar_one()
        n_runs = conn.execute(select(func.count()).select_from(T_RUNS)).scalar_one()
        n_snaps = conn.execute(select(func.count()).select_from(T_SNAPSHOTS)).scalar_one()
        head = conn.execute(text("SELECT hash FROM journal_head")).scalar_one()
    engine.dispose()
    return n_events, n_runs, n_snaps, head


def replay(rec: Recorded, sandbox_dir: Path, speed: float = 1e6) -> Replayer:
    source = Journal(rec.journal_url, create=False)
    try:
        recording = Recording.read(source, rec.run_id)
    finally:
        source.close()
    replayer = Replayer(recording, build_sandbox(recording, sandbox_dir), speed=speed)
    replayer.open()
    return replayer


def replayed(rec: Recorded, sandbox_dir: Path) -> Replayer:
    """Replayed to the end at full speed, handles closed."""
    replayer = replay(rec, sandbox_dir)
    try:
        replayer.run_to_end()
    finally:
        replayer.close()
    return replayer


def test_replay_ends_where_the_run_left_the_target(recorded: Recorded, tmp_path: Path) -> None:
    before = files_digest(tmp_path / "journal.db", recorded.target_path)
    replayer = replayed(recorded, tmp_path / "drill")
    assert replayer.finished and replayer.diverged == 0
    # The sandbox holds the run's rows exactly as the run left the real target.
    assert rows(replayer.sandbox.target_url) == rows(f"sqlite:///{recorded.target_path}")
    drill = Journal(replayer.sandbox.journal_url, create=False)
    source = Journal(recorded.journal_url, create=False)
    try:
        ours = drill.events(limit=10_000)
        theirs = source.events(recorded.run_id, limit=10_000)
        assert {e.payload.get("drill") for e in ours} == {replayer.sandbox.drill_id}
        assert [e.kind for e in ours] == [
            "drill.replay.started",
            *(e.kind for e in theirs),
            "drill.replay.finished",
        ]
        # Recorded ids, times and actors; the run is flagged a drill and ends as it did.
        assert [(e.run_id, e.ts, e.actor) for e in ours[1:-1]] == [
            (e.run_id, e.ts, e.actor) for e in theirs
        ]
        run, real_run = drill.get_run(recorded.run_id), source.get_run(recorded.run_id)
        assert run.drill and not real_run.drill
        assert (run.status, run.rows_applied) == (real_run.status, real_run.rows_applied)
        assert drill.runs(drills=False) == []
        assert run.target == replayer.sandbox.target_url
        assert len(list(drill.snapshot_rows(run.id, "baseline"))) == len(SCOPE)
        assert verify(drill, remember=False).ok
    finally:
        drill.close()
        source.close()
    # The recorded journal and target were only read: byte for byte as they were.
    assert files_digest(tmp_path / "journal.db", recorded.target_path) == before


def test_a_postgresql_source_journal_is_left_unchanged(pg_url: str, tmp_path: Path) -> None:
    rec = record(tmp_path, pg_url)
    before = counts(pg_url)
    target_before = files_digest(rec.target_path)
    replayer = replayed(rec, tmp_path / "drill")
    assert replayer.finished
    assert counts(pg_url) == before
    assert files_digest(rec.target_path) == target_before


def test_seek_back_rebuilds_and_seek_forward_catches_up(recorded: Recorded, tmp_path: Path) -> None:
    replayer = replay(recorded, tmp_path / "drill")
    try:
        initial = dump(replayer.sandbox.target_url)
        replayer.seek(replayer.total)
        after = dump(replayer.sandbox.target_url)
        assert after != initial and replayer.finished
        replayer.seek(3)  # run.created, snapshot.taken, run.started: nothing written yet
        assert replayer.position == 3 and not replayer.finished
        assert dump(replayer.sandbox.target_url) == initial
        drill = Journal(replayer.sandbox.journal_url, create=False)
        try:
            assert drill.count_events() == 1 + 3
        finally:
            drill.close()
        replayer.seek(replayer.total)
        assert dump(replayer.sandbox.target_url) == after
        # Seek by time: every event recorded at or before that moment is replayed.
        moment = replayer.time_of(6)
        replayer.seek_time(moment)
        recorded_by_then = [e for e in replayer.rec.events if parse_ts(e.ts) <= moment]
        assert replayer.position == len(recorded_by_then) and replayer.now() == moment
    finally:
        replayer.close()


def test_the_clock_runs_at_speed_and_stands_still_when_paused() -> None:
    wall = [100.0]
    start = dt.datetime(2026, 11, 27, 2, 13, tzinfo=dt.UTC)
    clock = SimClock(start, speed=5, wall=lambda: wall[0])
    wall[0] += 10
    assert clock.now() == start  # paused until played
    clock.play()
    wall[0] += 10
    assert clock.now() == start + dt.timedelta(seconds=50)
    assert clock.wall_seconds_until(start + dt.timedelta(seconds=60)) == 2.0
    clock.pause()
    wall[0] += 10
    assert clock.now() == start + dt.timedelta(seconds=50)
    assert clock.wall_seconds_until(start + dt.timedelta(seconds=60)) is None
    clock.play()
    clock.set_speed(1)
    wall[0] += 10
    assert clock.now() == start + dt.timedelta(seconds=60)
    clock.jump(start)
    assert clock.now() == start


def test_replay_waits_the_recorded_gaps_divided_by_the_speed(
    recorded: Recorded, tmp_path: Path
) -> None:
    replayer = replay(recorded, tmp_path / "drill", speed=4)
    wall = [0.0]
    replayer.clock = SimClock(replayer.start_time, speed=4, wall=lambda: wall[0])
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # no real wait: the fake wall clock moves instead
        slept.append(seconds)
        wall[0] += seconds

    try:
        replayer.run_to_end(sleep=sleep)
    finally:
        replayer.close()
    events = replayer.rec.events
    span = (replayer.time_of(len(events) - 1) - replayer.time_of(0)).total_seconds()
    assert replayer.finished
    assert sum(slept) == pytest.approx(span / 4, rel=1e-3, abs=1e-4)


def test_headless_cli_replay(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files_digest(tmp_path / "journal.db", recorded.target_path)
    args = ["--journal", recorded.journal_url, "drill", "replay", recorded.run_id[:6]]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--speed", "100000", "--dir", str(tmp_path / "gd"), "--headless", "--json"])
    assert exc.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["run_id"] == recorded.run_id and out["diverged"] == 0
    assert out["target"] == f"sqlite:///{(tmp_path / 'gd' / 'target.db').resolve()}"
    assert rows(out["target"]) == rows(f"sqlite:///{recorded.target_path}")
    assert files_digest(tmp_path / "journal.db", recorded.target_path) == before
    with pytest.raises(SystemExit) as bad:
        main([*args, "--speed", "0", "--headless"])
    assert bad.value.code == Exit.BAD_INPUT and "--speed" in capsys.readouterr().err
    # The trainee's own commands on the sandbox journal carry the drill id too.
    with pytest.raises(SystemExit) as rolled:
        main(["--journal", out["journal"], "--as", "trainee", "rollback", out["run_id"]])
    assert rolled.value.code == Exit.DONE
    capsys.readouterr()
    drill = Journal(out["journal"], create=False)
    try:
        [rollback] = drill.runs(kind="rollback", drills=True)
        events = drill.events(rollback.id, limit=1000)
        assert events and {e.payload.get("drill") for e in events} == {out["drill_id"]}
        assert {e.actor for e in events} == {"trainee"}
    finally:
        drill.close()
    # A journal that does not exist is bad input, and is not created.
    missing = tmp_path / "missing.db"
    with pytest.raises(SystemExit) as gone:
        main(["--journal", str(missing), "drill", "replay", "abc", "--headless"])
    assert gone.value.code == Exit.BAD_INPUT and not missing.exists()
    assert "does not exist" in capsys.readouterr().err
    # A directory that already holds a drill is refused (exit 2), nothing replaced.
    with pytest.raises(SystemExit) as again:
        main([*args, "--dir", str(tmp_path / "gd"), "--headless"])
    assert again.value.code == Exit.BAD_INPUT
    assert "already holds files" in capsys.readouterr().err


def test_a_trainee_rolls_back_the_drill_run_in_the_sandbox(
    recorded: Recorded, tmp_path: Path
) -> None:
    """The replayed run names the sandbox target: its rollback writes the sandbox only."""
    from console.rollback.execute import Options, Rollback

    before = files_digest(tmp_path / "journal.db", recorded.target_path)
    replayer = replay(recorded, tmp_path / "drill")
    initial = rows(replayer.sandbox.target_url)
    try:
        replayer.run_to_end()
    finally:
        replayer.close()
    assert rows(replayer.sandbox.target_url) != initial
    trainee = Journal(
        replayer.sandbox.journal_url, actor="trainee", drill=replayer.sandbox.drill_id
    )
    try:
        report = Rollback(trainee, Settings()).execute(recorded.run_id, Options())
        assert report.exit_code == Exit.DONE, report.message
        assert trainee.get_run(recorded.run_id).status == "rolled_back"
        [rollback] = trainee.runs(kind="rollback", drills=True)
        assert rollback.parent_run == recorded.run_id
        assert rollback.target == replayer.sandbox.target_url
    finally:
        trainee.close()
    assert rows(replayer.sandbox.target_url) == initial
    assert files_digest(tmp_path / "journal.db", recorded.target_path) == before


def test_a_recorded_rollback_run_replays_too(recorded: Recorded, tmp_path: Path) -> None:
    """A rollback run starts from its own before-images (the batch's after state) and ends
    at the baseline, as the real target did; its drill journal verifies."""
    from console.rollback.execute import Options, Rollback

    source = Journal(recorded.journal_url, actor="oncall")
    try:
        report = Rollback(source, Settings()).execute(recorded.run_id, Options())
        [rollback_run] = source.runs(kind="rollback")
    finally:
        source.close()
    assert report.exit_code == Exit.DONE, report.message
    rollback = Recorded(recorded.journal_url, recorded.target_path, rollback_run.id)
    replayer = replayed(rollback, tmp_path / "drill")
    assert replayer.finished and replayer.diverged == 0
    assert rows(replayer.sandbox.target_url) == rows(f"sqlite:///{recorded.target_path}")
    drill = Journal(replayer.sandbox.journal_url, create=False)
    try:
        run = drill.get_run(rollback.run_id)
        assert run.kind == "rollback" and run.drill and run.rows_applied == 17
        assert verify(drill, remember=False).ok
    finally:
        drill.close()


def test_seek_back_restarts_from_the_nearest_save(recorded: Recorded, tmp_path: Path) -> None:
    fresh = replay(recorded, tmp_path / "fresh")
    saved = replay(recorded, tmp_path / "saved")
    saved.save_every = 5
    try:
        fresh.seek(7)
        saved.seek(saved.total)
        end = rows(saved.sandbox.target_url)
        saved.seek(7)
        assert saved.restored_from == 5 and saved.position == 7 and not saved.finished
        assert rows(saved.sandbox.target_url) == rows(fresh.sandbox.target_url)
        saved.seek(saved.total)
        assert rows(saved.sandbox.target_url) == end and saved.finished
    finally:
        fresh.close()
        saved.close()
    journal = Journal(saved.sandbox.journal_url, create=False)
    try:
        kinds = [e.kind for e in journal.events(limit=1000)]
        recorded_kinds = [e.kind for e in saved.rec.events]
        assert kinds == ["drill.replay.started", *recorded_kinds, "drill.replay.finished"]
        assert verify(journal, remember=False).ok
    finally:
        journal.close()


def test_a_run_on_a_postgresql_target_replays_into_sqlite(pg_url: str, tmp_path: Path) -> None:
    """The sandbox is SQLite whatever the real target was: its rows mean what the real rows
    mean after the run (column by column, by the real column's kind); the real target is only
    read by this test."""
    from console.targets.sql import SqlTarget
    from console.targets.values import same

    make_items(pg_url, 30)
    doc = changeset_doc(
        pg_url, updates=range(1, 13), inserts=range(1001, 1004), deletes=range(20, 22)
    )
    cs = load_changeset(write_changeset(tmp_path / "cs.yaml", doc))
    journal = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="oncall")
    try:
        run_id = Engine(journal, Settings()).apply(cs).run_id or ""
    finally:
        journal.close()
    rec = Recorded(f"sqlite:///{tmp_path / 'journal.db'}", tmp_path / "none.db", run_id)
    replayer = replayed(rec, tmp_path / "drill")
    assert replayer.finished and replayer.diverged == 0
    keys = [{"id": i} for i in sorted(SCOPE)]
    with SqlTarget(pg_url) as real, SqlTarget(replayer.sandbox.target_url) as sandbox:
        theirs = real.read_rows("items", ["id"], keys)
        ours = sandbox.read_rows("items", ["id"], keys)
        assert set(ours) == set(theirs) and len(ours) == len(SCOPE) - 2  # 2 deleted
        columns = real.table("items").columns
        for k, row in theirs.items():
            assert set(ours[k]) == set(row)
            for c, v in row.items():
                assert same(columns[c], ours[k][c], v), (k, c, ours[k][c], v)


def test_a_conflict_brings_the_out_of_band_edit_into_the_sandbox(
    recorded: Recorded, tmp_path: Path
) -> None:
    """Someone edited a row after the batch; the recorded rollback met it as a conflict. The
    replay puts that edit in the sandbox, which ends as the real target did, edit included."""
    rollback = rollback_meeting_an_edit(recorded)
    replayer = replayed(rollback, tmp_path / "drill")
    assert replayer.finished and replayer.diverged == 0
    ours = rows(replayer.sandbox.target_url)
    assert ours == rows(f"sqlite:///{recorded.target_path}")
    assert [r["note"] for r in ours if r["id"] == 3] == ["edited by hand"]
    # A score of this drill counts the trainee's timings from the replayed conflict on.
    from console.drill.service import find

    drill = Journal(replayer.sandbox.journal_url, create=False)
    try:
        found = find(drill, replayer.sandbox.drill_id[:12])
        conflicts = drill.events(kinds=["op.conflict"], limit=10)
    finally:
        drill.close()
    assert found.kind == "replay" and found.run_id == rollback.run_id
    assert conflicts and found.shown_at[0] == conflicts[0].ts


def test_a_fix_run_replays_after_its_parent_and_the_edits_it_repaired(
    recorded: Recorded, tmp_path: Path
) -> None:
    """A fix run is about its parent: the parent's story is replayed first, then the hand
    edits the fix found (the journal never saw them) are set, so the fix's segments apply as
    recorded and the sandbox ends as the real target did."""
    import sqlite3

    from console.reconcile.fixrun import apply_fixes, fix_plan

    with sqlite3.connect(recorded.target_path) as conn:
        conn.execute("UPDATE items SET note = 'hand edit' WHERE id IN (2, 3)")
        conn.execute("DELETE FROM items WHERE id = 1001")
    source = Journal(recorded.journal_url, actor="oncall")
    try:
        plan = fix_plan(source, Settings(), recorded.run_id)
        report = apply_fixes(source, Settings(), recorded.run_id, plan_digest=plan.digest)
        [fix_run] = source.runs(kind="fix")
        parent_status = source.get_run(recorded.run_id).status
    finally:
        source.close()
    assert report.exit_code == Exit.DONE and report.applied == 3, report.message
    before = files_digest(
        Path(recorded.journal_url.removeprefix("sqlite:///")), recorded.target_path
    )
    fix = Recorded(recorded.journal_url, recorded.target_path, fix_run.id)
    replayer = replayed(fix, tmp_path / "drill")
    assert replayer.finished and replayer.diverged == 0
    assert rows(replayer.sandbox.target_url) == rows(f"sqlite:///{recorded.target_path}")
    assert replayer.total == len(replayer.rec.events) and replayer.rec.history
    drill = Journal(replayer.sandbox.journal_url, create=False)
    try:
        assert {r.id for r in drill.runs(drills=True)} == {recorded.run_id, fix_run.id}
        assert drill.get_run(recorded.run_id).status == parent_status
        assert drill.get_run(fix_run.id).status == "completed"
        assert verify(drill, remember=False).ok
    finally:
        drill.close()
    assert (
        files_digest(Path(recorded.journal_url.removeprefix("sqlite:///")), recorded.target_path)
        == before
    )
