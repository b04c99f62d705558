"""Journaled apply on real SQLite, PostgreSQL and MariaDB targets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from console.changes import ChangeSetInvalid, load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.errors import BadInput, Exit
from console.journal import Journal
from console.journal.verify import verify
from tests.engine.helpers import (
    changeset_doc,
    dump,
    make_items,
    sqlite_dump,
    write_changeset,
    write_counts,
)


def _journal(tmp_path: Path) -> Journal:
    return Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")


def test_apply_updates_inserts_deletes(target_url: str, tmp_path: Path) -> None:
    make_items(target_url, 100)
    doc = changeset_doc(
        target_url, updates=range(1, 41), inserts=range(1001, 1011), deletes=range(90, 96)
    )
    cs = load_changeset(write_changeset(tmp_path / "cs.yaml", doc))
    j = _journal(tmp_path)
    report = Engine(j, Settings()).apply(cs)
    assert report.exit_code == Exit.DONE, report.message
    assert (report.applied, report.failed, report.conflicts) == (56, 0, 0)
    rows = {r[0]: r for r in dump(target_url)}
    assert str(rows[5][2]).startswith("5.25") and rows[5][3] == "v2"
    assert 1005 in rows and 92 not in rows
    counts = write_counts(target_url)
    assert all(counts[i] == 1 for i in [*range(1, 41), *range(1001, 1011), *range(90, 96)])
    assert len(counts) == 56  # nothing else was touched
    run = j.get_run(report.run_id or "")
    assert run.status == "completed" and run.rows_applied == 56
    assert j.count_operations(run.id, ["applied"]) == 56
    assert verify(j, remember=False).ok


def test_dry_run_leaves_target_identical(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 50)
    before = sqlite_dump(tmp_path / "t.db")
    cs = load_changeset(
        write_changeset(
            tmp_path / "cs.yaml", changeset_doc(url, updates=range(1, 30), deletes=range(40, 45))
        )
    )
    j = _journal(tmp_path)
    report = Engine(j, Settings()).apply(cs, dry_run=True)
    assert report.exit_code == Exit.DONE
    assert report.dry_run and report.applied == 34
    assert sqlite_dump(tmp_path / "t.db") == before
    assert write_counts(url) == {}
    run = j.get_run(report.run_id or "")
    assert run.dry_run and run.status == "completed"
    # A dry run never counts as the real application.
    real = Engine(j, Settings()).apply(cs)
    assert real.exit_code == Exit.DONE and real.run_id != report.run_id


def test_same_version_same_digest_is_noop_other_digest_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 30)
    path = write_changeset(tmp_path / "cs.yaml", changeset_doc(url, updates=range(1, 11)))
    j = _journal(tmp_path)
    first = Engine(j, Settings()).apply(load_changeset(path))
    assert first.exit_code == Exit.DONE
    again = Engine(j, Settings()).apply(load_changeset(path))
    assert again.exit_code == Exit.DONE and again.extra.get("duplicate")
    assert again.run_id == first.run_id
    assert write_counts(url) == dict.fromkeys(range(1, 11), 1)
    assert j.count_events(None, ["changeset.duplicate"]) == 1
    changed = write_changeset(tmp_path / "cs2.yaml", changeset_doc(url, updates=range(1, 12)))
    with pytest.raises(ChangeSetInvalid) as err:
        Engine(j, Settings()).apply(load_changeset(changed))
    assert err.value.exit_code == Exit.BAD_INPUT
    assert "new version" in err.value.message
    assert j.count_events(None, ["changeset.rejected"]) == 1
    assert j.count_runs() == 1


def test_invalid_changeset_writes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 20)
    before = sqlite_dump(tmp_path / "t.db")
    doc = changeset_doc(url, updates=range(1, 3), inserts=range(3, 4))  # insert of existing 3
    cs = load_changeset(write_changeset(tmp_path / "cs.yaml", doc))
    j = _journal(tmp_path)
    with pytest.raises(ChangeSetInvalid) as err:
        Engine(j, Settings()).apply(cs)
    assert "exists" in err.value.message and "cs.yaml:" in err.value.message
    assert sqlite_dump(tmp_path / "t.db") == before
    assert j.count_runs() == 0
    assert j.count_events(None, ["changeset.rejected"]) == 1


def test_constraint_failure_pauses_with_part_applied_then_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 60)
    doc = changeset_doc(url, updates=range(1, 51), segment_size=10)
    doc["steps"][0]["operations"][24]["set"]["amount"] = "-5.00"  # row 25: CHECK fails
    path = write_changeset(tmp_path / "cs.yaml", doc)
    j = _journal(tmp_path)
    report = Engine(j, Settings()).apply(load_changeset(path))
    assert report.exit_code == Exit.FAILED and report.status == "paused"
    assert report.applied == 20 and report.failed == 10  # segments 1-2 applied, 3 failed
    assert set(write_counts(url)) == set(range(1, 21))
    run = j.get_run(report.run_id or "")
    assert run.status == "paused" and "segment 3" in (run.reason or "")
    # Resuming retries the failed segment: it fails again, nothing applied twice.
    again = Engine(j, Settings()).resume(run.id)
    assert again.status == "paused" and again.applied == 20
    assert all(n == 1 for n in write_counts(url).values())
    assert verify(j, remember=False).ok


def test_out_of_band_write_during_run_is_a_conflict(target_url: str, tmp_path: Path) -> None:
    make_items(target_url, 40)
    cs = load_changeset(
        write_changeset(
            tmp_path / "cs.yaml",
            changeset_doc(
                target_url,
                updates=range(1, 31),
                segment_size=10,
                on_error="continue",
                max_failed_ratio=0.5,
            ),
        )
    )
    j = _journal(tmp_path)
    other = create_engine(target_url)

    def meddle(done: int, total: int) -> None:
        if done == 10:  # after the first segment, someone edits a row of the third
            with other.begin() as conn:
                conn.execute(text("UPDATE items SET note = 'by hand' WHERE id = 25"))

    report = Engine(j, Settings(), progress=meddle).apply(cs)
    other.dispose()
    assert report.exit_code == Exit.DONE, report.message
    assert (report.applied, report.conflicts) == (29, 1)
    rows = {r[0]: r for r in dump(target_url)}
    assert rows[25][3] == "by hand"  # not overwritten
    conflict = j.events(report.run_id, kinds=["op.conflict"])[0].payload["detail"]
    assert conflict["now"]["note"] == "by hand" and conflict["ours"]["note"] == "v2"
    assert conflict["before"]["note"] == "note 25"


def test_invariant_trips_and_pauses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 30)
    doc = changeset_doc(url, updates=range(1, 21), segment_size=5)
    doc["steps"][0]["invariants"] = [
        {"name": "few-v2", "sql": "SELECT COUNT(*) < 8 FROM items WHERE note = 'v2'", "expect": 1}
    ]
    j = _journal(tmp_path)
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "c.yaml", doc)))
    assert report.status == "paused" and report.exit_code == Exit.FAILED
    assert report.applied == 10  # tripped after the second segment
    tripped = j.events(report.run_id, kinds=["guard.tripped"])
    assert tripped and tripped[0].payload["invariant"] == "few-v2"


def test_pause_request_stops_at_boundary_and_resume_finishes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 50)
    path = write_changeset(tmp_path / "cs.yaml", changeset_doc(url, updates=range(1, 41)))
    j = _journal(tmp_path)
    holder: dict[str, str] = {}

    def pause_midway(done: int, total: int) -> None:
        if done == 20:
            run = j.runs(limit=1)[0]
            holder["run"] = run.id
            Engine(j, Settings()).request_pause(run.id)

    report = Engine(j, Settings(), progress=pause_midway).apply(load_changeset(path))
    assert report.status == "paused" and report.applied == 20
    done = Engine(j, Settings()).resume(holder["run"])
    assert done.status == "completed" and done.applied == 40
    assert write_counts(url) == dict.fromkeys(range(1, 41), 1)


def test_unknown_target_is_bad_input(tmp_path: Path) -> None:
    doc = changeset_doc("no-such-target", updates=range(1, 3))
    cs = load_changeset(write_changeset(tmp_path / "cs.yaml", doc))
    with pytest.raises(BadInput):
        Engine(_journal(tmp_path), Settings()).apply(cs)


def test_csv_keys_are_coerced_like_the_plan(tmp_path: Path) -> None:
    """CSV cells are text; keys must match the reflected integer key in baseline and plan."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 20)
    csv = tmp_path / "u.csv"
    csv.write_text("id,amount,note\n5,1.25,csv\n7,2.25,\n")
    cs = load_changeset(
        csv, table="items", key=["id"], op="update", name="u", version=1, target=url
    )
    report = Engine(_journal(tmp_path), Settings()).apply(cs)
    assert report.exit_code == Exit.DONE, report.message
    rows = {r[0]: r for r in dump(url)}
    assert rows[5][3] == "csv" and rows[7][3] is None  # an empty CSV cell is NULL
    assert write_counts(url) == {5: 1, 7: 1}


