"""Replay a recorded run in a sandbox: ``backout drill replay RUN``.

``Recording.read`` copies the run's journal slice (its events and snapshot rows) out of the
source journal, which is only read, once. ``build_sandbox`` makes a directory with a fresh
SQLite drill journal and a SQLite sandbox target holding the before-images of the run's rows
(baseline snapshot rows, else each row's first before-image; columns and their kinds are
inferred from the journaled images, so the source target is never opened). ``Replayer`` then
re-appends the recorded events through a handle opened with ``drill=<id>`` (every event carries
the drill id, the run is flagged) when a simulated clock reaches their recorded time, and
applies each ``segment.applied``'s after-images to the sandbox target as the run did; so at
the end the sandbox target is where the real target was after the run, and a trainee can work
a runbook against it. Every ``save_every`` events the sandbox is copied aside (``saves/``): a
backward seek restarts from the nearest copy (the journal is append-only: no rewinding).

The run keeps its recorded id (and its events their recorded time and actor), so trainees can
follow the postmortem's references. Its ``run.created`` names the sandbox target instead of the
real one, so whatever a trainee does to the drill run writes the sandbox, never production.
What people did about the run afterwards (runbooks, approvals, reconciliations, fixes,
rollback status) is left out: that is the trainee's part.

A rollback or fix run is about its parent: the parent's events up to the run's creation (and
its ancestors', recursively) are replayed first, at once, the sandbox seeded as it was before
the eldest; rows the run found otherwise than the parent left them are then set as the run
found them (edits the journal never saw). A rollback's own changes to its parent's status
are part of its recording.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, Table, create_engine
from sqlalchemy import types as sa

from console.canonical import canonical_json, loads
from console.drill.clock import SimClock
from console.drill.sandbox import NOTE, Sandbox
from console.engine.segments import JournalOp
from console.errors import BadInput
from console.journal import Journal, format_ts, new_id, utcnow
from console.journal.models import Run
from console.journal.store import StoredEvent, parse_ts
from console.targets.sql import SqlTarget
from console.targets.types import (
    ColumnKind,
    OpKind,
    Row,
    RowWrite,
    SegmentError,
    TransientError,
)
from console.targets.values import key_tuple

# Kinds that record what people did about the run after it ran: the trainee's part.
LEFT_OUT = (
    "runbook.",
    "approval.",
    "gate.",
    "target.",
    "escalation",
    "reconcile.",
    "fix.",
    "drill.",
    "run.status",
    "run.drift",
)
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
_PAGE = 2_000
_SEED_CHUNK = 500


def _kept(kind: str) -> bool:
    return not kind.startswith(LEFT_OUT)


_SNAPSHOT_COLUMNS = ("phase", "tbl", "key_text", "row", "fingerprint")


def _snapshot_rows(journal: Journal, run_id: str, phase: str, table: str) -> list[dict[str, Any]]:
    """A snapshot's rows as plain dicts, to write again under the replay's run."""
    rows = journal.snapshot_rows(run_id, phase, table)
    return [{c: getattr(s, c) for c in _SNAPSHOT_COLUMNS} for s in rows]


def _pages(journal: Journal, run_id: str, after: int, before: int) -> Iterator[StoredEvent]:
    """The run's events with ``after < seq < before``, read a page at a time."""
    while True:
        page = journal.events(run_id, after_seq=after, before_seq=before, limit=_PAGE)
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].seq


def _run_events(journal: Journal, run: Run, before_seq: int) -> list[StoredEvent]:
    """The run's events below ``before_seq``, without the trainee's part (``LEFT_OUT``)."""
    events = [e for e in _pages(journal, run.id, 0, before_seq) if _kept(e.kind)]
    if not events or events[0].kind != "run.created":
        raise BadInput(f"run {run.id} has no run.created event; it cannot be replayed.")
    return events


SnapshotPlace = tuple[str, str, str]  # (run id, phase, table)


