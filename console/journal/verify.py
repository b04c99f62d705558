"""``backout journal verify``: recompute the chain and the projections; compare with the last
head this machine trusted (grew: must extend it; same size: same head; shrank: fail)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from console.canonical import sha256_hex
from console.journal.chain import event_bytes, genesis_hash
from console.journal.projections import (
    HANDLERS,
    PRIMARY_KEYS,
    Change,
    EventView,
    Insert,
    MemoryProjection,
    project,
)
from console.journal.prune import (
    Checkpoint,
    events_digest_line,
    load_checkpoints,
    load_state,
    state_digest,
    tombstone,
)
from console.journal.store import T_EVENTS, T_HEAD, TABLES, Journal
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
            key = tuple(values[c] for c in PRIMARY_KEYS[ch.table])
            if pending.get((ch.table, key), 0) <= seq:
                out.append(ch)
        return out


def verify(
    journal: Journal,
    *,
    projections: bool = True,
    remember: bool = True,
    trusted: dict[str, Any] | None = None,
) -> VerifyReport:
    """Check the whole journal; on success remember its head as trusted (per journal URL)."""
    report = VerifyReport(ok=False, journal=journal.display_url, journal_id=journal.journal_id)
    trusted = trusted if trusted is not None else _load_trusted(journal)
    memory = MemoryProjection() if projections else None
    prev = genesis_hash(journal.journal_id)
    expected_seq = 1
    trusted_hash_seen: str | None = None

    def fail(seq: int | None, problem: str) -> VerifyReport:
        report.first_bad_seq = seq
        report.problem = problem
        return report

    with journal.read() as conn:
        head = conn.execute(select(T_HEAD.c.seq, T_HEAD.c.hash)).one()
        sha = hashlib.sha256
        loads = json.loads
        trusted_seq = trusted.get("seq") if trusted is not None else None
        runs = memory.tables["runs"] if memory is not None else {}
        problems = memory.problems if memory is not None else []
        prev_digest = bytes.fromhex(prev)
        checkpoints = load_checkpoints(conn)
        pruned = _Pruned(checkpoints, load_state(conn)) if checkpoints else None
        pending = pruned.pending if pruned is not None else {}
        if pruned is not None:
            report.notes.append(
                f"{sum(cp.events for cp in checkpoints)} event payloads pruned by "
                f"{len(checkpoints)} journal.pruned checkpoint(s): their hashes are attested "
                "by the checkpoints, not recomputed"
            )
        for rows in _event_batches(conn):
            for row in rows:
                seq, ts, kind, run_id, corr, actor, payload, stored = row
                if seq != expected_seq:
                    if seq > expected_seq:
                        return fail(expected_seq, f"event {expected_seq} is missing")
                    return fail(seq, f"event {seq} is out of order")
                if pruned is not None and pruned.next_lo is not None and seq >= pruned.next_lo:
                    by = pruned.owner(seq)
                    if by is not None:
                        problem = pruned.take(row, by)
                        if problem is not None:
                            return fail(seq, problem)
                        if seq == trusted_seq:
                            trusted_hash_seen = stored
                        prev_digest = bytes.fromhex(stored)
                        expected_seq += 1
                        continue
                digest = sha(
                    prev_digest + event_bytes(seq, ts, kind, run_id, corr, actor, payload)
                ).digest()
                computed = digest.hex()
                if computed != stored:
                    return fail(
                        seq,
                        f"event {seq} was changed: its content does not match "
                        "its hash (edited, replaced or reordered)",
                    )
                if pruned is not None and seq in pruned.by_seq:
                    problem = pruned.close(seq, payload)
                    if problem is not None:
                        return fail(seq, problem)
                    if memory is not None:
                        pruned.seed(seq, memory)
                if memory is not None:
                    try:
                        data = loads(payload)
                    except ValueError:
                        return fail(seq, f"event {seq} has a payload that is not JSON")
                    if kind in HANDLERS:
                        view = EventView(seq, ts, kind, run_id, actor, corr, data)
                        try:
                            changes = project(view)
                            if pending:
                                changes = pruned.keep(seq, changes) if pruned else changes
                            memory.apply(seq, changes)
                        except (AttributeError, KeyError, TypeError, ValueError) as exc:
                            return fail(seq, f"event {seq} ({kind}) cannot be projected: {exc!r}")
                    if run_id is not None and not (
                        pending and pending.get(("runs", (run_id,)), 0) > seq
                    ):
                        # last_seq_changes() for one event, applied as MemoryProjection.apply
                        # would apply it (inlined: this runs once per event).
                        run_row = runs.get((run_id,))
                        if run_row is None:
                            problems.append(
                                (seq, f"runs {(run_id,)} changed before it was created")
                            )
                        else:
                            run_row["last_seq"] = seq
                if seq == trusted_seq:
                    trusted_hash_seen = computed
                prev_digest = digest
                expected_seq += 1
        prev = prev_digest.hex()
        count = expected_seq - 1
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
            mismatch = _compare_projections(conn, memory)
            if mismatch is not None:
                return fail(None, mismatch)
            report.projections_checked = True
    report.ok = True
    if remember:
        _save_trusted(journal, report.head_seq, report.head_hash)
    return report


_EVENT_COLUMNS = ("seq", "ts", "kind", "run_id", "corr", "actor", "payload", "hash")


def _event_batches(conn: Any) -> Iterator[Sequence[Any]]:
    """Every event in ``seq`` order, in batches of row tuples, inside ``conn``'s transaction.

    On SQLite the rows come straight from the driver's cursor (these columns are plain text and
    integers, which SQLAlchemy would pass through unchanged); elsewhere through Core, streamed.
    """
    if conn.dialect.name == "sqlite":
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(f"SELECT {', '.join(_EVENT_COLUMNS)} FROM events ORDER BY seq")
            while rows := cursor.fetchmany(_BATCH):
                yield rows
        finally:
            cursor.close()
        return
    stmt = select(*(T_EVENTS.c[c] for c in _EVENT_COLUMNS)).order_by(T_EVENTS.c.seq)
    yield from conn.execution_options(yield_per=_BATCH).execute(stmt).partitions()


def _compare_projections(conn: Any, memory: MemoryProjection) -> str | None:
    for name, pk in PRIMARY_KEYS.items():
        table = TABLES[name]
        expected = memory.tables[name]
        names = [c.name for c in table.columns]
        key_at = [names.index(c) for c in pk]
        seen = 0
        result = conn.execution_options(yield_per=_BATCH).execute(select(table))
        for rows in result.partitions():
            for row in rows:
                key = tuple(row[i] for i in key_at)
                want = expected.get(key)
                if want is None:
                    return f"projection {name} has a row {key} that no event created"
                # Fast path: equal as a whole (bool == int, as _norm would make them).
                if len(want) != len(names) or tuple(want.get(c) for c in names) != tuple(row):
                    mapping = row._mapping
                    for col, value in want.items():
                        if _norm(mapping[col]) != _norm(value):
                            return (
                                f"projection {name} {key}: {col} is {mapping[col]!r} but the "
                                f"events say {value!r}"
                            )
                seen += 1
        if seen != len(expected):
            return f"projection {name} is missing {len(expected) - seen} row(s) the events create"
    return None


def _norm(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value
