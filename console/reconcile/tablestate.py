"""The whole-table baseline behind ``collateral``: what the tables a run touches looked like
outside the change set's keys, captured at apply time and checked at reconcile time.

Two forms, chosen by size (``[reconcile] full_baseline_rows``; above ``digest_max_rows``
neither, and collateral is seen by the aggregate checks only):
- ``rows``: a small table is copied whole into the journal's snapshots (phase ``table``); the
  classifier then compares every row, so a collateral change is found per key and column.
- ``buckets``: a large table is summarised, pg_comparator style, without a copy: every row
  outside the change set's keys falls in a bucket by a hash of its key, and each bucket keeps
  its row count and the sum of a 32-bit hash of the row's text (order-independent, computed
  by the database: ``hashtext`` on PostgreSQL, ``CRC32`` on MariaDB, zlib's crc32 registered
  on SQLite). At reconcile time the same query runs again; a bucket whose count or digest
  moved holds a collateral change, and its current rows are the candidates (about
  ``rows_per_bucket`` of them). The old values are not kept, so a bucket finding lists
  candidates rather than the exact row.

Both sides exclude the same key set (the run's baseline snapshot keys for the table), so the
change set's own writes never show as collateral.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from console.canonical import canonical_json, digest
from console.changes.model import Step
from console.config import Settings
from console.errors import BadInput
from console.journal import Journal
from console.reconcile.aggregates import numeric_columns
from console.reconcile.fingerprint import key_text
from console.reconcile.report import Finding
from console.reconcile.sqlio import TableRef, keys_in, table_aggregates
from console.targets.sql import SqlTarget
from console.targets.types import Aggregates, KeyTuple, Row

ROWS_PHASE = "table"
BUCKETS_PHASE = "table-buckets"
MAX_BUCKETS = 1 << 20
CANDIDATES = 50  # current rows listed per drifted bucket


@dataclass(frozen=True)
class TableState:
    """What ``snapshot.taken`` records under ``table_state``."""

    mode: str  # rows | buckets | none (too large: aggregates only)
    rows: int
    buckets: int
    digest: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rows": self.rows,
            "buckets": self.buckets,
            "digest": self.digest,
        }

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> TableState:
        return cls(
            str(payload["mode"]), int(payload["rows"]), int(payload["buckets"]), payload["digest"]
        )


# --- SQL per dialect --------------------------------------------------------------------


def _register(conn: Connection) -> None:
    """zlib's crc32 as ``backout_crc32`` on a SQLite connection (no hash function built in).
    The C function itself, no Python frame per row: it takes the text as UTF-8 bytes (a
    cast in the SQL, see ``_hash32``); a NULL hashes as ``b""``, to 0."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.create_function("backout_crc32", 1, zlib.crc32, deterministic=True)


def _text_of(dialect: str, cols: Sequence[sa.ColumnElement[Any]]) -> sa.ColumnElement[Any]:
    """A NULL-safe text of a row (or key) in the database's own formatting."""
    if dialect == "postgresql":
        return sa.cast(sa.func.row(*cols), sa.Text)
    if dialect == "sqlite" and len(cols) <= _PRINTF_MAX:
        return _sqlite_text(cols)
    sep = sa.func.char(31)
    quoted: list[sa.ColumnElement[Any]] = [sa.func.quote(c) for c in cols]
    if dialect == "sqlite":
        out = quoted[0]
        for q in quoted[1:]:
            out = out.op("||")(sep).op("||")(q)
        return out
    return sa.func.concat_ws(sep, *quoted)


_PRINTF_MAX = 60  # columns: the NULL mask is one 64-bit integer


def _sqlite_text(cols: Sequence[sa.ColumnElement[Any]]) -> sa.ColumnElement[Any]:
    """One ``printf`` per row (half the cost of ``quote()`` on every column): values as
    text, a REAL column through ``quote`` (its text round-trips, ``%s`` keeps 15 digits),
    and a mask of the NULL columns so that NULL and '' differ."""
    values = [sa.func.quote(c) if isinstance(c.type, sa.Float) else c for c in cols]
    mask = sum(
        (sa.case((c.is_(None), 1 << i), else_=0) for i, c in enumerate(cols)),
        start=sa.literal(0),
    )
    fmt = "%s\x1f" * len(cols) + "%d"  # unit separators
    return sa.func.printf(sa.literal(fmt), *values, mask)