@dataclass(frozen=True)
class Recording:
    """A run's journal slice, read once from the source journal, with its lineage: a rollback
    or fix run is about its parent (reconciling it reads the parent's baseline, its outcome
    marks the parent's operations), so the parent's events come along as ``history``, up to
    the run's creation, and are replayed first, at once."""

    run: Run
    events: tuple[StoredEvent, ...]
    snapshots: Mapping[SnapshotPlace, tuple[dict[str, Any], ...]]
    source: str  # the source journal, as displayed (no password)
    source_id: str
    source_head: tuple[int, str]
    history: tuple[StoredEvent, ...] = ()  # the ancestors' events, oldest first

    @classmethod
    def read(cls, journal: Journal, run_ref: str) -> Recording:
        """Read-only: events, snapshot rows and the head; nothing is written."""
        head = journal.head()
        run = journal.get_run(run_ref)
        events = _run_events(journal, run, head[0] + 1)
        if run.kind == "rollback" and run.parent_run:
            # What the rollback did to its parent's status is part of its recording.
            events += [
                e
                for e in _pages(journal, run.parent_run, events[0].seq, head[0] + 1)
                if e.kind == "run.status" and e.payload.get("rollback_run") == run.id
            ]
            events.sort(key=lambda e: e.seq)
        history: list[StoredEvent] = []
        child, seen = run, {run.id}
        created = events[0].seq
        while child.parent_run and child.parent_run not in seen:
            child = journal.get_run(child.parent_run)
            seen.add(child.id)
            earlier = _run_events(journal, child, created)
            created = earlier[0].seq
            history[:0] = earlier
        snapshots: dict[SnapshotPlace, list[dict[str, Any]]] = {}
        for e in (*history, *events):
            if e.kind != "snapshot.taken" or e.run_id is None:
                continue
            place = (e.run_id, str(e.payload.get("phase")), str(e.payload.get("table")))
            if place not in snapshots:
                snapshots[place] = _snapshot_rows(journal, *place)
        return cls(
            run=run,
            events=tuple(events),
            snapshots={k: tuple(v) for k, v in snapshots.items()},
            source=journal.display_url,
            source_id=journal.journal_id,
            source_head=head,
            history=tuple(history),
        )

    @property
    def lineage(self) -> tuple[StoredEvent, ...]:
        """Every event replayed, the ancestors' first."""
        return (*self.history, *self.events)

    def key_columns(self) -> dict[str, tuple[str, ...]]:
        """table -> key columns, from the steps of the run and of its ancestors."""
        return {
            str(s["table"]): tuple(s["key"])
            for e in self.lineage
            if e.kind == "run.created"
            for s in e.payload.get("steps", [])
            if s.get("key")
        }

    def intents(self) -> Iterable[Mapping[str, Any]]:
        """The journaled operations of the whole lineage, in order."""
        for e in self.lineage:
            if e.kind == "segment.intent":
                yield from e.payload.get("ops", [])


def _kind_of(values: Sequence[Any]) -> ColumnKind:
    """A column kind that stores every journaled value of the column back as it was read."""
    present = [v for v in values if v is not None]
    if not present:
        return "text"
    types = {type(v) for v in present}
    if types == {bool}:
        return "bool"
    if types == {int}:
        return "int"
    if types <= {int, float} and float in types:
        return "float"
    decimals = [v for v in present if isinstance(v, str)]
    # Exact decimals are journaled as text; read back from SQLite they may be numbers.
    if (
        types <= {int, float, str}
        and all(_DECIMAL.match(v) for v in decimals)
        and (types != {str} or all("." in v for v in decimals))
    ):
        return "decimal"
    if types == {str}:
        return "text"
    if all(isinstance(v, dict) and set(v) == {"$b64"} for v in present):
        return "bytes"
    if all(isinstance(v, dict | list) for v in present):
        return "json"
    return "other"


_SQL_TYPES: dict[str, Any] = {
    "decimal": sa.Numeric,
    "bool": sa.Boolean,
    "int": sa.Integer,
    "float": sa.Float,
    "text": sa.Text,
    "bytes": sa.LargeBinary,
    "json": sa.JSON,
    "other": sa.LargeBinary,  # BLOB: SQLite stores mixed values exactly as given
}


