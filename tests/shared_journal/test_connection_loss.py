"""The journal's PostgreSQL connections are killed between segments of a real apply: the run
goes on (or stops at a segment boundary and resumes) and nothing is lost or doubled."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from console.changes import load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.errors import Exit
from console.journal import Journal
from console.journal.verify import verify
from tests.engine.helpers import changeset_doc, make_items, write_changeset, write_counts


def _kill_journal_connections(journal_url: str) -> int:
    admin = create_engine(journal_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    admin.dispose()
    return int(killed)


def _apply_in_child(pg_url: str, cs_path: str, die_at: int | None) -> None:
    """Apply, killing the journal's connections after segments 1 and 2; with ``die_at`` the
    process then dies as a crash would (its lease names a dead pid, so resume may take over)."""
    import os

    journal = Journal(pg_url, actor="tester")

    def progress(done: int, total: int) -> None:
        if done in (10, 20):
            assert _kill_journal_connections(pg_url) >= 1
            if done == die_at:
                os._exit(9)

    Engine(journal, Settings(), progress=progress).apply(load_changeset(Path(cs_path)))
    journal.close()


@pytest.mark.parametrize("die_at", [None, 20], ids=["survives", "dies-then-resume"])
def test_connection_killed_between_segments(
    pg_url: str, tmp_path: Path, die_at: int | None
) -> None:
    target = f"sqlite:///{tmp_path / 't.db'}"
    make_items(target, 40)
    doc = changeset_doc(target, updates=range(1, 31), inserts=range(1001, 1011), segment_size=10)
    cs_path = write_changeset(tmp_path / "cs.yaml", doc)
    child = mp.get_context("spawn").Process(
        target=_apply_in_child, args=(pg_url, str(cs_path), die_at)
    )
    child.start()
    child.join(60)
    assert child.exitcode == (0 if die_at is None else 9)
    journal = Journal(pg_url, actor="tester")
    run = journal.runs(limit=1)[0]
    if die_at is None:
        assert run.status == "completed"  # the lost connections were replaced (pre-ping)
    else:
        # A segment's outcome is journaled with the next segment's intent, so the segment
        # written just before the crash is in doubt: resume resolves it from the target.
        assert run.status != "completed" and 10 <= run.rows_applied < 40
        report = Engine(journal, Settings()).resume(run.id)
        assert report.exit_code == Exit.DONE, report.message
        run = journal.get_run(run.id)
    assert run.status == "completed" and run.rows_applied == 40
    counts = write_counts(target)
    assert counts == dict.fromkeys([*range(1, 31), *range(1001, 1011)], 1)  # none lost or twice
    assert journal.count_operations(run.id, ["applied"]) == 40
    assert verify(journal, remember=False).ok
    journal.close()
