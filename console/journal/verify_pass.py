"""One pass over a journal's events for ``verify``: the chain link by link, what ``journal
prune`` removed, and the projections replayed in memory and compared with the tables (all of
them, or one part's: see ``verify_parallel``)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import select

from console.journal.chain import event_bytes
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
from console.journal.prune import Checkpoint, events_digest_line, state_digest, tombstone
from console.journal.store import T_EVENTS, TABLES

_BATCH = 20_000


class Pruned:
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


@dataclass
class Walk:
    """What one pass over the events found (the other process sends it back as JSON)."""

    failure: tuple[int, str] | None = None
    count: int = 0  # events walked
    head: str = ""  # the last hash, when the pass checked the chain
    trusted_hash_seen: str | None = None


def walk(
    batches: Iterable[Sequence[Sequence[Any]]],
    *,
    genesis: str,
    pruned: Pruned | None,
    trusted_seq: int | None,
    chain: bool,
    memory: MemoryProjection | None,
    passive_json: bool,
    part: Part | None,
) -> Walk:
    """Walk the events in ``seq`` order; stop at the first problem, as ``verify`` reports it.

    ``chain``: recompute every link. ``memory``: replay the projections of the kinds that have
    a handler (their payloads must be JSON); with ``part``, only the events of its runs, which
    must change no row of another part's. ``passive_json``: the payloads of the other kinds
    must be JSON too. One pass does it all; ``verify`` may split it between two processes.
    """
    out = Walk()
    sha = hashlib.sha256
    loads = loads_compact
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


def loads_compact(text: str) -> Any:
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


# The projection tables whose rows belong to a run, and the column that names it. The others
# (runbooks, approvals, target locks) belong to the first part.
RUN_COLUMN = {
    "runs": "id",
    "steps": "run_id",
    "segments": "run_id",
    "operations": "run_id",
    "checkpoints": "run_id",
}


@dataclass(frozen=True)
class Part:
    """The runs one process replays: ids from ``lo`` (included) to ``hi`` (excluded), None
    unbounded; the part from the start also has the events of no run and the other tables."""

    lo: str | None
    hi: str | None

    def owns(self, run_id: str | None) -> bool:
        if run_id is None:
            return self.lo is None
        return (self.lo is None or run_id >= self.lo) and (self.hi is None or run_id < self.hi)

    def owns_change(self, change: Change) -> bool:
        column = RUN_COLUMN.get(change.table)
        if column is None:
            return self.lo is None
        values = change.row if isinstance(change, Insert) else change.where
        return column in values and self.owns(values[column])

    def where(self, table: str) -> tuple[str, list[str]] | None:
        """SQL that keeps this part's rows of ``table`` (None: none of them)."""
        column = RUN_COLUMN.get(table)
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


def part_clean(conn: Any, memory: MemoryProjection, part: Part | None) -> bool:
    return not memory.problems and compare_projections(conn, memory, part) is None


_EVENT_COLUMNS = ("seq", "ts", "kind", "run_id", "corr", "actor", "payload", "hash")
EVENTS_SQL = f"SELECT {', '.join(_EVENT_COLUMNS)} FROM events ORDER BY seq"


def cursor_batches(
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


def event_batches(conn: Any) -> Iterator[Sequence[Sequence[Any]]]:
    """Every event in ``seq`` order, in batches of row tuples, inside ``conn``'s transaction.

    On SQLite the rows come straight from the driver's cursor (these columns are plain text and
    integers, which SQLAlchemy would pass through unchanged); elsewhere through Core, streamed.
    """
    db = _driver(conn)
    if db is not None:
        yield from cursor_batches(db.cursor(), EVENTS_SQL)
        return
    stmt = select(*(T_EVENTS.c[c] for c in _EVENT_COLUMNS)).order_by(T_EVENTS.c.seq)
    yield from conn.execution_options(yield_per=_BATCH).execute(stmt).partitions()


Progress = Callable[[int, int], None]  # (events read, events in all)


def reported(
    batches: Iterable[Sequence[Sequence[Any]]], progress: Progress | None, total: int
) -> Iterator[Sequence[Sequence[Any]]]:
    """``batches`` as they are, telling ``progress`` how far they got after each one."""
    if progress is None:
        yield from batches
        return
    done = 0
    for rows in batches:
        yield rows
        done += len(rows)
        progress(min(done, total), total)


def projection_events(db: sqlite3.Connection, part: Part | None) -> Iterator[list[Any]]:
    """The events as a projection pass of ``part`` needs them: every one (the runs' last_seq),
    but neither the hashes nor the payloads of the other part's events."""
    condition, params = part.condition("run_id") if part is not None else ("1", [])
    sql = (
        f"SELECT seq, ts, kind, run_id, corr, actor, CASE WHEN {condition} THEN payload END, "
        "NULL FROM events ORDER BY seq"
    )
    yield from cursor_batches(db.cursor(), sql, params)


def compare_projections(conn: Any, memory: MemoryProjection, part: Part | None) -> str | None:
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
    conn: Any, name: str, names: list[str], part: Part | None
) -> Iterator[Sequence[Sequence[Any]]]:
    """A projection table's rows (columns ``names``), as ``event_batches`` reads events."""
    db = _driver(conn)
    if db is not None:
        where = (" WHERE 1", []) if part is None else part.where(name)
        if where is not None:
            columns = ", ".join(f'"{c}"' for c in names)
            sql = f'SELECT {columns} FROM "{name}"{where[0]}'
            yield from cursor_batches(db.cursor(), sql, where[1])
        return
    assert part is None  # two processes only on SQLite
    table = TABLES[name]
    stmt = select(*(table.c[c] for c in names))
    yield from conn.execution_options(yield_per=_BATCH).execute(stmt).partitions()


def _norm(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value