def _initial_rows(
    rec: Recording, events: Sequence[StoredEvent] | None = None
) -> dict[str, dict[str, Row | None]]:
    """table -> key text -> the row before ``events`` (default: the whole lineage), None when
    it was absent: a baseline snapshot's row, else the first before-image an intent journaled
    for it, whichever came first."""
    rows: dict[str, dict[str, Row | None]] = {}
    keys = rec.key_columns()
    for e in rec.lineage if events is None else events:
        if e.kind == "snapshot.taken" and e.payload.get("phase") == "baseline":
            table = str(e.payload.get("table"))
            known = rows.setdefault(table, {})
            for s in rec.snapshots.get((str(e.run_id), "baseline", table), ()):
                image = loads(s["row"])
                known.setdefault(s["key_text"], image if isinstance(image, dict) else None)
        elif e.kind == "segment.intent":
            for op in e.payload.get("ops", []):
                table, key = str(op["table"]), op["key"]
                kt = canonical_json([key.get(c) for c in keys.get(table, tuple(key))])
                before = op.get("before")
                rows.setdefault(table, {}).setdefault(
                    kt, dict(before) if isinstance(before, dict) else None
                )
    return rows


def _column_values(
    rec: Recording, initial: Mapping[str, Mapping[str, Row | None]]
) -> dict[str, dict[str, list[Any]]]:
    """table -> column -> every journaled value of it (columns in order of first appearance)."""
    values: dict[str, dict[str, list[Any]]] = {}
    images: list[tuple[str, Any]] = [
        (t, r) for t, rows in initial.items() for r in rows.values() if r is not None
    ]
    for op in rec.intents():
        images += [(str(op["table"]), op.get(part)) for part in ("key", "before", "after")]
    for table, image in images:
        if isinstance(image, dict):
            for c, v in image.items():
                values.setdefault(table, {}).setdefault(c, []).append(v)
    return values


def build_sandbox(rec: Recording, directory: Path | None = None) -> Sandbox:
    """A new sandbox (``directory`` must be new or empty) with the drill journal's place and
    a target seeded with the rows as they were before the run (kept as the ``baseline``
    state a score compares against)."""
    sandbox = Sandbox.create(f"replay-{new_id()}", directory)
    seed_target(rec, sandbox)
    sandbox.keep_states(baseline=sandbox.dump())
    note = {
        **sandbox.as_dict(),
        "drill": sandbox.drill_id,
        "source_run": rec.run.id,
        "source_journal": rec.source,
    }
    # Beside the drill journal: whoever opens it (Ctx.journal, the console) stamps ``drill``.
    sandbox.write_json(NOTE, note)
    return sandbox


def seed_target(rec: Recording, sandbox: Sandbox) -> None:
    initial = _initial_rows(rec)
    keys = rec.key_columns()
    values = _column_values(rec, initial)
    meta = MetaData()
    for table, cols in values.items():
        key = keys.get(table) or tuple(next(iter(rec.intents()))["key"])
        # Images are canonical JSON (sorted keys): the table order is lost; key columns first.
        names = [*key, *sorted(c for c in cols if c not in key)]
        Table(
            table,
            meta,
            *(
                Column(
                    c, _SQL_TYPES[_kind_of(cols[c])], primary_key=c in key, nullable=c not in key
                )
                for c in names
            ),
        )
    engine = create_engine(sandbox.target_url)
    try:
        meta.create_all(engine)
    finally:
        engine.dispose()
    with SqlTarget(sandbox.target_url) as target:
        for table, rows in initial.items():
            images = [r for r in rows.values() if r is not None]
            for start in range(0, len(images), _SEED_CHUNK):
                writes = [
                    RowWrite(n, "insert", {c: r[c] for c in keys[table]}, None, r)
                    for n, r in enumerate(images[start : start + _SEED_CHUNK], start=start)
                ]
                target.write_segment(table, keys[table], writes)


