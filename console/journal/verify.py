"""``backout journal verify``: recompute the chain and the projections; compare with the last
head this machine trusted (grew: must extend it; same size: same head; shrank: fail)."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from console.canonical import sha256_hex
from console.journal.chain import event_bytes, genesis_hash
from console.journal.projections import (
    HANDLERS,
    KEY_OF,
    PRIMARY_KEYS,
    Change,
    EventView,
    Insert,
    MemoryProjection,
    project,
    tuple_getter,
)
from console.journal.prune import (
    Checkpoint,
    events_digest_line,
    load_checkpoints,
    load_state,
    state_digest,
    tombstone,
)
from console.journal.store import _SQLITE_HEAD, T_EVENTS, T_HEAD, TABLES, Journal
from console.paths import state_dir

_BATCH = 20_000


@dataclass
class VerifyReport:
    ok: bool
    journal: str
    journal_id: str
    events: int = 0
    head_seq: int = 0
    head_hash: str = ""
    first_bad_seq: int | None = None
    problem: str | None = None
    projections_checked: bool = False
    trusted_seq: int | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _trusted_file(journal: Journal) -> Path:
    key = sha256_hex(journal.url)[:16]
    return state_dir() / "trusted" / f"{key}.json"


def _load_trusted(journal: Journal) -> dict[str, Any] | None:
    path = _trusted_file(journal)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _save_trusted(journal: Journal, seq: int, head: str) -> None:
    path = _trusted_file(journal)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {"journal_id": journal.journal_id, "url": journal.display_url, "seq": seq, "hash": head}
        )
    )
    os.replace(tmp, path)


class _Pruned:
    """What ``journal prune`` removed, walked alongside the chain (see ``prune.py``)."""

    def __init__(self, checkpoints: list[Checkpoint], state: dict[int, list[Any]]) -> None:
        self.by_seq = {cp.seq: cp for cp in checkpoints}
        self.spans = sorted((lo, hi, cp.seq) for cp in checkpoints for lo, hi in cp.ranges)
        self._i = 0
        self.next_lo = self.spans[0][0] if self.spans else None
        self.acc = {cp.seq: hashlib.sha256() for cp in checkpoints}
        self.count = dict.fromkeys(self.by_seq, 0)
        self.state = state
        # (table, key) -> the last prune whose state seeds that row: changes made before it are
        # part of that state (their own payloads may be gone), so replay skips them.
        self.pending: dict[tuple[str, tuple[Any, ...]], int] = {}
        for prune_seq, rows in state.items():
            if prune_seq in self.by_seq:
                for tbl, key_text, _row in rows:
                    k = (tbl, tuple(json.loads(key_text)))
                    self.pending[k] = max(self.pending.get(k, 0), prune_seq)

    def owner(self, seq: int) -> int | None:
        """The prune that pruned ``seq`` (seqs come in increasing order)."""
        spans = self.spans
        while self._i < len(spans) and spans[self._i][1] < seq:
            self._i += 1
        if self._i >= len(spans):
            self.next_lo = None
            return None
        lo, _hi, by = spans[self._i]
        self.next_lo = lo
        return by if lo <= seq else None

    def take(self, row: Sequence[Any], by: int) -> str | None:
        """Account for a pruned event; the problem if its tombstone is not the one expected."""
        seq, ts, kind, run_id, corr, actor, payload, stored = row
        try:
            data = json.loads(payload)
        except ValueError:
            data = None
        sha = data.get("payload_sha256") if isinstance(data, dict) else None
        if not isinstance(sha, str) or payload != tombstone(sha, by):
            return f"event {seq} was changed: it is not the tombstone journal prune left there"
        self.acc[by].update(events_digest_line(seq, ts, kind, run_id, corr, actor, sha, stored))
        self.count[by] += 1
        return None

    def close(self, seq: int, payload: str) -> str | None:
        """At a ``journal.pruned`` event: the problem if what it attests does not hold."""
        cp = self.by_seq[seq]
        if payload != cp.payload:
            return f"event {seq} (journal.pruned) changed while it was read"
        if self.count[seq] != cp.events or self.acc[seq].hexdigest() != cp.events_sha256:
            return (
                f"the events pruned by event {seq} do not match its digest "
                "(a pruned event was edited, added or removed)"
            )
        if state_digest(self.state.get(seq, [])) != cp.state_sha256:
            return f"the projection state recorded by prune event {seq} was altered"
        return None

    def seed(self, seq: int, memory: MemoryProjection) -> None:
        for tbl, key_text, row in self.state.get(seq, []):
            memory.tables[tbl][tuple(json.loads(key_text))] = json.loads(row)

    def keep(self, seq: int, changes: list[Change]) -> list[Change]:
        """``changes`` without those that a later prune's state already holds."""
        pending = self.pending
        out = []
        for ch in changes:
            values = ch.row if isinstance(ch, Insert) else ch.where
            key = KEY_OF[ch.table](values)
            if pending.get((ch.table, key), 0) <= seq:
                out.append(ch)
        return out


