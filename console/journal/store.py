"""The journal store: chained appends with their projections, and keyset-paged reads."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, Table, and_, bindparam, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from console.canonical import canonical_json, mask_url
from console.errors import BadInput, NotFound
from console.gcpause import gc_paused
from console.journal import models
from console.journal.chain import event_bytes, next_hash
from console.journal.db import READONLY, ensure_schema, make_engine, resolve_url
from console.journal.projections import (
    HANDLERS,
    KEY_OF,
    PRIMARY_KEYS,
    Change,
    Encoded,
    EventView,
    Insert,
    Update,
    last_seq_changes,
    project,
)

Clock = Callable[[], dt.datetime]

T_EVENTS = models.table_of(models.Event)
T_HEAD = models.table_of(models.Head)
T_RUNS = models.table_of(models.Run)
T_STEPS = models.table_of(models.Step)
T_SEGMENTS = models.table_of(models.Segment)
T_OPS = models.table_of(models.Operation)
T_CHECKPOINTS = models.table_of(models.Checkpoint)
T_SNAPSHOTS = models.table_of(models.Snapshot)
T_LEASES = models.table_of(models.Lease)
T_EXECS = models.table_of(models.RunbookExec)
T_EXEC_STEPS = models.table_of(models.RunbookStep)
T_APPROVALS = models.table_of(models.Approval)
T_LOCKS = models.table_of(models.TargetLock)
TABLES: dict[str, Table] = {
    "runs": T_RUNS,
    "steps": T_STEPS,
    "segments": T_SEGMENTS,
    "operations": T_OPS,
    "checkpoints": T_CHECKPOINTS,
    "runbook_execs": T_EXECS,
    "runbook_steps": T_EXEC_STEPS,
    "approvals": T_APPROVALS,
    "target_locks": T_LOCKS,
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_ts(moment: dt.datetime) -> str:
    """UTC, microseconds, ``Z``: sortable as text and exact."""
    utc = moment.astimezone(dt.UTC)
    if utc.year < 1000:  # strftime does not pad such years; keep its exact output
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ"), at a fraction of its cost.
    return utc.isoformat(timespec="microseconds")[:26] + "Z"


def parse_ts(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    ts: str
    kind: str
    run_id: str | None
    corr: str | None
    actor: str
    payload_text: str
    hash: str
    _payload: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def payload(self) -> dict[str, Any]:
        """The decoded payload (parsed once; a slotted class has no ``__dict__`` to cache in)."""
        if self._payload is None:
            value = json.loads(self.payload_text)
            object.__setattr__(
                self, "_payload", value if isinstance(value, dict) else {"value": value}
            )
        assert self._payload is not None
        return self._payload

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "run_id": self.run_id,
            "corr": self.corr,
            "actor": self.actor,
            "payload": self.payload,
            "hash": self.hash,
        }

    def view(self) -> EventView:
        return EventView(
            self.seq, self.ts, self.kind, self.run_id, self.actor, self.corr, self.payload
        )


_OPERATION_COLUMNS = tuple(T_OPS.c[f] for f in models.OperationRow._fields)
_EVENT_COLUMNS = ("seq", "ts", "kind", "run_id", "corr", "actor", "payload", "hash")


def _event_from_row(row: Any) -> StoredEvent:
    return StoredEvent(
        row.seq, row.ts, row.kind, row.run_id, row.corr, row.actor, row.payload, row.hash
    )


_SNAPSHOT_BATCH = 10_000

_SQLITE_HEAD = "SELECT seq, hash FROM journal_head WHERE id = 1"
_HEAD_SEQ = "SELECT seq FROM journal_head WHERE id = 1"
# The transaction that holds the head commits without waiting for the disk: see _wait_for_wal.
_PG_HEAD = (
    "SELECT seq, hash, set_config('synchronous_commit', 'off', true) "
    "FROM journal_head WHERE id = 1 FOR UPDATE"
)
_SQLITE_HEAD_MOVE = "UPDATE journal_head SET seq = ?, hash = ? WHERE id = 1"


class Writer:
    """One journal transaction. Holds the chain head from when it takes it until it commits.

    On SQLite, ``BEGIN IMMEDIATE`` holds the write lock from the start (db.py), so the head is
    read at once and every append is chained as it comes. On PostgreSQL the head (``SELECT ...
    FOR UPDATE``) is taken as late as possible, so that concurrent writers do not queue behind
    one another's payload encoding: appends are buffered (their canonical text already made)
    and chained when the transaction flushes, or as soon as ``conn``, ``seq`` or ``hash`` is
    used. Whatever a caller does through ``conn`` therefore still runs under the head, as
    serialised with every other writer as it always was. A writer's events keep the order it
    appended them in; their timestamps are taken as they are chained, so they never go back
    in seq order. Its transaction then commits without waiting for the disk, and
    ``Journal.write`` returns once the commit is durable (see ``_wait_for_wal``). A caller
    whose work in the transaction needs no serialising with other writers (reads, a lease
    renewal) uses ``reader`` and ``peek_seq()``, which leave the head alone.
    """

    def __init__(self, journal: Journal, conn: Connection) -> None:
        self.journal = journal
        self._conn = conn
        self._sqlite = conn.dialect.name == "sqlite"
        self._seq = 0
        self._hash = ""
        self._locked = False
        self.base_seq: int | None = None  # the head's seq when this writer took it
        self.events: list[StoredEvent] = []
        self._unchained = 0  # the last events of ``events``, appended before the head was taken
        self._snapshot_rows: list[dict[str, Any]] = []
        # Runs without a ``runs`` row yet: their row appears at flush (projections), so until
        # then one lookup per run is enough, not one per event.
        self._absent_runs: set[str] = set()
        # Holds the head on PostgreSQL, so commits without waiting for its WAL to reach the
        # disk: ``Journal.write`` waits for it after the commit, the head free again.
        self.unsynced = False
        if self._sqlite:
            self._take_head()

    @property
    def conn(self) -> Connection:
        """The transaction, once it holds the chain head."""
        if not self._locked:
            self._take_head()
        return self._conn

    @property
    def reader(self) -> Connection:
        """The transaction, without taking the chain head: for reads, and for writes to rows
        that no chain depends on (a lease), which need not queue behind other writers."""
        return self._conn

    def peek_seq(self) -> int:
        """The head's seq as committed now (this writer's own, if it holds the head), without
        taking it: another writer may chain events before this one's."""
        if self._locked:
            return self._seq
        return int(self._conn.exec_driver_sql(_HEAD_SEQ).scalar_one())

    @property
    def seq(self) -> int:
        """The head's seq: the last event this writer chained, or the one before its first."""
        if not self._locked:
            self._take_head()
        return self._seq

    @property
    def hash(self) -> str:
        if not self._locked:
            self._take_head()
        return self._hash

    def _take_head(self) -> None:
        if self._sqlite:
            head = self._conn.exec_driver_sql(_SQLITE_HEAD).one()
        else:
            head = self._conn.exec_driver_sql(_PG_HEAD).one()
            self.unsynced = True
        self._seq, self._hash = head.seq, head.hash
        self.base_seq = head.seq
        self._locked = True
        pending, self._unchained = self._unchained, 0
        for ev in self.events[len(self.events) - pending :]:
            seq, ts, h = self._link(ev.kind, ev.run_id, ev.corr, ev.actor, ev.payload_text)
            _SLOT_SEQ.__set__(ev, seq)
            _SLOT_TS.__set__(ev, ts)
            _SLOT_HASH.__set__(ev, h)
            object.__setattr__(ev, "__class__", StoredEvent)

    def _link(
        self, kind: str, run_id: str | None, corr: str | None, actor: str, text: str
    ) -> tuple[int, str, str]:
        """The next link of the chain (the head must be held): seq, ts and hash."""
        ts = format_ts(self.journal.clock())
        seq = self._seq + 1
        h = next_hash(self._hash, event_bytes(seq, ts, kind, run_id, corr, actor, text))
        self._seq, self._hash = seq, h
        return seq, ts, h

    def append(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        corr: str | None = None,
        native: bool = False,
        text: str | None = None,
    ) -> StoredEvent:
        """Append one event. The engine's hot path may vouch for its payload: ``native`` when
        ``payload`` is what ``json.loads`` of its canonical text gives back (JSON types only,
        string keys), so projecting it needs no decoding; ``text`` when it is moreover
        already encoded: ``text == canonical_json(payload)`` (see ``projections.Encoded``).

        The event returned carries its seq, ts and hash once it is chained: at once if the
        writer holds the head, else when it takes it (see the class docstring).
        """
        drill = self.journal.drill or self._drill_of(run_id, payload)
        if drill is not None:  # every event of a drill names its drill
            payload, text, native = {**(payload or {}), "drill": drill}, None, False
        vouched = native or text is not None
        if text is None:
            text = canonical_json(payload if type(payload) is dict else dict(payload or {}))
        actor = self.journal.actor
        if self._locked:
            seq, ts, h = self._link(kind, run_id, corr, actor, text)
            ev = StoredEvent(seq, ts, kind, run_id, corr, actor, text, h)
        else:
            ev = _unchained(self, kind, run_id, corr, actor, text)
            self._unchained += 1
        if vouched and type(payload) in (dict, Encoded):
            object.__setattr__(ev, "_payload", payload)
        self.events.append(ev)
        return ev

    def _drill_of(self, run_id: str | None, payload: Mapping[str, Any] | None) -> str | None:
        """The drill of the run an event is about (or of its parent, for a run being created):
        a trainee's later commands on a drill run are stamped without knowing it."""
        if run_id is None:
            return None
        cache = self.journal.run_drills
        if run_id in cache:
            return cache[run_id]
        flagged = None
        # A run's drill flag never changes once its row exists: reading it needs no head.
        conn = self._conn
        if run_id not in self._absent_runs:
            flagged = conn.execute(select(T_RUNS.c.drill).where(T_RUNS.c.id == run_id)).first()
        if flagged is None:
            # Being created: a rollback or fix run inherits its parent's drill.
            self._absent_runs.add(run_id)
            parent = (payload or {}).get("parent_run")
            inherited = self._drill_of(parent, None) if isinstance(parent, str) else None
            if inherited is not None:  # its next events may come before its row is projected
                cache[run_id] = inherited
            return inherited
        drill = None
        if flagged.drill:
            created = conn.execute(
                select(T_EVENTS.c.payload)
                .where(T_EVENTS.c.run_id == run_id, T_EVENTS.c.kind == "run.created")
                .limit(1)
            ).scalar()
            found = json.loads(created or "{}")
            drill = found.get("drill")
            if not isinstance(drill, str):
                parent = found.get("parent_run")
                drill = self._drill_of(parent, None) if isinstance(parent, str) else None
        cache[run_id] = drill
        return drill

    def add_snapshot_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rows for ``snapshots``; journal a ``snapshot.taken`` with their digest alongside."""
        self._snapshot_rows.extend(dict(r) for r in rows)

    def flush(self) -> None:
        self._flush(finish=False)

    def _flush(self, *, finish: bool) -> None:
        """``finish``: the transaction ends here; on PostgreSQL it commits in the flush's
        pipeline (the head is free once the server has run it, not a round trip later), and
        the wait for its WAL goes in the same pipeline (see ``_wait_for_wal``)."""
        with gc_paused():  # rows, views and changes: thousands of containers, no cycle
            self._write_out(finish)

    def _write_out(self, finish: bool) -> None:
        out = _Statements(self._conn)
        if self._snapshot_rows:  # not part of the chain: written before the head is taken
            out.insert_dicts(T_SNAPSHOTS, self._snapshot_rows)
            self._snapshot_rows = []
            if not self.events:
                out.run()
                return
        if not self.events:
            return
        if not self._locked:
            out.run()
            for e in self.events:  # decoded for the projections while the head is free
                if e.kind in HANDLERS:
                    e.payload  # noqa: B018 - parsed once, kept by the event
            self._take_head()
        events = self.events
        out.insert(
            T_EVENTS,
            _EVENT_COLUMNS,
            [
                (e.seq, e.ts, e.kind, e.run_id, e.corr, e.actor, e.payload_text, e.hash)
                for e in events
            ],
        )
        # Kinds without a handler project nothing: their payload is not decoded here.
        views = [
            EventView(
                e.seq,
                e.ts,
                e.kind,
                e.run_id,
                e.actor,
                e.corr,
                e.payload if e.kind in HANDLERS else _NO_PAYLOAD,
            )
            for e in events
        ]
        changes: list[Change] = []
        for view in views:
            if view.kind in HANDLERS:
                changes.extend(project(view))
        changes.extend(last_seq_changes(views))
        _apply_changes(self._conn, changes, out)
        self._absent_runs.clear()
        out.head_move(self._seq, self._hash)
        if finish and self.unsynced:
            out.commit_and_wait_for_wal()
            self.unsynced = False
        out.run()
        self.journal._committed.extend(self.events)
        self.events = []


class _Unchained(StoredEvent):
    """An event appended before its writer took the chain head: its ``hash`` slot holds the
    writer until then, and reading its ``seq``, ``ts`` or ``hash`` makes the writer take the
    head, which chains it and turns it into a plain ``StoredEvent`` (same slots, so its class
    can be swapped): callers always read an event's final link."""

    __slots__ = ()