def _copy_sqlite(source: Path, destination: Path) -> None:
    """A consistent copy of a SQLite database (committed WAL content included)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(destination)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


# --- the replayer ---------------------------------------------------------------------------


Sleep = Callable[[float], None]


@dataclass
class Progress:
    position: int  # events replayed so far
    total: int
    finished: bool
    diverged: int  # rows the sandbox could not write as the run did (see ``_apply``)


@dataclass
class Replayer:
    """Re-appends a recording into the sandbox's drill journal on a simulated clock."""

    rec: Recording
    sandbox: Sandbox
    speed: float = 1.0
    actor: str = "trainer"
    expect: str = "baseline"  # the right ending the trainer declares (scenarios.REPLAY_EXPECT)
    save_every: int = 50  # events between saves of the sandbox (a backward seek starts there)
    clock: SimClock = field(init=False)
    position: int = field(default=0, init=False)
    diverged: int = field(default=0, init=False)
    finished: bool = field(default=False, init=False)
    restored_from: int | None = field(default=None, init=False)  # the last save gone back to
    _journal: Journal | None = field(default=None, init=False, repr=False)
    _target: SqlTarget | None = field(default=None, init=False, repr=False)
    _intents: dict[int, list[Mapping[str, Any]]] = field(default_factory=dict, init=False)
    _stamp: dt.datetime | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.clock = SimClock(self.start_time, speed=self.speed)

    # --- state ---------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self.rec.events)

    @property
    def start_time(self) -> dt.datetime:
        return parse_ts(self.rec.events[0].ts)

    def time_of(self, index: int) -> dt.datetime:
        """The recorded time of event ``index`` (0-based)."""
        return parse_ts(self.rec.events[min(max(index, 0), self.total - 1)].ts)

    def progress(self) -> Progress:
        return Progress(self.position, self.total, self.finished, self.diverged)

    def now(self) -> dt.datetime:
        """Simulated time (the clock object may be swapped, e.g. by a test)."""
        return self.clock.now()

    def journal_id(self) -> str:
        """The drill journal's id (a rebuild makes a new journal)."""
        assert self._journal is not None, "open() the replayer first"
        return self._journal.journal_id

    def journal_clock(self) -> dt.datetime:
        """The drill journal's time: a replayed event's recorded time, else simulated time."""
        return self._stamp or self.clock.now()

    # --- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Open the drill journal (journaling ``drill.replay.started``) and the sandbox target."""
        self._connect()
        assert self._journal is not None
        self._journal.append(
            "drill.replay.started",
            {
                "source_run": self.rec.run.id,
                "source_journal": self.rec.source,
                "source_journal_id": self.rec.source_id,
                "source_head": {"seq": self.rec.source_head[0], "hash": self.rec.source_head[1]},
                "speed": self.clock.speed,
                "events": self.total,
                "expect": self.expect,
                "sandbox": str(self.sandbox.root),
                "sandbox_target": self.sandbox.target_url,
            },
        )
        if self.rec.history:
            for recorded in self.rec.history:  # the parent's story, at once
                self._replay(recorded)
            self._bridge()

    def _bridge(self) -> None:
        """Between the parent and the run, the target may have changed without the journal
        seeing it (hand edits a fix then repaired, say): set every row the run starts from
        as the run found it, so its segments apply as recorded."""
        assert self._target is not None
        keys = self.rec.key_columns()
        for table, rows in _initial_rows(self.rec, self.rec.events).items():
            wanted = [
                (dict(zip(keys[table], loads(kt), strict=True)), image)
                for kt, image in rows.items()
            ]
            for start in range(0, len(wanted), _SEED_CHUNK):
                self._force_rows(table, keys[table], wanted[start : start + _SEED_CHUNK], 0)

    def _connect(self) -> None:
        self._journal = Journal(
            self.sandbox.journal_url,
            actor=self.actor,
            clock=self.journal_clock,
            drill=self.sandbox.drill_id,
        )
        self._target = SqlTarget(self.sandbox.target_url)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._target is not None:
            self._target.close()
            self._target = None

    def rebuild(self, index: int | None = None) -> None:
        """Go back to the nearest save at or before ``index`` (None: the start), else start
        over from the recording. The journal is append-only, so going back means a fresh
        drill journal and target: copies of a save, or rebuilt from scratch."""
        save = self._save_at_or_before(index) if index is not None else None
        self.close()
        self.sandbox.clear()
        self.finished = False
        self._intents.clear()
        if save is None:
            seed_target(self.rec, self.sandbox)
            self.position = self.diverged = 0
            self.open()
            return
        position, folder = save
        _copy_sqlite(folder / "journal.db", self.sandbox.journal_path)
        _copy_sqlite(folder / "target.db", self.sandbox.target)
        self.position = position
        self.diverged = int(json.loads((folder / "save.json").read_text())["diverged"])
        for e in self.rec.events[:position]:  # a segment's outcome may follow the save
            if e.kind == "segment.intent":
                self._intents[int(e.payload["seg_no"])] = list(e.payload.get("ops", []))
        self._connect()
        self.restored_from = position

    # --- saves: where a backward seek restarts from -----------------------------------------

    @property
    def _saves(self) -> Path:
        return self.sandbox.root / "saves"

    def _save(self) -> None:
        """Copy the drill journal and target as they are after ``position`` events."""
        folder = self._saves / f"{self.position:09d}"
        if folder.exists():
            return
        partial = folder.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        _copy_sqlite(self.sandbox.journal_path, partial / "journal.db")
        _copy_sqlite(self.sandbox.target, partial / "target.db")
        (partial / "save.json").write_text(json.dumps({"diverged": self.diverged}))
        partial.rename(folder)

    def _save_at_or_before(self, index: int) -> tuple[int, Path] | None:
        found = [
            (int(f.name), f)
            for f in self._saves.glob("[0-9]*")
            if f.is_dir() and f.name.isdigit() and int(f.name) <= index
        ]
        return max(found) if found else None

    # --- moving --------------------------------------------------------------------------

    def step(self) -> StoredEvent | None:
        """Replay the next event now; None at the end."""
        if self.position >= self.total:
            return None
        recorded = self.rec.events[self.position]
        stored = self._replay(recorded)
        self.position += 1
        if self.position == self.total:
            self._finish()
        elif self.save_every and self.position % self.save_every == 0:
            self._save()
        return stored

    def advance(self) -> int:
        """Replay every event the simulated clock has reached; how many."""
        n = 0
        now = self.clock.now()
        while self.position < self.total and self.time_of(self.position) <= now:
            self.step()
            n += 1
        return n

    def seek(self, index: int) -> None:
        """Stand after ``index`` events (at least the run's creation); backwards rebuilds."""
        index = min(max(index, 1), self.total)
        if index < self.position:
            self.rebuild(index)
        while self.position < index:
            self.step()
        self.clock.jump(self.time_of(index - 1))

    def seek_time(self, moment: dt.datetime) -> None:
        """Stand after every event recorded at or before ``moment``."""
        index = sum(1 for e in self.rec.events if parse_ts(e.ts) <= moment)
        self.seek(index)
        self.clock.jump(max(moment, self.time_of(self.position - 1)))

    def wait(self) -> float | None:
        """Wall seconds until the next event is due (None: paused or at the end)."""
        if self.position >= self.total:
            return None
        return self.clock.wall_seconds_until(self.time_of(self.position))

    def run_to_end(self, sleep: Sleep = time.sleep) -> None:
        """Play to the end at the clock's speed (headless)."""
        self.clock.play()
        while self.position < self.total:
            delay = self.wait()
            if delay:
                sleep(delay)
            self.advance()

    # --- one event -----------------------------------------------------------------------

    def _replay(self, recorded: StoredEvent) -> StoredEvent:
        journal, target = self._journal, self._target
        assert journal is not None and target is not None, "open() the replayer first"
        payload = self._payload(recorded)
        journal.actor = recorded.actor
        self._stamp = parse_ts(recorded.ts)
        try:
            with journal.write() as w:
                stored = w.append(
                    recorded.kind, payload, run_id=recorded.run_id, corr=recorded.corr
                )
                if recorded.kind == "snapshot.taken":
                    place = (
                        str(recorded.run_id),
                        str(payload.get("phase")),
                        str(payload.get("table")),
                    )
                    w.add_snapshot_rows(
                        [
                            {"run_id": recorded.run_id, **row}
                            for row in self.rec.snapshots.get(place, ())
                        ]
                    )
        finally:
            journal.actor = self.actor
            self._stamp = None
        if recorded.kind == "segment.intent":
            self._intents[int(payload["seg_no"])] = list(payload.get("ops", []))
        elif recorded.kind == "segment.applied":
            self._apply(payload)
        elif recorded.kind == "op.conflict":
            self._found(payload)
        return stored

    def _payload(self, recorded: StoredEvent) -> dict[str, Any]:
        # Marked, so a score tells the recording from the trainee's own events.
        payload = {**recorded.payload, "replayed": True}
        if recorded.kind == "run.created":
            url = self.sandbox.target_url
            payload.update(target=url, target_override=None)
            payload["steps"] = [
                {**s, "target": url, "target_ref": url} for s in payload.get("steps", [])
            ]
            payload["replay_of"] = {"run": recorded.run_id, "journal": self.rec.source}
        elif recorded.kind == "snapshot.taken":
            # The recorded aggregates describe the whole production table; the sandbox holds
            # only the run's rows, so its own are journaled (the recorded ones kept aside).
            assert self._target is not None
            table = str(payload.get("table"))
            numeric = [
                c.name
                for c in self._target.table(table).columns.values()
                if c.kind in ("int", "decimal", "float")
            ]
            payload["recorded_aggregates"] = payload.get("aggregates")
            payload["aggregates"] = self._target.aggregates(table, numeric).as_dict()
        return payload

    def _apply(self, payload: Mapping[str, Any]) -> None:
        """Write a segment's applied rows to the sandbox as the run did. A row not found as
        its before-image (a recorded in-doubt segment, an out-of-band edit the journal never
        saw) is not forced: it counts as ``diverged``."""
        assert self._target is not None
        applied = {int(n) for n in payload.get("applied", [])}
        ops = [
            o for o in self._intents.get(int(payload["seg_no"]), []) if int(o["op_no"]) in applied
        ]
        keys = self.rec.key_columns()
        by_table: dict[str, list[RowWrite]] = {}
        for o in ops:
            op = JournalOp(
                op_no=int(o["op_no"]),
                table=str(o["table"]),
                op=o["op"],
                key=dict(o["key"]),
                before=o.get("before"),
                after=o.get("after"),
                inverse=o.get("inverse") or {},
                idem=str(o.get("idem", "")),
            )
            by_table.setdefault(op.table, []).append(op.row_write())
        for table, writes in by_table.items():
            try:
                outcomes = self._target.write_segment(
                    table, keys.get(table) or tuple(writes[0].key), writes
                )
            except (SegmentError, TransientError):
                self.diverged += len(writes)
                continue
            self.diverged += sum(1 for o in outcomes if o.status != "applied")

    def _found(self, payload: Mapping[str, Any]) -> None:
        """A conflict: the run found the row as someone else had left it (``detail.now``).
        The sandbox takes that row, so it holds the out-of-band edit too (and a trainee's
        rollback meets the same conflict)."""
        detail = payload.get("detail") or {}
        if "now" not in detail or not isinstance(detail.get("key"), dict):
            return
        op_no = int(payload.get("op_no", 0))
        table = str(detail.get("table") or self._table_of(op_no))
        keys = self.rec.key_columns().get(table) or tuple(detail["key"])
        self._force_rows(table, keys, [(dict(detail["key"]), detail["now"])], op_no)

    def _force_rows(
        self, table: str, keys: Sequence[str], wanted: Sequence[tuple[Row, Row | None]], op_no: int
    ) -> None:
        """Make the sandbox hold each ``(key, row)`` (row None: no row), whatever it holds, in
        one transaction."""
        assert self._target is not None
        keys = tuple(keys)
        found = self._target.read_rows(table, keys, [key for key, _ in wanted])
        info = self._target.table(table)
        writes = []
        for key, now in wanted:
            current = found.get(key_tuple(info, keys, key))
            if current is None and now is None:
                continue
            kind: OpKind = "insert" if current is None else "delete" if now is None else "update"
            write = (
                None
                if now is None
                else {c: v for c, v in now.items() if c not in keys or kind == "insert"}
            )
            writes.append(RowWrite(op_no, kind, key, current, write))
        if not writes:
            return
        try:
            outcomes = self._target.write_segment(table, keys, writes)
        except (SegmentError, TransientError):
            self.diverged += len(writes)
            return
        self.diverged += sum(1 for o in outcomes if o.status != "applied")

    def _table_of(self, op_no: int) -> str:
        for ops in self._intents.values():
            for o in ops:
                if int(o["op_no"]) == op_no:
                    return str(o["table"])
        return ""

    def _finish(self) -> None:
        assert self._journal is not None
        self.finished = True
        self._journal.append(
            "drill.replay.finished",
            {
                "source_run": self.rec.run.id,
                "source_journal": self.rec.source,
                "source_head": {"seq": self.rec.source_head[0], "hash": self.rec.source_head[1]},
                "speed": self.clock.speed,
                "events": self.total,
                "diverged": self.diverged,
                "states_digest": self.sandbox.keep_states(batch=self.sandbox.dump()),
                "wall_ts": format_ts(utcnow()),
            },
        )
