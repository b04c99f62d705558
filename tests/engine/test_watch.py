"""A segment's journal transaction takes the chain head only to chain its events, so that on a
shared PostgreSQL journal other writers do not queue behind its lease renewal and intent; and
the engine still notices every event another writer appended between its own transactions
(a pause request), even one chained between its look at the head and its own events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from console.engine import lease
from console.engine.lease import Holder
from console.engine.segments import JournalOp, SegmentPlan, SegmentRunner, Watch
from console.journal import Journal
from console.targets.sql import SqlTarget


@pytest.fixture
def pg_journal(pg_url: str) -> Iterator[Journal]:
    j = Journal(pg_url, actor="oncall")
    yield j
    j.close()


def _note(j: Journal, text_: str) -> None:
    j.append("journal.note", {"text": text_})


def _commit(j: Journal, watch: Watch, between: Journal | None = None) -> None:
    """One transaction as the engine's: look, (another writer commits), append, commit."""
    with j.write() as w:
        watch.begin(w)
        if between is not None:
            _note(between, "between")
        w.append("journal.note", {"text": "ours"})
    watch.end(w)


def test_watch_notices_a_writer_that_chains_between_its_look_and_its_events(
    pg_journal: Journal, pg_url: str
) -> None:
    other = Journal(pg_url, actor="pauser")
    try:
        watch = Watch()
        _commit(pg_journal, watch)
        watch.foreign = False
        _commit(pg_journal, watch)
        assert not watch.foreign  # nobody else wrote
        _commit(pg_journal, watch, between=other)  # chained before ours, after our look
        assert watch.foreign
        watch.foreign = False
        _commit(pg_journal, watch)
        assert not watch.foreign
        _note(other, "after")  # between our transactions
        with pg_journal.write() as w:
            watch.begin(w)
        watch.end(w)
        assert watch.foreign
        watch.foreign = False
        with pg_journal.write() as w:  # a transaction that chains nothing
            watch.begin(w)
        watch.end(w)
        assert not watch.foreign
        assert watch.seen == pg_journal.head()[0]
    finally:
        other.close()


def test_watch_on_sqlite_sees_only_other_transactions(tmp_path: Path) -> None:
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="oncall")
    watch = Watch()
    _commit(j, watch)
    watch.foreign = False
    _commit(j, watch)
    assert not watch.foreign
    _note(j, "someone else")
    _commit(j, watch)
    assert watch.foreign
    assert watch.seen == j.head()[0]


def test_a_segment_transaction_leaves_the_head_free_until_it_chains(
    pg_journal: Journal, pg_url: str, tmp_path: Path
) -> None:
    (tmp_path / "t.db").touch()
    target = SqlTarget(f"sqlite:///{tmp_path / 't.db'}")
    holder = Holder.me()
    with pg_journal.write() as w:
        lease.acquire(w.conn, pg_journal, "run1", holder)
    runner = SegmentRunner(pg_journal, target, holder)
    op = JournalOp(
        op_no=1,
        table="items",
        op="update",
        key={"id": 1},
        before={"id": 1, "amount": "1.00"},
        after={"id": 1, "amount": "2.00"},
        inverse={"op": "update", "set": {"amount": "1.00"}},
        idem="k1",
    )
    plan = SegmentPlan("run1", "corr1", 1, 1, "items", ("id",), [op])
    probe = create_engine(pg_url)
    try:
        with pg_journal.write() as w:
            runner.watch.begin(w)
            runner.write_intent(w, plan)  # lease renewal and the intent, buffered
            with probe.connect() as conn, conn.begin():  # another writer takes the head
                conn.execute(text("SELECT seq FROM journal_head WHERE id = 1 FOR UPDATE NOWAIT"))
            assert w.base_seq is None
        runner.watch.end(w)
        assert w.base_seq is not None
        assert runner.watch.seen == pg_journal.head()[0]
        with pg_journal.write() as w:  # the head, once taken, is held to the commit
            w.append("journal.note", {"text": "x"})
            assert w.seq > 0
            with pytest.raises(OperationalError), probe.connect() as conn, conn.begin():
                conn.execute(text("SELECT seq FROM journal_head WHERE id = 1 FOR UPDATE NOWAIT"))
    finally:
        probe.dispose()
        target.close()


def test_a_stalled_executor_whose_run_was_taken_over_records_nothing(tmp_path: Path) -> None:
    """Its lease expired while it was stopped, and `backout resume` took the run: when it
    wakes, its next journal transaction finds the lease gone and stops before recording."""
    from console.engine.lease import LeaseLost

    j = Journal(f"sqlite:///{tmp_path / 'j.db'}", actor="t")
    (tmp_path / "t.db").touch()
    target = SqlTarget(f"sqlite:///{tmp_path / 't.db'}")
    stalled, resumer = Holder.me(), Holder.me()
    with j.write() as w:
        lease.acquire(w.conn, j, "run1", stalled)
    with j.write() as w:  # what acquire does once the stalled holder's lease has expired
        lease.release(w.conn, "run1", stalled)
        lease.acquire(w.conn, j, "run1", resumer)
    op = JournalOp(1, "items", "update", {"id": 1}, {"id": 1}, {"id": 1}, {"op": "x"}, "k1")
    runner = SegmentRunner(j, target, stalled)
    events = j.count_events()
    with pytest.raises(LeaseLost, match="taken over by another process"):
        runner.journal_intent(SegmentPlan("run1", "c", 1, 1, "items", ("id",), [op]))
    assert j.count_events() == events
    target.close()