_SLOT_SEQ: Any = StoredEvent.__dict__["seq"]
_SLOT_TS: Any = StoredEvent.__dict__["ts"]
_SLOT_HASH: Any = StoredEvent.__dict__["hash"]


def _unchained(
    writer: Writer, kind: str, run_id: str | None, corr: str | None, actor: str, text: str
) -> StoredEvent:
    ev = _Unchained.__new__(_Unchained)  # its properties shadow the slots __init__ would set
    for name, value in (
        ("seq", 0),
        ("ts", ""),
        ("kind", kind),
        ("run_id", run_id),
        ("corr", corr),
        ("actor", actor),
        ("payload_text", text),
        ("hash", writer),
        ("_payload", None),
    ):
        StoredEvent.__dict__[name].__set__(ev, value)
    return ev


def _chained_field(slot: Any) -> property:
    def get(ev: StoredEvent) -> Any:
        if type(ev) is _Unchained:
            writer: Writer = _SLOT_HASH.__get__(ev)
            writer._take_head()
        return slot.__get__(ev)

    return property(get)


# Set after the class is made: a property in its body would stand for the fields to mypy.
for _slot in (_SLOT_SEQ, _SLOT_TS, _SLOT_HASH):
    setattr(_Unchained, _slot.__name__, _chained_field(_slot))


