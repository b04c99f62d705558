"""On PostgreSQL a writer takes the chain head only when it must (its flush, or as soon as its
``conn``, ``seq`` or ``hash`` is used): writers that interleave still make one gapless, valid
chain, each one's events in its own order, and every event handed back carries its final link.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from console.journal import Journal
from console.journal.store import T_EVENTS
from console.journal.verify import verify

WORKER = r"""
import json, os, sys, time
from pathlib import Path
from console.journal import Journal

url, name, folder = sys.argv[1], sys.argv[2], Path(sys.argv[5])
txs, workers = int(sys.argv[3]), int(sys.argv[4])


def wait_for(pattern, count):
    deadline = time.monotonic() + 60
    while len(list(folder.glob(pattern))) < count:
        if time.monotonic() > deadline:
            sys.exit(f"waited too long for {pattern}")
        time.sleep(0.002)


journal = Journal(url, actor="bench")
wait_for("go", 1)
run = f"run-{name}"
links = []
n = 0
for t in range(txs):
    with journal.write() as w:
        events = []
        if t == 0:
            events.append(w.append("run.created", {"rows_total": txs}, run_id=run, corr=name))
        for _ in range(3):
            n += 1
            events.append(w.append("journal.note", {"writer": name, "n": n}, run_id=run))
    links += [[e.seq, e.hash, e.ts] for e in events]  # read after the commit only
    if t == 0:  # every writer commits once before any commits twice: they must interleave
        (folder / f"first-{name}").touch()
        wait_for("first-*", workers)
print(json.dumps(links))
"""

WORKERS = 4
TRANSACTIONS = 12


def test_writers_that_interleave_make_one_gapless_valid_chain(pg_url: str, tmp_path: Path) -> None:
    Journal(pg_url, actor="bench").close()  # the schema, before the race on appends
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                pg_url,
                f"w{i}",
                *map(str, (TRANSACTIONS, WORKERS, tmp_path)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]
    time.sleep(0.5)
    (tmp_path / "go").touch()
    handed: dict[str, list[list[object]]] = {}
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        handed[f"w{i}"] = json.loads(out)

    journal = Journal(pg_url, actor="bench")
    total = WORKERS * (1 + 3 * TRANSACTIONS)
    with journal.read() as conn:
        rows = conn.execute(
            select(T_EVENTS.c.seq, T_EVENTS.c.ts, T_EVENTS.c.run_id, T_EVENTS.c.hash)
            .add_columns(T_EVENTS.c.payload)
            .order_by(T_EVENTS.c.seq)
        ).all()
    assert [r.seq for r in rows] == list(range(1, total + 1))  # gapless
    assert journal.head()[0] == total
    report = verify(journal, remember=False)
    assert report.ok, report.problem
    # Timestamps are taken as events are chained: never earlier than the event before.
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(rows))
    by_seq = {r.seq: r for r in rows}
    for name, links in handed.items():
        # What append() handed back is the stored link, read once the transaction committed.
        assert [[by_seq[s].seq, by_seq[s].hash, by_seq[s].ts] for s, _, _ in links] == links
        mine = [r for r in rows if r.run_id == f"run-{name}"]
        assert [r.seq for r in mine] == sorted(s for s, _, _ in links)
        notes = [json.loads(r.payload)["n"] for r in mine if '"n":' in r.payload]
        assert notes == list(range(1, 3 * TRANSACTIONS + 1))  # its own order
    # Interleaved: every writer's first transaction precedes every writer's second.
    firsts = [min(s for s, _, _ in links) for links in handed.values()]
    seconds = [sorted(s for s, _, _ in links)[4] for links in handed.values()]
    assert max(firsts) < min(seconds)
    journal.close()


def _impatient(pg_url: str) -> Journal:
    """A second handle whose writes give up after 300 ms waiting for a lock."""
    return Journal(f"{pg_url}?options=-c%20lock_timeout%3D300", actor="bob")


def test_a_writer_that_only_appended_lets_others_commit(pg_url: str) -> None:
    journal = Journal(pg_url, actor="alice")
    other = _impatient(pg_url)
    with ExitStack() as stack:
        w = stack.enter_context(journal.write())
        first = w.append("journal.note", {"text": "mine"})
        second = w.append("journal.note", {"text": "mine too"})
        theirs = other.append("journal.note", {"text": "theirs"})  # not kept waiting
        assert theirs.seq == 1
        # Reading a link chains what this writer appended, after the head it now holds.
        assert first.seq == 2
        assert second.seq == 3
        assert w.seq == 3
        assert w.hash == second.hash
    assert [e.as_dict() for e in journal.events()] == [e.as_dict() for e in (theirs, first, second)]
    assert type(first) is type(theirs)  # a plain StoredEvent once chained
    assert first == journal.events()[1]
    report = verify(journal, remember=False)
    assert report.ok, report.problem
    other.close()
    journal.close()


@pytest.mark.parametrize("touch", ["conn", "seq", "hash"])
def test_using_the_transaction_takes_the_head(pg_url: str, touch: str) -> None:
    """What a caller reads or writes through ``w.conn`` stays serialised with every other
    writer, as does whatever it decides from ``w.seq`` or ``w.hash``."""
    journal = Journal(pg_url, actor="alice")
    other = _impatient(pg_url)
    with journal.write() as w:
        w.append("journal.note", {"text": "mine"})
        getattr(w, touch)
        with pytest.raises(DBAPIError) as refused:
            other.append("journal.note", {"text": "theirs"})
        assert getattr(refused.value.orig, "sqlstate", None) == "55P03"  # lock_not_available
    assert other.append("journal.note", {"text": "theirs"}).seq == 2
    assert verify(journal, remember=False).ok
    other.close()
    journal.close()


def test_a_write_returns_once_its_events_are_flushed(pg_url: str) -> None:
    """The transaction that moves the head commits without waiting for the disk (so the head
    is free sooner); ``write()`` waits for it afterwards."""
    journal = Journal(pg_url, actor="alice")
    for _ in range(5):
        with journal.write() as w:
            w.append("journal.note", {"text": "durable"})
            written = w.conn.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar()
        with journal.read() as conn:
            flushed = conn.exec_driver_sql(
                "SELECT pg_current_wal_flush_lsn() >= %(lsn)s::pg_lsn", {"lsn": written}
            ).scalar()
        assert flushed
    journal.close()