@pytest.mark.parametrize("keep_bytes", [0, 2_000])
def test_planning_from_kept_operations_equals_reading_the_change_set_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_bytes: int
) -> None:
    """Validation keeps the coerced operations for the planner (up to ``KEEP_BYTES``); past
    that, or for none, the planner reads the change set again: the same run either way."""
    from console.engine.apply import Baseline

    doc = changeset_doc("", updates=range(1, 31), inserts=range(500, 505), segment_size=7)
    ops = [{"op": "update", "key": {"id": 100 + i}, "set": {"note": "step 2"}} for i in range(9)]
    doc["steps"].append({**doc["steps"][0], "name": "again", "operations": ops})

    def run(name: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        folder = tmp_path / name
        folder.mkdir()
        url = f"sqlite:///{folder / 't.db'}"
        make_items(url, 120)
        cs = load_changeset(write_changeset(folder / "cs.yaml", {**doc, "target": url}))
        j = _journal(folder)
        report = Engine(j, Settings()).apply(cs)
        assert report.exit_code == Exit.DONE, report.message
        ops = [
            (o.op_no, o.seg_no, o.step_no, o.op, o.key, o.before, o.after, o.inverse, o.status)
            for o in j.operations(report.run_id or "", limit=1000)
        ]
        j.close()
        return ops, dump(url)

    kept_ops, kept_rows = run("kept")
    monkeypatch.setattr(Baseline, "KEEP_BYTES", keep_bytes)  # 2,000: a few ops, then none
    again_ops, again_rows = run("again")
    assert len(kept_ops) == 44
    assert again_ops == kept_ops
    assert again_rows == kept_rows