# From this many events on (and with a CPU to spare), verify runs in two processes on SQLite
# (``_in_two``). Starting the other one costs about 0.5 s of CPU (a fresh interpreter), and
# the two passes read the events twice: below this, one pass is as fast.
PARALLEL_MIN_EVENTS = 100_000


def _spare_cpu() -> bool:
    """Whether a second process would get a CPU of its own: two passes cost about a fifth more
    CPU time than one, which only pays when they run side by side."""
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        load = 0.0
    return cpus > 1 and load < cpus - 0.5


def verify(
    journal: Journal,
    *,
    projections: bool = True,
    remember: bool = True,
    trusted: dict[str, Any] | None = None,
    parallel: bool | None = None,
) -> VerifyReport:
    """Check the whole journal; on success remember its head as trusted (per journal URL).

    ``parallel``: check the chain in a second process while this one replays the projections
    (None: when the journal is long enough and the machine has the CPUs for it; see
    ``_in_two``). Same verdict and same report either way.
    """
    report = VerifyReport(ok=False, journal=journal.display_url, journal_id=journal.journal_id)
    trusted = trusted if trusted is not None else _load_trusted(journal)
    trusted_seq = trusted.get("seq") if trusted is not None else None
    genesis = genesis_hash(journal.journal_id)

    def fail(seq: int | None, problem: str) -> VerifyReport:
        report.first_bad_seq = seq
        report.problem = problem
        return report

    with _gc_paused(), journal.read() as conn:
        head = conn.execute(select(T_HEAD.c.seq, T_HEAD.c.hash)).one()
        checkpoints = load_checkpoints(conn)
        pruned = _Pruned(checkpoints, load_state(conn)) if checkpoints else None
        if pruned is not None:
            report.notes.append(
                f"{sum(cp.events for cp in checkpoints)} event payloads pruned by "
                f"{len(checkpoints)} journal.pruned checkpoint(s): their hashes are attested "
                "by the checkpoints, not recomputed"
            )
        if parallel is None:
            parallel = head.seq >= PARALLEL_MIN_EVENTS and _spare_cpu()
        # A pruned journal's checkpoints are walked along the chain: one pass does it all.
        path = _sqlite_path(conn) if parallel and projections and pruned is None else None
        result = _in_two(path, genesis, trusted_seq, head.seq, head.hash) if path else None
        memory = None
        if result is None:  # one pass (also what reports any problem the two passes found)
            memory = MemoryProjection() if projections else None
            result = _walk(
                _event_batches(conn),
                genesis=genesis,
                pruned=pruned,
                trusted_seq=trusted_seq,
                chain=True,
                memory=memory,
                passive_json=memory is not None,
                part=None,
            )
        if result.failure is not None:
            return fail(*result.failure)
        prev = result.head
        count = result.count
        trusted_hash_seen = result.trusted_hash_seen
        report.events = count
        report.head_seq, report.head_hash = count, prev
        if head.seq != count or head.hash != prev:
            return fail(
                min(head.seq, count) + 1 if head.seq != count else count,
                f"the journal head says event {head.seq} but the chain ends at event {count} "
                "(events were removed or the head was altered)",
            )
        if trusted is not None:
            if trusted.get("journal_id") not in (None, journal.journal_id):
                return fail(
                    None,
                    "the journal id differs from the one this machine trusted "
                    "(the journal was replaced)",
                )
            report.trusted_seq = int(trusted["seq"])
            if count < report.trusted_seq:
                return fail(
                    count + 1,
                    f"the journal shrank: this machine trusted event "
                    f"{report.trusted_seq}, the journal now ends at {count}",
                )
            if trusted_hash_seen != trusted.get("hash"):
                return fail(
                    report.trusted_seq,
                    f"history changed below the trusted head "
                    f"(event {report.trusted_seq} has another hash)",
                )
        if memory is not None:
            if memory.problems:
                seq, problem = memory.problems[0]
                return fail(seq, problem)
            mismatch = _compare_projections(conn, memory, None)
            if mismatch is not None:
                return fail(None, mismatch)
        report.projections_checked = projections
    report.ok = True
    if remember:
        _save_trusted(journal, report.head_seq, report.head_hash)
    return report


