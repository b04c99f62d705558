"""An apply killed while capturing its baseline (before its run exists) leaves rows under a
run id nobody knows; the next apply sweeps them, and never the rows of a capture still live."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from console.changes import load_changeset
from console.config import Settings
from console.engine import lease
from console.engine.apply import Engine
from console.errors import Exit
from console.journal import Journal, new_id
from tests.engine.helpers import backout, changeset_doc, make_items, write_changeset


def _orphans(journal: Path) -> tuple[int, int]:
    """Snapshot rows and leases under run ids that have no run."""
    db = sqlite3.connect(journal)
    try:
        rows = db.execute(
            "SELECT count(*) FROM snapshots WHERE run_id NOT IN (SELECT id FROM runs)"
        ).fetchone()[0]
        leases = db.execute(
            "SELECT count(*) FROM leases WHERE run_id NOT IN (SELECT id FROM runs)"
        ).fetchone()[0]
    finally:
        db.close()
    return int(rows), int(leases)


def _small_apply(tmp_path: Path, journal: Journal, name: str) -> None:
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    make_items(url, 20)
    doc = changeset_doc(url, name=name, updates=range(1, 5))
    report = Engine(journal, Settings()).apply(
        load_changeset(write_changeset(tmp_path / f"{name}.yaml", doc))
    )
    assert report.exit_code == Exit.DONE, report.message


def test_a_capture_killed_before_its_run_exists_is_swept_by_the_next_apply(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'big.db'}"
    make_items(url, 60_000)
    doc = changeset_doc(url, updates=range(1, 50_001), segment_size=100)
    cs = write_changeset(tmp_path / "cs.yaml", doc)
    journal = tmp_path / "journal.db"
    Journal(str(journal), actor="killer").close()  # the schema, so that it can be watched
    proc = backout(journal, "apply", str(cs))
    deadline = time.monotonic() + 120
    try:
        while _orphans(journal)[0] == 0:  # baseline rows written, no run yet
            assert proc.poll() is None, "the apply ended before its capture could be caught"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    rows, leases = _orphans(journal)
    assert rows > 0 and leases == 1  # what the kill left: rows nobody would ever read

    j = Journal(str(journal), actor="next")
    try:
        _small_apply(tmp_path, j, "next")
    finally:
        j.close()
    assert _orphans(journal) == (0, 0)


def test_a_live_capture_is_not_swept(tmp_path: Path) -> None:
    """A lease whose holder runs (this process) keeps its rows; one whose holder is gone
    (a process that ended) loses them."""
    j = Journal(str(tmp_path / "journal.db"), actor="tester")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live_run, dead_run = new_id(), new_id()
    try:
        with j.write() as w:
            lease.acquire(w.conn, j, live_run, lease.Holder.me())
            lease.acquire(w.conn, j, dead_run, lease.Holder(lease.Holder.me().host, dead.pid, "x"))
            w.add_snapshot_rows(
                [
                    {
                        "run_id": r,
                        "phase": "baseline",
                        "tbl": "items",
                        "key_text": "[1]",
                        "row": None,
                        "fingerprint": "-",
                    }
                    for r in (live_run, dead_run)
                ]
            )
        _small_apply(tmp_path, j, "meanwhile")
        with j.read() as conn:
            left = {
                r
                for (r,) in conn.exec_driver_sql(
                    "SELECT run_id FROM snapshots WHERE phase = 'baseline' AND run_id IN (?, ?)",
                    (live_run, dead_run),
                )
            }
            leases = {r for (r,) in conn.exec_driver_sql("SELECT run_id FROM leases")}
    finally:
        j.close()
    assert left == {live_run}
    assert live_run in leases and dead_run not in leases
