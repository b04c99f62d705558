"""``--workers N``: segments written in parallel on PostgreSQL and MariaDB give the same
target and the same journal as one worker; SQLite refuses; overlapping keys wait."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast

import pytest

from console.changes import load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.engine.lanes import InFlight, Lanes
from console.errors import Exit
from console.journal import Journal
from console.journal.store import EngineQueries
from console.journal.verify import verify
from console.rollback.execute import Options, Rollback
from tests.engine.helpers import changeset_doc, dump, make_items, write_changeset, write_counts


@pytest.fixture(params=["postgres", "mariadb"])
def concurrent_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("pg_url" if request.param == "postgres" else "mariadb_url"))


def _ops(j: Journal, run_id: str) -> list[tuple[Any, ...]]:
    return [
        (o.op_no, o.tbl, o.op, o.key, o.before, o.after, o.inverse, o.idem_key, o.status)
        for o in EngineQueries(j).operations_in(run_id, 1, 2**31 - 1)
    ]


def test_workers_match_one_worker_and_roll_back(concurrent_url: str, tmp_path: Path) -> None:
    url = concurrent_url
    make_items(url, 600)
    baseline = dump(url)
    doc = changeset_doc(
        url,
        updates=range(1, 401),
        inserts=range(5001, 5061),
        deletes=range(501, 541),
        segment_size=20,
    )
    path = write_changeset(tmp_path / "cs.yaml", doc)
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")
    one = Engine(j, Settings()).apply(load_changeset(path))
    assert one.exit_code == Exit.DONE, one.message
    after_one, ops_one = dump(url), _ops(j, one.run_id or "")
    assert Rollback(j, Settings()).execute(one.run_id or "", Options()).exit_code == Exit.DONE
    assert dump(url) == baseline
    # The rolled-back version is applied again, with four workers.
    four = Engine(j, Settings()).apply(load_changeset(path), workers=4)
    assert four.exit_code == Exit.DONE, four.message
    assert four.applied == one.applied == 500
    assert dump(url) == after_one
    assert _ops(j, four.run_id or "") == ops_one
    segs = j.segments(four.run_id or "")
    assert [s.status for s in segs] == ["applied"] * 25
    assert [s.first_op for s in segs] == sorted(s.first_op for s in segs)
    assert set(write_counts(url).values()) == {3}  # apply, rollback, apply: once each
    assert verify(j, remember=False).ok
    back = Rollback(j, Settings()).execute(four.run_id or "", Options())
    assert back.exit_code == Exit.DONE, back.message
    assert dump(url) == baseline


def test_on_error_rollback_with_workers(concurrent_url: str, tmp_path: Path) -> None:
    url = concurrent_url
    make_items(url, 300)
    baseline = dump(url)
    doc = changeset_doc(url, updates=range(1, 201), segment_size=10, on_error="rollback")
    doc["steps"][0]["operations"][150]["set"]["amount"] = "-1.00"  # row 151: CHECK fails
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")
    report = Engine(j, Settings()).apply(
        load_changeset(write_changeset(tmp_path / "cs.yaml", doc)), workers=4
    )
    assert report.exit_code == Exit.FAILED and report.status == "rolled_back", report.message
    assert dump(url) == baseline
    # Segments in flight beside the failing one were journaled before the pause: nothing
    # is left in doubt, and every row written was reverted exactly once.
    run_id = report.run_id or ""
    assert all(s.status in ("applied", "failed") for s in j.segments(run_id))
    assert set(write_counts(url).values()) == {2}
    assert verify(j, remember=False).ok


def test_workers_refused_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 20)
    path = write_changeset(tmp_path / "cs.yaml", changeset_doc(url, updates=range(1, 11)))
    journal = tmp_path / "journal.db"
    proc = subprocess.run(
        [sys.executable, "-m", "console", "--journal", str(journal), "apply", str(path), *W4],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "BACKOUT_USER": "tester"},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "--workers 4" in err and "SQLite" in err
    assert write_counts(url) == {}
    assert Journal(f"sqlite:///{journal}", actor="x").count_runs() == 0


W4 = ("--workers", "4")


def _flight(n: int, keys: set[str], step: int = 1) -> InFlight:
    future: Future[Any] = Future()
    future.set_result(n)
    seg = cast(Any, type("Seg", (), {"step_no": step, "seg_no": n}))
    plan = cast(Any, type("Plan", (), {"table": "items", "seg_no": n}))
    return InFlight(
        "db", seg, plan, cast(Any, object()), frozenset(("db", "items", k) for k in keys), future
    )


def test_overlapping_keys_wait_disjoint_keys_run_together() -> None:
    lanes = Lanes(4, cast(Any, None))
    assert list(lanes.make_room(1, frozenset())) == []  # sets the step
    lanes.flight.extend([_flight(1, {"1", "2"}), _flight(2, {"3"}), _flight(3, {"4"})])
    ks = lambda *k: frozenset(("db", "items", x) for x in k)  # noqa: E731
    # Disjoint keys: nothing has to finish first.
    assert list(lanes.make_room(1, ks("5", "6"))) == []
    # Key 3 is being written by segment 2: segments are collected (oldest first) up to it.
    assert [f.seg.seg_no for f in lanes.make_room(1, ks("3", "7"))] == [1, 2]
    assert [f.seg.seg_no for f in lanes.flight] == [3]
    # The same key in another table is no overlap.
    assert list(lanes.make_room(1, frozenset({("db", "other", "4")}))) == []
    # A new step waits for everything in flight.
    lanes.flight.append(_flight(4, {"9"}))
    assert [f.seg.seg_no for f in lanes.make_room(2, ks("100"))] == [3, 4]
    # All workers busy: the oldest is collected.
    lanes.flight.extend([_flight(n, {str(n * 10)}, step=2) for n in range(5, 9)])
    assert [f.seg.seg_no for f in lanes.make_room(2, ks("x"))] == [5]


def test_pause_request_with_workers_then_resume(pg_url: str, tmp_path: Path) -> None:
    make_items(pg_url, 400)
    path = write_changeset(
        tmp_path / "cs.yaml", changeset_doc(pg_url, updates=range(1, 301), segment_size=10)
    )
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")

    def pause_midway(done: int, total: int) -> None:
        if done == 100:
            Engine(j, Settings()).request_pause(j.runs(limit=1)[0].id)

    report = Engine(j, Settings(), progress=pause_midway).apply(load_changeset(path), workers=4)
    assert report.status == "paused" and "paused by" in (report.reason or "")
    run_id = report.run_id or ""
    # The segments in flight when the pause was seen finished and were journaled with it.
    segs = j.segments(run_id)
    assert segs and all(s.status == "applied" for s in segs)
    assert 100 <= report.applied < 300
    assert set(write_counts(pg_url)) == set(range(1, report.applied + 1))
    done = Engine(j, Settings()).resume(run_id)
    assert done.status == "completed" and done.applied == 300
    assert write_counts(pg_url) == dict.fromkeys(range(1, 301), 1)
    assert j.get_run(run_id).rows_applied == 300
    assert verify(j, remember=False).ok