def _hash32(dialect: str, text: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """A non-negative 32-bit hash of a text, summable without overflow."""
    if dialect == "postgresql":
        return sa.cast(sa.func.hashtext(text), sa.BigInteger) + 2147483648
    if dialect == "sqlite":
        return sa.func.backout_crc32(sa.cast(sa.func.coalesce(text, ""), sa.LargeBinary))
    return sa.func.crc32(text)


def _bucket_query(
    conn: Connection,
    table: sa.Table,
    key_columns: Sequence[str],
    scope: Sequence[KeyTuple],
    buckets: int,
) -> tuple[sa.Select[Any], sa.ColumnElement[Any], Any, dict[str, Any]]:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        _register(conn)
    cols = list(table.c)
    keys = [table.c[k] for k in key_columns]
    bucket = _hash32(dialect, _text_of(dialect, keys)) % buckets
    where, params = _outside(conn, table, key_columns, scope)
    return (
        sa.select(bucket.label("b"), _hash32(dialect, _text_of(dialect, cols)).label("h")),
        bucket,
        where,
        params,
    )


def _outside(
    conn: Connection, table: sa.Table, key_columns: Sequence[str], scope: Sequence[KeyTuple]
) -> tuple[Any, dict[str, Any]]:
    """Rows outside the change set's keys (a NULL key part is outside)."""
    if not scope:
        return sa.true(), {}
    inside, params = keys_in(conn, table, key_columns, scope)
    nulls = [table.c[k].is_(None) for k in key_columns]
    return sa.or_(*nulls, sa.not_(inside)), params


def _bucket_digests(
    target: SqlTarget,
    table: str,
    key_columns: Sequence[str],
    scope: Sequence[KeyTuple],
    buckets: int,
) -> dict[int, tuple[int, int]]:
    """bucket -> (row count, sum of row hashes), rows outside ``scope`` only."""
    t = target._reflected(table).table
    with target.engine.connect() as conn:
        inner, _bucket, where, params = _bucket_query(conn, t, key_columns, scope, buckets)
        sub = inner.where(where).subquery()
        q = sa.select(sub.c.b, sa.func.count(), sa.func.sum(sub.c.h)).group_by(sub.c.b)
        return {int(b): (int(n), int(s or 0)) for b, n, s in conn.execute(q, params)}


def _bucket_rows(
    target: SqlTarget,
    table: str,
    key_columns: Sequence[str],
    scope: Sequence[KeyTuple],
    buckets: int,
    wanted: Sequence[int],
) -> dict[int, list[KeyTuple]]:
    """The current keys outside ``scope`` in the ``wanted`` buckets."""
    t = target._reflected(table).table
    out: dict[int, list[KeyTuple]] = {b: [] for b in wanted}
    with target.engine.connect() as conn:
        _inner, bucket, where, params = _bucket_query(conn, t, key_columns, scope, buckets)
        keys = [t.c[k] for k in key_columns]
        for i in range(0, len(wanted), 500):
            part = list(wanted[i : i + 500])
            q = sa.select(bucket, *keys).where(where, bucket.in_(part))
            for r in conn.execute(q, params):
                found = out[int(r[0])]
                if len(found) < CANDIDATES:
                    found.append(tuple(r[1:]))
    return out


# --- capture (apply time) ---------------------------------------------------------------


def scope_keys(journal: Journal, run_id: str, table: str) -> list[KeyTuple]:
    """The change set's keys for a table: those of the run's baseline snapshot."""
    out: list[KeyTuple] = []
    for s in journal.snapshot_rows(run_id, "baseline", table):
        value = json.loads(s.key_text)
        out.append(tuple(value) if isinstance(value, list) else (value,))
    return out


def _drop(journal: Journal, run_id: str, table: str | None) -> None:
    from console.journal.store import T_SNAPSHOTS

    where = [T_SNAPSHOTS.c.run_id == run_id, T_SNAPSHOTS.c.phase.in_((ROWS_PHASE, BUCKETS_PHASE))]
    if table is not None:
        where.append(T_SNAPSHOTS.c.tbl == table)
    with journal.write() as w:
        w.conn.execute(T_SNAPSHOTS.delete().where(*where))


def discard(journal: Journal, run_id: str) -> None:
    """Forget a refused change set's table states (the run never started)."""
    _drop(journal, run_id, None)


def _write(journal: Journal, rows: list[dict[str, Any]]) -> None:
    with journal.write() as w:
        w.add_snapshot_rows(rows)


def capture(
    journal: Journal, settings: Settings, target: SqlTarget, run_id: str, step: Step
) -> dict[str, Any]:
    """What a step's ``snapshot.taken`` adds for reconciliation, captured with its baseline:
    ``table_state`` (the table outside the change set; a table written by several steps is
    captured again, replacing the earlier one, once every step's keys are known), the step's
    ``reconcile`` section, and with its ``group_by`` the per-group aggregates."""
    out: dict[str, Any] = {"table_state": _capture_state(journal, settings, target, run_id, step)}
    if step.reconcile:
        out["reconcile"] = dict(step.reconcile)
    group = step.reconcile.get("group_by")
    if group:
        out["group_aggregates"] = [
            [list(g), a.as_dict()]
            for g, a in group_aggregates(target, step.table, str(group)).items()
        ]
    return out


def group_aggregates(target: SqlTarget, table: str, group_by: str) -> dict[Any, Aggregates]:
    """Count and exact sums per value of ``group_by``, pushed down to SQL."""
    info = target.table(table)
    if not info.has(group_by):
        raise BadInput(f"reconcile.group_by {group_by}: no such column in table {table}.")
    t = target._reflected(table).table
    numeric = [c for c in numeric_columns(info) if c != group_by]
    with target.engine.connect() as conn:
        return table_aggregates(conn, info, TableRef(t.name, t.schema), numeric, group_by=group_by)


def _capture_state(
    journal: Journal, settings: Settings, target: SqlTarget, run_id: str, step: Step
) -> dict[str, Any]:
    cfg = settings.reconcile
    table = step.table
    info = target.table(table)
    key = tuple(step.key or info.primary_key)
    _drop(journal, run_id, table)
    total = int(target.aggregates(table, []).count)
    if total <= cfg.full_baseline_rows:
        return _capture_rows(journal, target, run_id, table, key).as_dict()
    if total > cfg.digest_max_rows:
        return TableState("none", total, 0, "").as_dict()
    buckets = min(MAX_BUCKETS, max(1, -(-total // cfg.rows_per_bucket)))
    found = _bucket_digests(target, table, key, scope_keys(journal, run_id, table), buckets)
    rows = [
        {
            "run_id": run_id,
            "phase": BUCKETS_PHASE,
            "tbl": table,
            "key_text": str(b),
            "row": canonical_json({"count": n, "sum": s}),
            "fingerprint": f"{n}:{s}"[:32],
        }
        for b, (n, s) in sorted(found.items())
    ]
    for i in range(0, len(rows), 5000):
        _write(journal, rows[i : i + 5000])
    state = TableState("buckets", total, buckets, digest(sorted(found.items())))
    return state.as_dict()


def _capture_rows(
    journal: Journal, target: SqlTarget, run_id: str, table: str, key: tuple[str, ...]
) -> TableState:
    batch: list[dict[str, Any]] = []
    entries: list[tuple[str, str]] = []
    n = 0
    for row in target.scan(table, key):
        kt = key_text([row.get(c) for c in key])
        text = canonical_json(row)
        entries.append((kt, text))
        batch.append(
            {
                "run_id": run_id,
                "phase": ROWS_PHASE,
                "tbl": table,
                "key_text": kt,
                "row": text,
                "fingerprint": "",
            }
        )
        n += 1
        if len(batch) >= 5000:
            _write(journal, batch)
            batch = []
    if batch:
        _write(journal, batch)
    return TableState("rows", n, 0, digest(sorted(entries)))


# --- reading it back (reconcile time) ---------------------------------------------------


def taken(journal: Journal, run_id: str, table: str) -> list[Mapping[str, Any]]:
    """The run's baseline ``snapshot.taken`` payloads for a table, one per step, in order."""
    return [
        e.payload
        for e in journal.events(run_id, kinds=["snapshot.taken"], limit=1000)
        if e.payload.get("phase") == "baseline" and e.payload.get("table") == table
    ]


def recorded(journal: Journal, run_id: str, table: str) -> TableState | None:
    """The last ``table_state`` journaled for this table of the run (None: before this
    feature, or a run that never captured its baseline)."""
    found = [p["table_state"] for p in taken(journal, run_id, table) if p.get("table_state")]
    return TableState.of(found[-1]) if found else None


def baseline_rows(journal: Journal, run_id: str, table: str) -> dict[KeyTuple, Row | None]:
    """The whole-table baseline of a ``rows`` capture, by key."""
    out: dict[KeyTuple, Row | None] = {}
    for s in journal.snapshot_rows(run_id, ROWS_PHASE, table):
        value = json.loads(s.key_text)
        row = json.loads(s.row) if s.row else None
        out[tuple(value)] = row if isinstance(row, dict) else None
    return out


def bucket_findings(
    journal: Journal,
    target: SqlTarget,
    run_id: str,
    table: str,
    key_columns: Sequence[str],
    state: TableState,
) -> tuple[list[Finding], int]:
    """Key-less ``collateral`` findings: buckets whose rows outside the change set moved, with
    their current keys as candidates. Also returns the number of rows compared."""
    before: dict[int, tuple[int, int]] = {}
    for s in journal.snapshot_rows(run_id, BUCKETS_PHASE, table):
        data = json.loads(s.row or "{}")
        before[int(s.key_text)] = (int(data["count"]), int(data["sum"]))
    scope = scope_keys(journal, run_id, table)
    now = _bucket_digests(target, table, key_columns, scope, state.buckets)
    moved = sorted(b for b in set(before) | set(now) if before.get(b) != now.get(b))
    candidates = _bucket_rows(target, table, key_columns, scope, state.buckets, moved)
    findings = [
        Finding(
            key=(),
            cls="collateral",  # without a key: the bucket and its candidate rows
            columns=[],
            before={"count": before.get(b, (0, 0))[0]},
            expected={"count": before.get(b, (0, 0))[0]},
            actual={"count": now.get(b, (0, 0))[0]},
            detail={
                "bucket": b,
                "buckets": state.buckets,
                "candidates": [list(k) for k in candidates.get(b, [])],
            },
            in_scope=False,
        )
        for b in moved
    ]
    return findings, sum(n for n, _s in now.values())


def merged_baseline(
    outside: Mapping[KeyTuple, Row | None], scope: Mapping[KeyTuple, Row | None]
) -> dict[KeyTuple, Row | None]:
    """The whole table's B: the captured rows, with the change set's own before-images
    taking precedence for its keys."""
    return {**{k: v for k, v in outside.items() if k not in scope}, **scope}