@dataclass
class _Walk:
    """What one pass over the events found (the other process sends it back as JSON)."""

    failure: tuple[int, str] | None = None
    count: int = 0  # events walked
    head: str = ""  # the last hash, when the pass checked the chain
    trusted_hash_seen: str | None = None


def _walk(
    batches: Iterable[Sequence[Sequence[Any]]],
    *,
    genesis: str,
    pruned: _Pruned | None,
    trusted_seq: int | None,
    chain: bool,
    memory: MemoryProjection | None,
    passive_json: bool,
    part: _Part | None,
) -> _Walk:
    """Walk the events in ``seq`` order; stop at the first problem, as ``verify`` reports it.

    ``chain``: recompute every link. ``memory``: replay the projections of the kinds that have
    a handler (their payloads must be JSON); with ``part``, only the events of its runs, which
    must change no row of another part's. ``passive_json``: the payloads of the other kinds
    must be JSON too. One pass does it all; ``verify`` may split it between two processes.
    """
    out = _Walk()
    sha = hashlib.sha256
    loads = _loads
    runs = memory.tables["runs"] if memory is not None else {}
    problems = memory.problems if memory is not None else []
    pending = pruned.pending if pruned is not None else {}
    prev_digest = bytes.fromhex(genesis)
    computed = ""
    expected_seq = 1
    for rows in batches:
        for row in rows:
            seq, ts, kind, run_id, corr, actor, payload, stored = row
            if seq != expected_seq:
                if seq > expected_seq:
                    out.failure = (expected_seq, f"event {expected_seq} is missing")
                else:
                    out.failure = (seq, f"event {seq} is out of order")
                return out
            if pruned is not None and pruned.next_lo is not None and seq >= pruned.next_lo:
                by = pruned.owner(seq)
                if by is not None:
                    problem = pruned.take(row, by)
                    if problem is not None:
                        out.failure = (seq, problem)
                        return out
                    if seq == trusted_seq:
                        out.trusted_hash_seen = stored
                    prev_digest = bytes.fromhex(stored)
                    expected_seq += 1
                    continue
            if chain:
                digest = sha(
                    prev_digest + event_bytes(seq, ts, kind, run_id, corr, actor, payload)
                ).digest()
                computed = digest.hex()
                if computed != stored:
                    out.failure = (
                        seq,
                        f"event {seq} was changed: its content does not match "
                        "its hash (edited, replaced or reordered)",
                    )
                    return out
                prev_digest = digest
                if seq == trusted_seq:
                    out.trusted_hash_seen = computed
            if pruned is not None and seq in pruned.by_seq:
                problem = pruned.close(seq, payload)
                if problem is not None:
                    out.failure = (seq, problem)
                    return out
                if memory is not None:
                    pruned.seed(seq, memory)
            projected = kind in HANDLERS
            mine = part is None or part.owns(run_id)
            if projected and memory is not None and mine:
                try:
                    data = loads(payload)
                except ValueError:
                    out.failure = (seq, f"event {seq} has a payload that is not JSON")
                    return out
                view = EventView(seq, ts, kind, run_id, actor, corr, data)
                try:
                    changes = project(view)
                    if pending:
                        changes = pruned.keep(seq, changes) if pruned else changes
                    if part is not None and not all(map(part.owns_change, changes)):
                        out.failure = (seq, f"event {seq} changes another part's rows")
                        return out
                    memory.apply(seq, changes)
                except (AttributeError, KeyError, TypeError, ValueError) as exc:
                    out.failure = (seq, f"event {seq} ({kind}) cannot be projected: {exc!r}")
                    return out
            elif passive_json and not projected:
                try:
                    loads(payload)
                except ValueError:
                    out.failure = (seq, f"event {seq} has a payload that is not JSON")
                    return out
            if (
                memory is not None
                and run_id is not None
                and mine
                and not (pending and pending.get(("runs", (run_id,)), 0) > seq)
            ):
                # last_seq_changes() for one event, applied as MemoryProjection.apply
                # would apply it (inlined: this runs once per event).
                run_row = runs.get((run_id,))
                if run_row is None:
                    problems.append((seq, f"runs {(run_id,)} changed before it was created"))
                else:
                    run_row["last_seq"] = seq
            expected_seq += 1
    out.count = expected_seq - 1
    out.head = prev_digest.hex() if chain else ""
    return out


