"""Rolling back a run an outage left in doubt: the rollback settles the in-doubt segment by
reading the target (written rows reverted, unwritten rows left alone), without resuming the
batch first; and a run another process is still applying is refused until it is paused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from console.config import Settings
from console.engine import lease
from console.errors import Exit
from console.journal import Journal
from console.journal.verify import verify
from console.rollback.execute import Options, Rollback
from tests.engine.helpers import changeset_doc, dump, make_items, write_changeset, write_counts

# The child applies the change set and is SIGKILLed once segment K has reached the target:
# its outcome is journaled with the next segment's intent, which never comes.
CHILD = """
import os, signal, sys
from console.changes import load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.journal import Journal

journal, changeset, after = sys.argv[1], sys.argv[2], int(sys.argv[3])
done = 0
def progress(_done, _total):
    global done
    done += 1
    if done >= after:
        os.kill(os.getpid(), signal.SIGKILL)
Engine(Journal(journal, actor="n8n"), Settings(), progress=progress).apply(
    load_changeset(changeset))
"""


def _killed_mid_batch(tmp: Path, url: str, after: int) -> str:
    journal = f"sqlite:///{tmp / 'journal.db'}"
    doc = changeset_doc(
        url, updates=range(1, 41), inserts=range(500, 510), deletes=range(45, 49), segment_size=6
    )
    cs = write_changeset(tmp / "cs.yaml", doc)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, journal, str(cs), str(after)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return journal


def test_rollback_settles_the_in_doubt_segment_without_resuming(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    make_items(url, 60)
    baseline = dump(url)
    journal_url = _killed_mid_batch(tmp_path, url, after=3)
    j = Journal(journal_url, actor="oncall")
    try:
        run = j.runs(limit=1)[0]
        segs = j.segments(run.id)
        doubt = [s for s in segs if s.status == "intent"]
        assert run.status == "running" and len(doubt) == 1, [s.status for s in segs]
        written = write_counts(url)  # the in-doubt segment did reach the target
        in_doubt_ops = j.operations(run.id, status=["pending"], limit=100)
        assert in_doubt_ops and all(written.get(_id(o.key), 0) == 1 for o in in_doubt_ops)

        report = Rollback(j, Settings()).execute(run.id, Options())
        assert report.exit_code == Exit.DONE, report.message
        assert dump(url) == baseline
        assert j.get_run(run.id).status == "rolled_back"
        # Every row the batch wrote was written exactly twice (batch, rollback); no other.
        counts = write_counts(url)
        assert set(counts) == set(written) and set(counts.values()) == {2}
        assert verify(j, remember=False).ok
    finally:
        j.close()


def test_unwritten_in_doubt_rows_are_left_alone(tmp_path: Path) -> None:
    """The in-doubt segment's target transaction never committed (here: its rows are put
    back by hand, as if it had not): the rollback reverts the earlier segments only."""
    url = f"sqlite:///{tmp_path / 'target.db'}"
    make_items(url, 60)
    baseline = dump(url)
    journal_url = _killed_mid_batch(tmp_path, url, after=2)
    j = Journal(journal_url, actor="oncall")
    try:
        run = j.runs(limit=1)[0]
        pending = j.operations(run.id, status=["pending"], limit=100)
        ids = [_id(o.key) for o in pending]
        eng = create_engine(url)
        with eng.begin() as conn:  # undo the in-doubt segment: as if it never committed
            for row in baseline:
                if row[0] in ids:
                    conn.execute(
                        text("UPDATE items SET amount = :a, note = :n WHERE id = :id"),
                        {"a": row[2], "n": row[3], "id": row[0]},
                    )
        eng.dispose()
        plan = Rollback(j, Settings()).plan(run.id, Options())
        assert not plan.conflicts
        assert not {i.parent_op for i in plan.items} & {o.op_no for o in pending}
        report = Rollback(j, Settings()).execute(run.id, Options())
        assert report.exit_code == Exit.DONE, report.message
        assert dump(url) == baseline
    finally:
        j.close()


def test_a_run_still_being_applied_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    make_items(url, 60)
    journal_url = _killed_mid_batch(tmp_path, url, after=2)
    j = Journal(journal_url, actor="oncall")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = j.runs(limit=1)[0]
        alive = lease.Holder(lease.Holder.me().host, sleeper.pid, "live")
        with j.write() as w:  # another live process holds the run's lease
            lease.acquire(w.conn, j, run.id, alive)
        before = dump(url)
        with pytest.raises(lease.RunHeld, match="pause it first"):
            Rollback(j, Settings()).execute(run.id, Options())
        assert dump(url) == before
    finally:
        sleeper.kill()
        sleeper.wait()
        j.close()


def _id(key: str) -> int:
    return int(json.loads(key)["id"])
