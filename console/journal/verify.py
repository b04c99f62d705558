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
    EventView,
    MemoryProjection,
    project,
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
        for rows in _event_batches(conn):
            for seq, ts, kind, run_id, corr, actor, payload, stored in rows:
                if seq != expected_seq:
                    if seq > expected_seq:
                        return fail(expected_seq, f"event {expected_seq} is missing")
                    return fail(seq, f"event {seq} is out of order")
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
                if memory is not None:
                    try:
                        data = loads(payload)
                    except ValueError:
                        return fail(seq, f"event {seq} has a payload that is not JSON")
                    if kind in HANDLERS:
                        view = EventView(seq, ts, kind, run_id, actor, corr, data)
                        try:
                            memory.apply(seq, project(view))
                        except (AttributeError, KeyError, TypeError, ValueError) as exc:
                            return fail(seq, f"event {seq} ({kind}) cannot be projected: {exc!r}")
                    if run_id is not None:
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
