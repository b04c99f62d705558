"""``verify`` in two processes on a long SQLite journal: the other one checks the chain and
replays a part of the runs while this one replays the rest (``in_two``)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from console.gcpause import gc_paused
from console.journal.projections import PRIMARY_KEYS, MemoryProjection
from console.journal.store import _SQLITE_HEAD
from console.journal.verify_pass import (
    EVENTS_SQL,
    RUN_COLUMN,
    Part,
    Progress,
    Walk,
    cursor_batches,
    part_clean,
    projection_events,
    reported,
    walk,
)


def sqlite_path(conn: Any) -> str | None:
    if conn.dialect.name != "sqlite":
        return None
    path = conn.engine.url.database
    return path if path and path != ":memory:" and not path.startswith("file:") else None


# The share of the events of runs that the other process replays, besides the chain.
_THEIR_SHARE = 0.35


def pivot_run(db: sqlite3.Connection) -> str | None:
    """The first run of the other process's part, or None (it checks the chain only) if runs
    change each other's rows (rollbacks, fix runs) or there are runbook executions. Only a
    guess from the tables: a run that does so anyway makes the two passes unclean."""
    if db.execute("SELECT 1 FROM runs WHERE parent_run IS NOT NULL LIMIT 1").fetchone():
        return None
    for table in PRIMARY_KEYS:
        if table not in RUN_COLUMN and db.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone():
            return None
    (n,) = db.execute("SELECT count(*) FROM events WHERE run_id IS NOT NULL").fetchone()
    row = db.execute(
        "SELECT run_id FROM events WHERE run_id IS NOT NULL ORDER BY run_id LIMIT 1 OFFSET ?",
        (int(n * (1 - _THEIR_SHARE)),),
    ).fetchone()
    return None if row is None else str(row[0])


def in_two(
    path: str,
    genesis: str,
    trusted_seq: int | None,
    head_seq: int,
    head_hash: str,
    progress: Progress | None = None,
) -> Walk | None:
    """The journal checked by two processes at once: the other one checks the chain and the
    payloads of the kinds without projection, and replays the runs of its part; this one
    replays the rest. Each compares its part of the projection tables. The chain pass if
    everything is clean, else None: one pass then finds the first problem and reports it.

    Both read the same state: writers are held (``BEGIN IMMEDIATE``, as an appender takes it)
    from before this process's snapshot until the other has taken its own, about half a
    second. Without that, a row edited and restored between the two snapshots could show
    each pass a consistent half of two different states.
    """
    try:
        hold = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        hold.execute("BEGIN IMMEDIATE")
    except sqlite3.Error:
        return None
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN")
        if db.execute(_SQLITE_HEAD).fetchone() != (head_seq, head_hash):
            hold.close()
            return None  # appended since the caller read the head
        pivot = pivot_run(db)
        mine, theirs = (None, None) if pivot is None else (Part(None, pivot), Part(pivot, None))
        with _beside(path, genesis, trusted_seq, theirs, release=hold.close) as other:
            memory = MemoryProjection()
            try:
                walked = walk(
                    reported(projection_events(db, mine), progress, head_seq),
                    genesis=genesis,
                    pruned=None,
                    trusted_seq=trusted_seq,
                    chain=False,
                    memory=memory,
                    passive_json=False,
                    part=mine,
                )
            except Exception:  # one pass raises it again, unless it stops at a broken link
                return None
            if walked.failure is not None or not part_clean(db, memory, mine):
                return None
            return other(head_seq, head_hash)
    finally:
        hold.close()  # (again: closing twice is harmless)
        db.close()


OtherPass = Callable[[int, str], "Walk | None"]

# The other process: a fresh interpreter that imports only this module (``multiprocessing``'s
# spawn would run the caller's main module again, and SQLite connections must not cross a fork).
_CHILD = (
    "import sys; sys.path[:0] = sys.argv[1:]; "
    "import console.journal.verify_parallel as v; v.child_main()"
)


@contextmanager
def _beside(
    path: str,
    genesis: str,
    trusted_seq: int | None,
    part: Part | None,
    release: Callable[[], None],
) -> Iterator[OtherPass]:
    """The other process's pass over the SQLite journal at ``path``, meanwhile (see in_two);
    ``release`` is called once it has its snapshot (or failed to start).

    Yields ``result(head_seq, head_hash)``: its chain pass, or None unless everything it
    checked is clean and it read that head.
    """
    answers: list[Walk | None] = []
    try:
        # Unbuffered bytes: the first line is read apart from the answer (``snapshot_taken``),
        # and a buffered reader would take the answer with it when the child is quick, out
        # of ``communicate``'s sight (an empty answer: "not clean", on a busy machine).
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, *(p for p in sys.path if p)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
    except OSError:
        release()
        yield lambda _seq, _hash: None
        return
    try:
        assert child.stdin is not None
        request = {
            "path": path,
            "genesis": genesis,
            "trusted_seq": trusted_seq,
            "part": None if part is None else [part.lo, part.hi],
        }
        child.stdin.write(json.dumps(request).encode() + b"\n")
        asked = True
    except OSError:
        asked = False

    def snapshot_taken() -> None:  # its first line; an empty one if it ended before
        try:
            assert child.stdout is not None
            child.stdout.readline()
        finally:
            release()

    waiter = threading.Thread(target=snapshot_taken, daemon=True)
    waiter.start()

    def result(head_seq: int, head_hash: str) -> Walk | None:
        if not answers:
            waiter.join()
            answers.append(_answer(child, (head_seq, head_hash)) if asked else None)
        return answers[0]

    try:
        yield result
    finally:
        if not answers or not asked:  # stopped early, or it was never asked: end it
            child.kill()
            waiter.join()
            child.communicate()


def _answer(child: subprocess.Popen[bytes], head: tuple[int, str]) -> Walk | None:
    try:
        out, _err = child.communicate()
        answer = json.loads(out)
        walked = Walk(
            None,
            int(answer["count"]),
            str(answer["head"]),
            answer["trusted_hash_seen"],
        )
        clean = answer["clean"] is True and answer["failure"] is None
        seen = (int(answer["seen"][0]), str(answer["seen"][1]))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return walked if child.returncode == 0 and clean and seen == head else None


def child_main() -> None:
    """The other process (see ``_beside``): the request on stdin, the answer on stdout."""
    request = json.loads(sys.stdin.readline())
    part = request["part"]

    def snapshot_taken() -> None:
        sys.stdout.write("snapshot\n")
        sys.stdout.flush()

    seen, walked, clean = other_pass(
        request["path"],
        request["genesis"],
        request["trusted_seq"],
        None if part is None else Part(part[0], part[1]),
        snapshot_taken,
    )
    sys.stdout.write(json.dumps({"seen": seen, "clean": clean, **asdict(walked)}))


def other_pass(
    path: str,
    genesis: str,
    trusted_seq: int | None,
    part: Part | None,
    snapshot_taken: Callable[[], None] = lambda: None,
) -> tuple[tuple[int, str], Walk, bool]:
    """The head, the chain pass over the events of one snapshot (replaying ``part`` too), and
    whether all it checked is clean."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN")
        seq, head = db.execute(_SQLITE_HEAD).fetchone()
        snapshot_taken()
        memory = None if part is None else MemoryProjection()
        with gc_paused():
            walked = walk(
                cursor_batches(db.cursor(), EVENTS_SQL),
                genesis=genesis,
                pruned=None,
                trusted_seq=trusted_seq,
                chain=True,
                memory=memory,
                passive_json=True,
                part=part,
            )
            clean = walked.failure is None and (memory is None or part_clean(db, memory, part))
        db.execute("COMMIT")
        return (int(seq), str(head)), walked, clean
    finally:
        db.close()
