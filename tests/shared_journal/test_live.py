"""Live updates: an approval made on one connection is seen on another within a second."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from console.journal import Journal
from console.journal.live import HeadWatcher, watch
from console.journal.setup import open_journal
from tests.shared_journal.conftest import Team
from tests.shared_journal.test_roles import DECISION


def _seen_within(journal_writer: Journal, watcher_journal: Journal, kind: str) -> float:
    seen: list[tuple[int, float]] = []
    arrived = threading.Event()

    def on_head(seq: int) -> None:
        seen.append((seq, time.monotonic()))
        arrived.set()

    watcher = watch(watcher_journal, on_head, poll_interval=0.1)
    try:
        time.sleep(0.3)  # the watcher is listening
        start = time.monotonic()
        ev = journal_writer.append(kind, DECISION, run_id="r1")
        assert arrived.wait(1.0), "no live update within a second"
        seq, when = seen[-1]
        assert seq == ev.seq
        new = watcher_journal.events(after_seq=seq - 1)
        assert [e.kind for e in new] == [kind]
        return when - start
    finally:
        watcher.close()


def test_approval_seen_on_another_connection_postgres(team: Team) -> None:
    approver = open_journal(team.url_as(team.approver), "x")
    console = open_journal(team.url_as(team.auditor), "x")
    assert _seen_within(approver, console, "approval.granted") < 1.0
    approver.close()
    console.close()


def test_approval_seen_on_another_connection_sqlite(tmp_path: Path) -> None:
    url = str(tmp_path / "j.db")
    writer, reader = Journal(url, actor="ann"), Journal(url, actor="bob")
    assert _seen_within(writer, reader, "approval.granted") < 1.0
    writer.close()
    reader.close()


def test_listener_reconnects_after_its_connection_is_killed(pg_url: str) -> None:
    j = Journal(pg_url, actor="ann")
    statuses: list[str] = []
    watcher = HeadWatcher(j, poll_interval=0.1, on_status=statuses.append)
    heads = watcher.heads(timeout=5)
    j.append("note", {"n": 1})
    assert next(heads) == 1
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    admin.dispose()
    j.append("note", {"n": 2})  # pool_pre_ping: the writer reconnects
    assert next(heads) == 2  # committed while the listener was down: re-read on reconnect
    j.append("note", {"n": 3})
    assert next(heads) == 3
    assert any("lost" in s for s in statuses) and any("restored" in s for s in statuses)
    watcher.close()
    j.close()