class _Statements:
    """The statements of one flush, run in order by ``run()``.

    Those whose values SQLAlchemy would pass through unchanged (no column default to fill, no
    bind processor) go straight to the driver; the others go through Core. On SQLite, one
    ``executemany`` each. On PostgreSQL, consecutive ones go out in one pipeline, one round
    trip for them all while the writer holds the chain head, rows inserted with a multi-row
    ``VALUES``; but many rows go in one ``COPY`` each, which the server takes faster. Either
    way, one statement (hence one trigger notification) per table and shape.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.sqlite = conn.dialect.name == "sqlite"
        self.todo: list[tuple[str, Any, Any]] = []  # (how, statement, parameters)

    def insert(self, table: Table, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Rows as tuples of the values of ``cols``, in that order (the driver binds a tuple
        by position: by name, it would look every value up anew)."""
        if not rows:
            return
        if not _plain_insert(self.dialect, table.name, cols):
            self.todo.append(
                (_CORE, table.insert(), [dict(zip(cols, r, strict=True)) for r in rows])
            )
        elif self.sqlite:
            self.todo.append((_MANY, _sqlite_insert_sql(table.name, cols), rows))
        elif len(rows) >= _PG_COPY_ROWS or len(rows) * len(cols) > _PG_MAX_PARAMS:
            self.todo.append((_COPY, _copy_sql(table.name, cols), rows))
        else:
            values = [v for row in rows for v in row]
            self.todo.append((_ONE, _pg_insert_sql(table.name, cols, len(rows)), values))

    def insert_dicts(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rows as mappings: one statement per set of keys (in their order)."""
        by_cols: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for row in rows:
            by_cols.setdefault(tuple(row), []).append(tuple(row.values()))
        for cols, batch in by_cols.items():
            self.insert(table, cols, batch)

    def update(
        self,
        table_name: str,
        where_cols: tuple[str, ...],
        value_cols: tuple[str, ...],
        inc_cols: tuple[str, ...],
        batch: list[tuple[Any, ...]],
    ) -> None:
        """``batch``: per row, its values, then its increments, then its key, each in the order
        of its columns (the order of the placeholders in the statement)."""
        if not _plain_columns(self.dialect, table_name, where_cols + value_cols + inc_cols):
            stmt = _update_statement(table_name, where_cols, value_cols, inc_cols)
            names = (
                *(f"v_{c}" for c in value_cols),
                *(f"i_{c}" for c in inc_cols),
                *(f"w_{c}" for c in where_cols),
            )
            self.todo.append((_CORE, stmt, [dict(zip(names, row, strict=True)) for row in batch]))
            return
        self.todo.append(
            (_MANY, _update_sql(self.sqlite, table_name, where_cols, value_cols, inc_cols), batch)
        )

    def commit_and_wait_for_wal(self) -> None:
        """Behind SQLAlchemy's back: its own commit then finds nothing left to commit."""
        self.todo += [(_ONE, "COMMIT", None), (_ONE, _WAIT_FOR_WAL, None)]

    def head_move(self, seq: int, hash_: str) -> None:
        self.todo.append((_ONE, _SQLITE_HEAD_MOVE if self.sqlite else _PG_HEAD_MOVE, (seq, hash_)))

    def run(self) -> None:
        todo, self.todo = self.todo, []
        conn = self.conn
        i = 0
        while i < len(todo):
            how, what, params = todo[i]
            if how == _CORE:
                conn.execute(what, params)
            elif self.sqlite:
                conn.exec_driver_sql(what, params)
            elif how == _COPY:
                _pg_driver(conn, [todo[i]])
            else:
                j = i + 1
                while j < len(todo) and todo[j][0] in (_MANY, _ONE):
                    j += 1
                _pg_driver(conn, todo[i:j])
                i = j
                continue
            i += 1


_CORE, _MANY, _ONE, _COPY = "core", "many", "one", "copy"
# From this many rows, a COPY (its own round trip) beats a multi-row VALUES in the pipeline.
_PG_COPY_ROWS = 100
# A bind message carries at most 65,535 parameters.
_PG_MAX_PARAMS = 65_535
_PG_HEAD_MOVE = "UPDATE journal_head SET seq = $1, hash = $2 WHERE id = 1"


def _wait_for_wal(conn: Connection) -> None:
    """Return once the WAL of the transaction just committed on ``conn`` is as durable as the
    server's ``synchronous_commit`` makes any commit.

    The head is a row lock, held until its transaction ends, and a synchronous commit ends only
    once its WAL is flushed: every writer would wait for every other writer's flush (about
    4 ms each on the development machine) in turn. So the transaction that moved the head
    commits without waiting, which frees the head at once, and then commits a transaction
    that writes one tiny WAL record (a logical decoding message: no table, any role may), this
    time waiting as the server's setting says: its commit comes after the first one in the
    WAL, so once it is flushed so is the first, and flushes that several writers wait for at
    the same time are done once for them all. (A transaction that writes no WAL would not
    wait.) A crash can lose only a suffix of the WAL, so the chain that survives stays whole;
    ``write()`` still returns only once its events are durable.
    """
    with conn.begin():
        conn.exec_driver_sql(_WAIT_FOR_WAL)


_WAIT_FOR_WAL = "SELECT pg_logical_emit_message(true, 'backout.sync', '')"


def _pg_driver(conn: Connection, todo: Sequence[tuple[str, Any, Any]]) -> None:
    """Statements straight to psycopg: one ``COPY``, or several in one pipeline."""
    dbapi = conn.dialect.loaded_dbapi
    raw: Any = conn.connection.driver_connection
    sql = ""
    try:
        if todo[0][0] == _COPY:
            _, sql, rows = todo[0]
            with raw.cursor() as cur, cur.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        # A raw cursor sends the statements as they are (``$n`` placeholders): psycopg would
        # otherwise parse every long multi-row ``VALUES`` text anew (it caches short ones).
        with raw.pipeline(), dbapi.RawCursor(raw) as cur:
            for how, sql, params in todo:
                if how == _MANY:
                    cur.executemany(sql, params)
                else:
                    cur.execute(sql, params)
    except dbapi.Error as exc:  # as Core would raise it (callers match DBAPIError, sqlstate)
        raise DBAPIError.instance(sql, None, exc, dbapi.Error) from exc


def _apply_changes(
    conn: Connection, changes: Sequence[Change], out: _Statements | None = None
) -> None:
    """Run projection changes as SQL, with the same effect as running them one by one (in
    ``out``, to run with the rest of a flush, if given).

    Every ``Update.where`` is a full primary key, so the changes of one flush are coalesced
    first: updates of a row inserted in this flush are folded into its insert; updates of rows
    that existed before are merged per row (later values win, a value set after an increment
    replaces it, an increment after a value adds to it) and run *before* the inserts, so an
    update that precedes the insert of its row still finds no row, as it would have. What is
    left is one ``executemany`` per table and statement shape.
    """
    inserts: dict[str, list[dict[str, Any]]] = {}
    inserted: dict[tuple[Any, ...], dict[str, Any]] = {}
    # (table, pk values) -> [where, values, increments]
    updates: dict[tuple[Any, ...], tuple[Mapping[str, Any], dict[str, Any], dict[str, int]]] = {}
    key_of = KEY_OF
    for ch in changes:
        table = ch.table
        if type(ch) is Insert or (type(ch) is not Update and isinstance(ch, Insert)):
            row = dict(ch.row)
            inserts.setdefault(table, []).append(row)
            try:
                ident: tuple[Any, ...] = (table, key_of[table](row))
            except KeyError:  # a row without its key: SQL decides what happens to it
                ident = (table, tuple(row.get(c) for c in PRIMARY_KEYS[table]))
            inserted.setdefault(ident, row)
            continue
        assert isinstance(ch, Update)
        ident = (table, key_of[table](ch.where))
        target = inserted.get(ident)
        if target is not None:
            if ch.values:
                target.update(ch.values)
            for col, n in ch.increments.items():
                target[col] = target[col] + n
            continue
        pending = updates.get(ident)
        if pending is None:
            pending = updates[ident] = (ch.where, {}, {})
        _, values, incs = pending
        for col, v in ch.values.items():
            values[col] = v
            incs.pop(col, None)
        for col, n in ch.increments.items():
            if col in values:
                values[col] = values[col] + n
            else:
                incs[col] = incs.get(col, 0) + n

    by_shape: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    # Rows of one flush mostly share their columns (in the same order): work out the shape
    # once per such signature, and whether its values come in the shape's order.
    signatures: dict[tuple[Any, ...], tuple[list[tuple[Any, ...]], tuple[int, ...] | None]] = {}
    for (table_name, *_), (where, values, incs) in updates.items():
        if not values and not incs:
            continue
        sig = (table_name, *where, "", *values, "", *incs)
        known = signatures.get(sig)
        if known is None:
            ordered = (*sorted(values), *sorted(incs), *sorted(where))
            names = (*values, *incs, *where)
            shape = (table_name, tuple(sorted(where)), tuple(sorted(values)), tuple(sorted(incs)))
            order = None if names == ordered else tuple(names.index(n) for n in ordered)
            known = signatures[sig] = (by_shape.setdefault(shape, []), order)
        batch, order = known
        bound = (*values.values(), *incs.values(), *where.values())
        batch.append(bound if order is None else tuple(bound[i] for i in order))
    run = out is None
    if out is None:
        out = _Statements(conn)
    for (table_name, where_cols, value_cols, inc_cols), batch in by_shape.items():
        out.update(table_name, where_cols, value_cols, inc_cols, batch)
    for table_name, rows in inserts.items():
        out.insert_dicts(TABLES[table_name], rows)
    if run:
        out.run()


# The primary key of a row or of an ``Update.where``, per table (a value, or a tuple of values).
_NO_PAYLOAD: Mapping[str, Any] = {}


@lru_cache(maxsize=256)
def _plain_insert(dialect: Any, table_name: str, cols: tuple[str, ...]) -> bool:
    table = _table_named(table_name)
    if any(c.default is not None and c.name not in cols for c in table.columns):
        return False
    return _plain_columns(dialect, table_name, cols)


@lru_cache(maxsize=256)
def _plain_columns(dialect: Any, table_name: str, cols: tuple[str, ...]) -> bool:
    """True if every column exists and binds its Python value as is."""
    table = _table_named(table_name)
    return all(
        c in table.c and table.c[c].type._cached_bind_processor(dialect) is None for c in cols
    )


def _table_named(name: str) -> Table:
    if name == T_EVENTS.name:
        return T_EVENTS
    return T_SNAPSHOTS if name == T_SNAPSHOTS.name else TABLES[name]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@lru_cache(maxsize=64)
def _sqlite_insert_sql(table_name: str, cols: tuple[str, ...]) -> str:
    return (
        f"INSERT INTO {_q(table_name)} ({', '.join(_q(c) for c in cols)}) "
        f"VALUES ({', '.join('?' for _ in cols)})"
    )


@lru_cache(maxsize=256)
def _copy_sql(table_name: str, cols: tuple[str, ...]) -> str:
    return f"COPY {_q(table_name)} ({', '.join(_q(c) for c in cols)}) FROM STDIN"


@lru_cache(maxsize=256)
def _pg_insert_sql(table_name: str, cols: tuple[str, ...], n: int) -> str:
    width = len(cols)
    rows = (
        "(" + ", ".join(f"${r * width + c}" for c in range(1, width + 1)) + ")" for r in range(n)
    )
    return (
        f"INSERT INTO {_q(table_name)} ({', '.join(_q(c) for c in cols)}) VALUES {', '.join(rows)}"
    )


@lru_cache(maxsize=256)
def _update_sql(
    sqlite: bool,
    table_name: str,
    where_cols: tuple[str, ...],
    value_cols: tuple[str, ...],
    inc_cols: tuple[str, ...],
) -> str:
    """An ``UPDATE`` for the driver, its parameters in the order values, increments, key
    (``?`` on SQLite, ``$n`` on PostgreSQL)."""
    marks = iter(range(1, len(where_cols) + len(value_cols) + len(inc_cols) + 1))

    def p() -> str:
        return "?" if sqlite else f"${next(marks)}"

    sets = [f"{_q(c)} = {p()}" for c in value_cols]
    sets += [f"{_q(c)} = {_q(c)} + {p()}" for c in inc_cols]
    where = " AND ".join(f"{_q(c)} = {p()}" for c in where_cols)
    return f"UPDATE {_q(table_name)} SET {', '.join(sets)} WHERE {where}"


@lru_cache(maxsize=256)
def _update_statement(
    table_name: str,
    where_cols: tuple[str, ...],
    value_cols: tuple[str, ...],
    inc_cols: tuple[str, ...],
) -> Any:
    table = TABLES[table_name]
    stmt = table.update().where(and_(*(table.c[c] == bindparam(f"w_{c}") for c in where_cols)))
    sets: dict[str, Any] = {c: bindparam(f"v_{c}") for c in value_cols}
    sets.update({c: table.c[c] + bindparam(f"i_{c}") for c in inc_cols})
    return stmt.values(sets)


Sink = Callable[[Sequence[StoredEvent]], None]


class Journal:
    """A journal database: SQLite file or PostgreSQL, same code."""

    def __init__(
        self,
        url: str,
        *,
        actor: str = "unknown",
        clock: Clock = utcnow,
        create: bool = True,
        drill: str | None = None,
    ) -> None:
        self.url = resolve_url(url)
        # A drill's id: stamped into every event this handle appends (``"drill": id``), which
        # also flags the runs it creates, so drills never mix into real run lists.
        self.drill = drill
        # Runs seen by this handle -> their drill id (None: a real run); see Writer._drill_of.
        self.run_drills: dict[str, str | None] = {}
        self.display_url = mask_url(self.url)
        self.actor = actor
        self.clock = clock
        self.engine: Engine = make_engine(self.url)
        self.sinks: list[Sink] = []
        self._committed: list[StoredEvent] = []
        if create:
            self.journal_id = ensure_schema(self.engine)
        else:
            self.journal_id = self._read_journal_id()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _read_journal_id(self) -> str:
        meta = models.table_of(models.Meta)
        with self.read() as conn:
            value = conn.execute(select(meta.c.value).where(meta.c.key == "journal_id")).scalar()
        if value is None:
            raise BadInput(f"{self.display_url} is not a backout journal; run `backout init`.")
        return str(value)

    def close(self) -> None:
        self.engine.dispose()

    # --- writing ----------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Writer]:
        """A write transaction: appends are chained, projected and committed together."""
        self._committed = []
        with self.engine.connect() as conn:
            with conn.begin():
                writer = Writer(self, conn)
                yield writer
                writer._flush(finish=True)
            if writer.unsynced:  # it held the head but had nothing to flush
                _wait_for_wal(conn)
        committed, self._committed = self._committed, []
        for sink in self.sinks:
            sink(committed)

    def append(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        corr: str | None = None,
    ) -> StoredEvent:
        with self.write() as w:
            return w.append(kind, payload, run_id=run_id, corr=corr)

    # --- reading ----------------------------------------------------------------------

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A read-only transaction. ``snapshot``: every statement in it sees the same state
        (PostgreSQL's REPEATABLE READ; a SQLite transaction does already), for a reader that
        compares what several queries return while writers go on (``verify``)."""
        options: dict[str, Any] = dict(READONLY)
        if snapshot and self.dialect == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        with self.engine.connect().execution_options(**options) as conn, conn.begin():
            yield conn

    def head(self) -> tuple[int, str]:
        with self.read() as conn:
            row = conn.execute(select(T_HEAD.c.seq, T_HEAD.c.hash)).one()
        return int(row.seq), str(row.hash)

    def runs(
        self,
        *,
        status: Sequence[str] | None = None,
        limit: int = 100,
        before: tuple[str, str] | None = None,
        drills: bool | None = False,
        kind: str | None = None,
    ) -> list[models.Run]:
        """Newest first; ``before`` is the ``(created_at, id)`` of the last row of a page."""
        stmt = select(T_RUNS).order_by(T_RUNS.c.created_at.desc(), T_RUNS.c.id.desc())
        if status:
            stmt = stmt.where(T_RUNS.c.status.in_(list(status)))
        if drills is not None:
            stmt = stmt.where(T_RUNS.c.drill == drills)
        if kind is not None:
            stmt = stmt.where(T_RUNS.c.kind == kind)
        if before is not None:
            created, rid = before
            stmt = stmt.where(
                or_(
                    T_RUNS.c.created_at < created,
                    and_(T_RUNS.c.created_at == created, T_RUNS.c.id < rid),
                )
            )
        with self.read() as conn:
            rows = conn.execute(stmt.limit(limit)).mappings().all()
        return [models.Run(**r) for r in rows]

    def count_runs(self, *, drills: bool | None = False) -> int:
        stmt = select(func.count()).select_from(T_RUNS)
        if drills is not None:
            stmt = stmt.where(T_RUNS.c.drill == drills)
        with self.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def get_run(self, ref: str) -> models.Run:
        """A run by id or unique id prefix."""
        with self.read() as conn:
            rows = (
                conn.execute(select(T_RUNS).where(T_RUNS.c.id.startswith(ref, autoescape=True)))
                .mappings()
                .fetchmany(2)
            )
        exact = [r for r in rows if r["id"] == ref]
        if exact:
            return models.Run(**exact[0])
        if not rows:
            raise NotFound(f"no run '{ref}' in {self.display_url}; `backout runs` lists them.")
        if len(rows) > 1:
            raise BadInput(f"run id '{ref}' is ambiguous; type more characters.")
        return models.Run(**rows[0])

    def steps(self, run_id: str) -> list[models.Step]:
        with self.read() as conn:
            rows = conn.execute(
                select(T_STEPS).where(T_STEPS.c.run_id == run_id).order_by(T_STEPS.c.step_no)
            ).mappings()
            return [models.Step(**r) for r in rows]

    def segments(self, run_id: str) -> list[models.Segment]:
        with self.read() as conn:
            rows = conn.execute(
                select(T_SEGMENTS)
                .where(T_SEGMENTS.c.run_id == run_id)
                .order_by(T_SEGMENTS.c.seg_no)
            ).mappings()
            return [models.Segment(**r) for r in rows]

    def _event_filter(self, stmt: Any, run_id: str | None, kinds: Sequence[str] | None) -> Any:
        if run_id is not None:
            stmt = stmt.where(T_EVENTS.c.run_id == run_id)
        if kinds:
            exact = [k for k in kinds if not k.endswith("*")]
            prefixes = [k[:-1] for k in kinds if k.endswith("*")]
            clauses: list[Any] = [T_EVENTS.c.kind.in_(exact)] if exact else []
            clauses += [T_EVENTS.c.kind.startswith(p, autoescape=True) for p in prefixes]
            stmt = stmt.where(or_(*clauses))
        return stmt

    def events(
        self,
        run_id: str | None = None,
        *,
        after_seq: int = 0,
        before_seq: int | None = None,
        limit: int = 256,
        kinds: Sequence[str] | None = None,
        newest_first: bool = False,
    ) -> list[StoredEvent]:
        """A keyset page of events (``kinds`` entries ending in ``*`` are prefixes)."""
        stmt = self._event_filter(select(T_EVENTS), run_id, kinds)
        stmt = stmt.where(T_EVENTS.c.seq > after_seq)
        if before_seq is not None:
            stmt = stmt.where(T_EVENTS.c.seq < before_seq)
        order = T_EVENTS.c.seq.desc() if newest_first else T_EVENTS.c.seq
        with self.read() as conn:
            rows = conn.execute(stmt.order_by(order).limit(limit)).all()
        return [_event_from_row(r) for r in rows]

    def count_events(self, run_id: str | None = None, kinds: Sequence[str] | None = None) -> int:
        stmt = self._event_filter(select(func.count()).select_from(T_EVENTS), run_id, kinds)
        with self.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def event_at(self, run_id: str | None, index: int, kinds: Sequence[str] | None = None) -> int:
        """The seq of the ``index``-th (0-based) matching event: for jumping to a position."""
        stmt = self._event_filter(select(T_EVENTS.c.seq), run_id, kinds)
        with self.read() as conn:
            value = conn.execute(stmt.order_by(T_EVENTS.c.seq).offset(index).limit(1)).scalar()
        return int(value or 0)

    def operations(
        self,
        run_id: str,
        *,
        after_op: int = 0,
        limit: int = 256,
        status: Sequence[str] | None = None,
        newest_first: bool = False,
    ) -> list[models.OperationRow]:
        stmt = select(*_OPERATION_COLUMNS).where(T_OPS.c.run_id == run_id)
        if newest_first:
            if after_op:
                stmt = stmt.where(T_OPS.c.op_no < after_op)
            stmt = stmt.order_by(T_OPS.c.op_no.desc())
        else:
            stmt = stmt.where(T_OPS.c.op_no > after_op).order_by(T_OPS.c.op_no)
        if status:
            stmt = stmt.where(T_OPS.c.status.in_(list(status)))
        with self.read() as conn:
            rows = conn.execute(stmt.limit(limit)).all()
        return list(map(models.OperationRow._make, rows))

    def count_operations(self, run_id: str, status: Sequence[str] | None = None) -> int:
        stmt = select(func.count()).select_from(T_OPS).where(T_OPS.c.run_id == run_id)
        if status:
            stmt = stmt.where(T_OPS.c.status.in_(list(status)))
        with self.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def operation_status_counts(self, run_id: str) -> dict[str, int]:
        stmt = (
            select(T_OPS.c.status, func.count())
            .where(T_OPS.c.run_id == run_id)
            .group_by(T_OPS.c.status)
        )
        with self.read() as conn:
            return {str(s): int(n) for s, n in conn.execute(stmt).all()}

    def snapshot_rows(
        self, run_id: str, phase: str, table: str | None = None
    ) -> Iterator[models.SnapshotRow]:
        stmt = select(*(T_SNAPSHOTS.c[f] for f in models.SnapshotRow._fields)).where(
            T_SNAPSHOTS.c.run_id == run_id, T_SNAPSHOTS.c.phase == phase
        )
        if table is not None:
            stmt = stmt.where(T_SNAPSHOTS.c.tbl == table)
        # Fetched a batch at a time, then converted: converting between fetches (the driver
        # drops and retakes the GIL per row) starves a console's event loop for 100-300 ms.
        with self.read() as conn:
            result = conn.execute(stmt.order_by(T_SNAPSHOTS.c.id))
            make = models.SnapshotRow._make
            for batch in result.partitions(_SNAPSHOT_BATCH):
                yield from map(make, batch)

    def status_counts(self, *, drills: bool | None = False) -> dict[str, int]:
        stmt = select(T_RUNS.c.status, func.count()).group_by(T_RUNS.c.status)
        if drills is not None:
            stmt = stmt.where(T_RUNS.c.drill == drills)
        with self.read() as conn:
            return {str(s): int(n) for s, n in conn.execute(stmt).all()}


# One statement object, so that SQLAlchemy compiles it once (its IN list expands per call).
_BASELINE_ROWS = select(T_SNAPSHOTS.c.key_text, T_SNAPSHOTS.c.row).where(
    T_SNAPSHOTS.c.run_id == bindparam("run_id"),
    T_SNAPSHOTS.c.phase == bindparam("phase"),
    T_SNAPSHOTS.c.tbl == bindparam("tbl"),
    T_SNAPSHOTS.c.key_text.in_(bindparam("keys", expanding=True)),
)


@lru_cache(maxsize=64)
def _sqlite_baseline_sql(n: int) -> str:
    marks = ", ".join("?" * n)
    return (
        "SELECT key_text, row FROM snapshots WHERE run_id = ? AND phase = ? AND tbl = ? "
        f"AND key_text IN ({marks})"
    )


_LATEST_OF_KINDS = (
    select(T_EVENTS)
    .where(
        T_EVENTS.c.run_id == bindparam("run_id"),
        T_EVENTS.c.kind.in_(bindparam("kinds", expanding=True)),
    )
    .order_by(T_EVENTS.c.seq.desc())
    .limit(1)
)


class EngineQueries:
    """Reads the engine needs while a run executes (kept apart from the console's pages)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def runs_for_changeset(self, name: str, version: int) -> list[models.Run]:
        stmt = (
            select(T_RUNS)
            .where(T_RUNS.c.changeset == name, T_RUNS.c.version == version)
            .where(T_RUNS.c.kind.in_(["apply", "reapply"]))
            .order_by(T_RUNS.c.created_at)
        )
        with self.journal.read() as conn:
            return [models.Run(**r) for r in conn.execute(stmt).mappings()]

    def baseline_rows(
        self,
        run_id: str,
        table: str,
        key_texts: Sequence[str],
        phase: str = "baseline",
        *,
        conn: Connection | None = None,
    ) -> dict[str, str | None]:
        """key_text -> row JSON (None: the row was absent) for these keys (read in ``conn``,
        e.g. the transaction that journals the segment's intent, or a new one)."""
        if conn is None:
            with self.journal.read() as own:
                return self.baseline_rows(run_id, table, key_texts, phase, conn=own)
        out: dict[str, str | None] = {}
        if conn.dialect.name == "sqlite":  # the hot path of every segment: straight to SQLite
            for start in range(0, len(key_texts), 500):
                chunk = key_texts[start : start + 500]
                sql = _sqlite_baseline_sql(len(chunk))
                out.update(conn.exec_driver_sql(sql, (run_id, phase, table, *chunk)).all())
            return out
        for start in range(0, len(key_texts), 500):
            params = {
                "run_id": run_id,
                "phase": phase,
                "tbl": table,
                "keys": list(key_texts[start : start + 500]),
            }
            out.update(conn.execute(_BASELINE_ROWS, params).all())
        return out

    def has_snapshot(self, run_id: str, phase: str) -> bool:
        stmt = (
            select(T_SNAPSHOTS.c.id)
            .where(T_SNAPSHOTS.c.run_id == run_id, T_SNAPSHOTS.c.phase == phase)
            .limit(1)
        )
        with self.journal.read() as conn:
            return conn.execute(stmt).first() is not None

    def drop_snapshot(self, run_id: str, phase: str) -> None:
        """Discard a partial snapshot (a run killed while capturing it; nothing written yet)."""
        with self.journal.write() as w:
            w.conn.execute(
                T_SNAPSHOTS.delete().where(
                    T_SNAPSHOTS.c.run_id == run_id, T_SNAPSHOTS.c.phase == phase
                )
            )

    def operations_in(self, run_id: str, first_op: int, last_op: int) -> list[models.OperationRow]:
        stmt = (
            select(*_OPERATION_COLUMNS)
            .where(T_OPS.c.run_id == run_id, T_OPS.c.op_no.between(first_op, last_op))
            .order_by(T_OPS.c.op_no)
        )
        with self.journal.read() as conn:
            return list(map(models.OperationRow._make, conn.execute(stmt)))

    def pause_requested(self, run_id: str, conn: Connection | None = None) -> str | None:
        """Who asked the run to pause, if the request stands: only a resume supersedes it (one
        made while an apply's baseline was still being captured, status planned, must stop the
        run at its first boundary)."""
        latest = self.latest_event(run_id, ["run.pause_requested", "run.resumed"], conn=conn)
        if latest is not None and latest.kind == "run.pause_requested":
            return str(latest.payload.get("by", latest.actor))
        return None

    def latest_event(
        self, run_id: str, kinds: Sequence[str], *, conn: Connection | None = None
    ) -> StoredEvent | None:
        """The run's newest event of one of ``kinds`` (exact kinds; read in ``conn`` if given)."""
        if conn is None:
            with self.journal.read() as own:
                return self.latest_event(run_id, kinds, conn=own)
        row = conn.execute(_LATEST_OF_KINDS, {"run_id": run_id, "kinds": list(kinds)}).first()
        return None if row is None else _event_from_row(row)