_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(text: str) -> Any:
    """``json.loads(text)``, without its wrappers' cost when ``text`` is compact JSON (as every
    payload is): the same value, or the same error."""
    if type(text) is str:
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            pass  # not JSON at 0: json.loads raises the error (or skips leading whitespace)
        else:
            if end == len(text):
                return value
    return json.loads(text)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while verifying: the replay holds a few objects per
    projected row and creates no cycles, and the collector would traverse them all over and
    over as they pile up (about a fifth of the time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _sqlite_path(conn: Any) -> str | None:
    if conn.dialect.name != "sqlite":
        return None
    path = conn.engine.url.database
    return path if path and path != ":memory:" and not path.startswith("file:") else None


# The projection tables whose rows belong to a run, and the column that names it. The others
# (runbooks, approvals, target locks) belong to the first part.
_RUN_COLUMN = {
    "runs": "id",
    "steps": "run_id",
    "segments": "run_id",
    "operations": "run_id",
    "checkpoints": "run_id",
}


@dataclass(frozen=True)
class _Part:
    """The runs one process replays: ids from ``lo`` (included) to ``hi`` (excluded), None
    unbounded; the part from the start also has the events of no run and the other tables."""

    lo: str | None
    hi: str | None

    def owns(self, run_id: str | None) -> bool:
        if run_id is None:
            return self.lo is None
        return (self.lo is None or run_id >= self.lo) and (self.hi is None or run_id < self.hi)

    def owns_change(self, change: Change) -> bool:
        column = _RUN_COLUMN.get(change.table)
        if column is None:
            return self.lo is None
        values = change.row if isinstance(change, Insert) else change.where
        return column in values and self.owns(values[column])

    def where(self, table: str) -> tuple[str, list[str]] | None:
        """SQL that keeps this part's rows of ``table`` (None: none of them)."""
        column = _RUN_COLUMN.get(table)
        if column is None:
            return (" WHERE 1", []) if self.lo is None else None
        condition, params = self.condition(column)
        return f" WHERE {condition}", params

    def condition(self, column: str) -> tuple[str, list[str]]:
        """SQL true where ``column`` names a run of this part (or none, in the first part)."""
        sql, params = [], []
        if self.lo is not None:
            sql.append(f'"{column}" >= ?')
            params.append(self.lo)
        if self.hi is not None:
            sql.append(f'("{column}" IS NULL OR "{column}" < ?)')
            params.append(self.hi)
        return " AND ".join(sql) or "1", params


# The share of the events of runs that the other process replays, besides the chain.
_THEIR_SHARE = 0.35


def _pivot(db: sqlite3.Connection) -> str | None:
    """The first run of the other process's part, or None (it checks the chain only) if runs
    change each other's rows (rollbacks, fix runs) or there are runbook executions. Only a
    guess from the tables: a run that does so anyway makes the two passes unclean."""
    if db.execute("SELECT 1 FROM runs WHERE parent_run IS NOT NULL LIMIT 1").fetchone():
        return None
    for table in PRIMARY_KEYS:
        if table not in _RUN_COLUMN and db.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone():
            return None
    (n,) = db.execute("SELECT count(*) FROM events WHERE run_id IS NOT NULL").fetchone()
    row = db.execute(
        "SELECT run_id FROM events WHERE run_id IS NOT NULL ORDER BY run_id LIMIT 1 OFFSET ?",
        (int(n * (1 - _THEIR_SHARE)),),
    ).fetchone()
    return None if row is None else str(row[0])


def _in_two(
    path: str, genesis: str, trusted_seq: int | None, head_seq: int, head_hash: str
) -> _Walk | None:
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
        pivot = _pivot(db)
        mine, theirs = (None, None) if pivot is None else (_Part(None, pivot), _Part(pivot, None))
        with _beside(path, genesis, trusted_seq, theirs, release=hold.close) as other:
            memory = MemoryProjection()
            try:
                walked = _walk(
                    _projection_events(db, mine),
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
            if walked.failure is not None or not _clean(db, memory, mine):
                return None
            return other(head_seq, head_hash)
    finally:
        hold.close()  # (again: closing twice is harmless)
        db.close()


def _clean(conn: Any, memory: MemoryProjection, part: _Part | None) -> bool:
    return not memory.problems and _compare_projections(conn, memory, part) is None


OtherPass = Callable[[int, str], "_Walk | None"]

# The other process: a fresh interpreter that imports only this module (``multiprocessing``'s
# spawn would run the caller's main module again, and SQLite connections must not cross a fork).
_CHILD = "import sys; sys.path[:0] = sys.argv[1:]; import console.journal.verify as v; v._child()"


@contextmanager
def _beside(
    path: str,
    genesis: str,
    trusted_seq: int | None,
    part: _Part | None,
    release: Callable[[], None],
) -> Iterator[OtherPass]:
    """The other process's pass over the SQLite journal at ``path``, meanwhile (see _in_two);
    ``release`` is called once it has its snapshot (or failed to start).

    Yields ``result(head_seq, head_hash)``: its chain pass, or None unless everything it
    checked is clean and it read that head.
    """
    answers: list[_Walk | None] = []
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, *(p for p in sys.path if p)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            encoding="utf-8",
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
        child.stdin.write(json.dumps(request) + "\n")
        child.stdin.flush()
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

    def result(head_seq: int, head_hash: str) -> _Walk | None:
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


def _answer(child: subprocess.Popen[str], head: tuple[int, str]) -> _Walk | None:
    try:
        out, _err = child.communicate()
        answer = json.loads(out)
        walked = _Walk(
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


def _child() -> None:
    """The other process (see ``_beside``): the request on stdin, the answer on stdout."""
    request = json.loads(sys.stdin.readline())
    part = request["part"]

    def snapshot_taken() -> None:
        sys.stdout.write("snapshot\n")
        sys.stdout.flush()

    seen, walked, clean = _other_pass(
        request["path"],
        request["genesis"],
        request["trusted_seq"],
        None if part is None else _Part(part[0], part[1]),
        snapshot_taken,
    )
    sys.stdout.write(json.dumps({"seen": seen, "clean": clean, **asdict(walked)}))


def _other_pass(
    path: str,
    genesis: str,
    trusted_seq: int | None,
    part: _Part | None,
    snapshot_taken: Callable[[], None] = lambda: None,
) -> tuple[tuple[int, str], _Walk, bool]:
    """The head, the chain pass over the events of one snapshot (replaying ``part`` too), and
    whether all it checked is clean."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN")
        seq, head = db.execute(_SQLITE_HEAD).fetchone()
        snapshot_taken()
        memory = None if part is None else MemoryProjection()
        with _gc_paused():
            walked = _walk(
                _cursor_batches(db.cursor(), _EVENTS_SQL),
                genesis=genesis,
                pruned=None,
                trusted_seq=trusted_seq,
                chain=True,
                memory=memory,
                passive_json=True,
                part=part,
            )
            clean = walked.failure is None and (memory is None or _clean(db, memory, part))
        db.execute("COMMIT")
        return (int(seq), str(head)), walked, clean
    finally:
        db.close()


_EVENT_COLUMNS = ("seq", "ts", "kind", "run_id", "corr", "actor", "payload", "hash")
_EVENTS_SQL = f"SELECT {', '.join(_EVENT_COLUMNS)} FROM events ORDER BY seq"


def _cursor_batches(
    cursor: Any, sql: str, params: Sequence[Any] = ()
) -> Iterator[list[tuple[Any, ...]]]:
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(_BATCH):
            yield rows
    finally:
        cursor.close()


def _driver(conn: Any) -> sqlite3.Connection | None:
    """The driver's connection under a SQLite ``conn`` (or ``conn`` itself if it is one)."""
    if isinstance(conn, sqlite3.Connection):
        return conn
    if conn.dialect.name == "sqlite":
        driver: sqlite3.Connection = conn.connection.driver_connection
        return driver
    return None


def _event_batches(conn: Any) -> Iterator[Sequence[Sequence[Any]]]:
    """Every event in ``seq`` order, in batches of row tuples, inside ``conn``'s transaction.

    On SQLite the rows come straight from the driver's cursor (these columns are plain text and
    integers, which SQLAlchemy would pass through unchanged); elsewhere through Core, streamed.
    """
    db = _driver(conn)
    if db is not None:
        yield from _cursor_batches(db.cursor(), _EVENTS_SQL)
        return
    stmt = select(*(T_EVENTS.c[c] for c in _EVENT_COLUMNS)).order_by(T_EVENTS.c.seq)
    yield from conn.execution_options(yield_per=_BATCH).execute(stmt).partitions()


def _projection_events(db: sqlite3.Connection, part: _Part | None) -> Iterator[list[Any]]:
    """The events as a projection pass of ``part`` needs them: every one (the runs' last_seq),
    but neither the hashes nor the payloads of the other part's events."""
    condition, params = part.condition("run_id") if part is not None else ("1", [])
    sql = (
        f"SELECT seq, ts, kind, run_id, corr, actor, CASE WHEN {condition} THEN payload END, "
        "NULL FROM events ORDER BY seq"
    )
    yield from _cursor_batches(db.cursor(), sql, params)


def _compare_projections(conn: Any, memory: MemoryProjection, part: _Part | None) -> str | None:
    """The first difference between the replayed projections and the tables (only ``part``'s
    rows, on SQLite), or None."""
    for name, pk in PRIMARY_KEYS.items():
        table = TABLES[name]
        expected = memory.tables[name]
        names = [c.name for c in table.columns]
        width = len(names)
        values = itemgetter(*names)
        key_of = tuple_getter([names.index(c) for c in pk])
        seen = 0
        for rows in _table_batches(conn, name, names, part):
            for row in rows:
                key = key_of(row)
                want = expected.get(key)
                if want is None:
                    return f"projection {name} has a row {key} that no event created"
                # Fast path: equal as a whole (bool == int, as _norm would make them).
                if len(want) != width or values(want) != tuple(row):
                    for col, value in want.items():
                        stored = row[names.index(col)]
                        if _norm(stored) != _norm(value):
                            return (
                                f"projection {name} {key}: {col} is {stored!r} but the "
                                f"events say {value!r}"
                            )
                seen += 1
        if seen != len(expected):
            return f"projection {name} is missing {len(expected) - seen} row(s) the events create"
    return None


def _table_batches(
    conn: Any, name: str, names: list[str], part: _Part | None
) -> Iterator[Sequence[Sequence[Any]]]:
    """A projection table's rows (columns ``names``), as ``_event_batches`` reads events."""
    db = _driver(conn)
    if db is not None:
        where = (" WHERE 1", []) if part is None else part.where(name)
        if where is not None:
            columns = ", ".join(f'"{c}"' for c in names)
            sql = f'SELECT {columns} FROM "{name}"{where[0]}'
            yield from _cursor_batches(db.cursor(), sql, where[1])
        return
    assert part is None  # two processes only on SQLite
    table = TABLES[name]
    stmt = select(*(table.c[c] for c in names))
    yield from conn.execution_options(yield_per=_BATCH).execute(stmt).partitions()


def _norm(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value
