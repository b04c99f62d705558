"""Detection pushed down to SQL, for when the baseline and the target sit in one database
(a baseline copy and the target table in one SQLite connection with ATTACH, or two schemas of
one PostgreSQL database).

The keyed comparison is NULL-safe (``IS NOT`` in SQLite, ``IS DISTINCT FROM`` in PostgreSQL,
``<=>`` in MariaDB, all from SQLAlchemy's ``is_distinct_from``) and returns only the keys that
differ. SQL compares raw values, so it may flag rows that are equal by meaning (a timestamp in
another format, a value within tolerance): every flagged key is then classified by the Python
core (``diff.reconcile``) with the declared normalisers, which is why the pushdown and the
Python fallback give identical findings. SQL never under-reports: equal raw values are equal
after normalisation, and text is compared with the BINARY collation. Reading rows, hygiene and
aggregates live in ``sqlio``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from console.reconcile.aggregates import Deltas, Group, check_aggregates
from console.reconcile.diff import LaterWriters, reconcile
from console.reconcile.fingerprint import NormKey, RowCodec
from console.reconcile.normalise import Normalisers
from console.reconcile.report import Mode, Report
from console.reconcile.sqlio import (
    Bind,
    Hygiene,
    TableRef,
    connect,
    copy_table,
    count_rows,
    fetch_rows,
    key_hygiene,
    sqlite_engine,
    table_aggregates,
)
from console.targets.types import Aggregates, KeyTuple, Row, TableInfo

_PARALLEL_MIN_ROWS = 200_000  # below this, one connection is faster than two


@dataclass(frozen=True)
class Detection:
    keys: list[KeyTuple]  # keys whose rows differ or exist on one side only
    rows_compared: int  # rows of the target
    baseline_rows: int
    seconds: float
    partitions: int

    @property
    def rows_per_s(self) -> float:
        return self.rows_compared / self.seconds if self.seconds else float("inf")


def _has_collation(conn: Connection, ref: TableRef) -> bool:
    """Whether a SQLite table declares a collation (then text must be compared as BINARY)."""
    master = f'"{ref.schema}".sqlite_master' if ref.schema else "sqlite_master"
    sql = conn.execute(
        sa.text(f"SELECT sql FROM {master} WHERE type = 'table' AND name = :n"), {"n": ref.name}
    ).scalar()
    return sql is None or "collate" in str(sql).lower()


def _leading_indexed(conn: Connection, ref: TableRef, column: str) -> bool:
    insp = sa.inspect(conn)
    pk = insp.get_pk_constraint(ref.name, schema=ref.schema).get("constrained_columns") or []
    if pk and pk[0] == column:
        return True
    return any(
        ix["column_names"] and ix["column_names"][0] == column
        for ix in insp.get_indexes(ref.name, schema=ref.schema)
    )


def _boundaries(conn: Connection, ref: TableRef, column: str, rows: int, parts: int) -> list[Any]:
    """Values of the leading key column that split ``ref`` into ``parts`` equal ranges."""
    t = ref.sa_table([column])
    out: list[Any] = []
    for i in range(1, parts):
        q = sa.select(t.c[column]).order_by(t.c[column]).limit(1).offset(rows * i // parts)
        v = conn.execute(q).scalar()
        if v is not None and (not out or v != out[-1]):
            out.append(v)
    return out


def _in_range(col: Any, lo: Any, hi: Any) -> list[Any]:
    cond = []
    if lo is not None:
        cond.append(col >= lo)
    if hi is not None:
        cond.append(col < hi)
    return cond


def detect(
    bind: Bind,
    info: TableInfo,
    target: TableRef,
    baseline: TableRef,
    key_columns: Sequence[str],
    columns: Sequence[str],
    *,
    workers: int = 2,
    unique_target: bool = False,
) -> Detection:
    """Keys whose rows differ between ``target`` and ``baseline`` (same columns), in SQL.

    With an Engine and a large table, the key range is split on the leading key column and
    compared on ``workers`` connections at once (SQLite releases the GIL while it steps).
    ``unique_target``: the target has no duplicate keys (hygiene said so), so row counts can
    prove that no baseline key is missing and the second pass is skipped."""
    started = time.perf_counter()
    key = list(key_columns)
    with connect(bind) as conn:
        n_a, n_b = count_rows(conn, target), count_rows(conn, baseline)
        collate = conn.dialect.name == "sqlite" and (
            _has_collation(conn, target) or _has_collation(conn, baseline)
        )
        bounds: list[Any] = []
        if (
            isinstance(bind, Engine)
            and workers > 1
            and n_b >= _PARALLEL_MIN_ROWS
            and _leading_indexed(conn, baseline, key[0])
            and _leading_indexed(conn, target, key[0])
        ):
            bounds = _boundaries(conn, baseline, key[0], n_b, workers)
    ranges = list(zip([None, *bounds], [*bounds, None], strict=True))

    a = target.sa_table(info.columns).alias("a")
    b = baseline.sa_table(info.columns).alias("b")
    on = sa.and_(*(b.c[k] == a.c[k] for k in key))

    def distinct(c: str) -> Any:
        other = sa.collate(b.c[c], "BINARY") if collate else b.c[c]
        return a.c[c].is_distinct_from(other)

    differs = sa.or_(b.c[key[0]].is_(None), *(distinct(c) for c in columns if c not in key))

    def changed(lo: Any, hi: Any) -> list[tuple[KeyTuple, bool]]:
        q = (
            sa.select(*(a.c[k] for k in key), b.c[key[0]].is_(None).label("a_only"))
            .select_from(a.outerjoin(b, on))
            .where(differs, *_in_range(a.c[key[0]], lo, hi))
        )
        with connect(bind) as conn:
            return [(tuple(r[: len(key)]), bool(r[-1])) for r in conn.execute(q).fetchall()]

    def gone(lo: Any, hi: Any) -> list[KeyTuple]:
        match = sa.select(sa.literal(1)).select_from(a).where(on)
        q = sa.select(*(b.c[k] for k in key)).where(
            ~match.exists(), *_in_range(b.c[key[0]], lo, hi)
        )
        with connect(bind) as conn:
            return [tuple(r) for r in conn.execute(q).fetchall()]

    changed_rows = _run(changed, ranges)
    keys = [k for k, _ in changed_rows]
    a_only = sum(1 for _, only in changed_rows if only)
    # Every baseline key has a target row when the counts say so; else look for the missing.
    if not unique_target or n_a - a_only != n_b:
        keys.extend(_run(gone, ranges))
    seconds = time.perf_counter() - started
    return Detection(keys, n_a, n_b, seconds, len(ranges))


def _run(fn: Callable[[Any, Any], list[Any]], ranges: list[tuple[Any, Any]]) -> list[Any]:
    if len(ranges) == 1:
        return fn(*ranges[0])
    with ThreadPoolExecutor(len(ranges), thread_name_prefix="reconcile-detect") as pool:
        parts = list(pool.map(lambda r: fn(*r), ranges))
    return [x for part in parts for x in part]


def reconcile_pushdown(
    bind: Bind,
    info: TableInfo,
    target: TableRef,
    baseline_table: TableRef,
    baseline: Mapping[KeyTuple, Row | None],
    expected: Mapping[KeyTuple, Row | None],
    touched: Mapping[KeyTuple, int | None] | Iterable[KeyTuple],
    *,
    key_columns: Sequence[str] | None = None,
    mode: Mode = "expected",
    normalisers: Normalisers | None = None,
    later: LaterWriters = None,
    workers: int = 2,
    worst: int = 20,
    aggregates: AggregateCheck | None = None,
    timings: dict[str, float] | None = None,
) -> Report:
    """``diff.reconcile`` with a full-table baseline held in SQL next to the target.

    ``baseline_table`` is B for the whole table (a copy taken before the run); ``baseline`` is
    B for the touched keys (the journal's before-images), as in ``diff.reconcile``. SQL finds
    the differing keys; only their rows, the scope's rows and the rows of suspicious keys are
    read and classified in Python. With ``aggregates``, the target's count and sums are
    computed in SQL while Python classifies (another connection, so another core), and their
    findings join the report. ``timings`` receives seconds per phase."""
    clock = _Clock(timings)
    key = tuple(key_columns or info.primary_key)
    codec = RowCodec(info, key, normalisers)
    if not isinstance(touched, Mapping):
        touched = [tuple(k) for k in touched]  # read twice below
    with connect(bind) as conn:
        hygiene = key_hygiene(conn, info, target, key)
    clock.lap("hygiene")
    found = detect(
        bind,
        info,
        target,
        baseline_table,
        key,
        codec.columns,
        workers=workers,
        unique_target=not hygiene.duplicate_keys,
    )
    clock.lap("detect")
    with ThreadPoolExecutor(1, thread_name_prefix="reconcile-aggregates") as pool:
        pending = _start_aggregates(pool, bind, info, target, aggregates)
        report = _classify_flagged(
            bind,
            info,
            codec,
            target,
            baseline_table,
            baseline,
            expected,
            touched,
            hygiene,
            found,
            mode=mode,
            later=later,
            worst=worst,
            clock=clock,
        )
        if aggregates is not None and pending is not None:
            now = pending.result()
            found_aggs = check_aggregates(
                info,
                aggregates.baseline,
                now,
                aggregates.deltas,
                group_by=aggregates.group_by,
                normalisers=codec.normalisers,
            )
            checked = {"aggregates": len(now) * (1 + len(aggregates.numeric))}
            report = report.with_findings(found_aggs, checked, worst)
            clock.lap("aggregates")
    return report


def _start_aggregates(
    pool: ThreadPoolExecutor,
    bind: Bind,
    info: TableInfo,
    target: TableRef,
    aggregates: AggregateCheck | None,
) -> Future[dict[Group, Aggregates]] | None:
    """The target's aggregates, computed on another connection while Python classifies."""
    if aggregates is None:
        return None

    def totals() -> dict[Group, Aggregates]:
        with connect(bind) as conn:
            return table_aggregates(
                conn, info, target, aggregates.numeric, group_by=aggregates.group_by
            )

    if isinstance(bind, Engine):
        return pool.submit(totals)
    done: Future[dict[Group, Aggregates]] = Future()  # one connection: no overlap
    done.set_result(totals())
    return done


def _classify_flagged(
    bind: Bind,
    info: TableInfo,
    codec: RowCodec,
    target: TableRef,
    baseline_table: TableRef,
    baseline: Mapping[KeyTuple, Row | None],
    expected: Mapping[KeyTuple, Row | None],
    touched: Mapping[KeyTuple, int | None] | Iterable[KeyTuple],
    hygiene: Hygiene,
    found: Detection,
    *,
    mode: Mode,
    later: LaterWriters,
    worst: int,
    clock: _Clock,
) -> Report:
    """Read the rows of the scope, of the flagged keys and of duplicate keys; classify."""
    key = codec.key_columns
    touched_keys = [tuple(k) for k in touched]
    scope = {codec.key(k) for k in touched_keys}
    need_a: dict[NormKey, KeyTuple] = {}
    need_b: dict[NormKey, KeyTuple] = {}
    for k in [*touched_keys, *found.keys, *hygiene.duplicate_keys]:
        if None in k:
            continue  # NULL keys never match: hygiene reported those rows
        nk = codec.key(k)
        need_a.setdefault(nk, k)
        if nk not in scope:
            need_b.setdefault(nk, k)
    with connect(bind) as conn:
        actual = fetch_rows(conn, info, target, key, list(need_a.values()))
        before = fetch_rows(conn, info, baseline_table, key, list(need_b.values()))
    clock.lap("fetch")
    full: dict[KeyTuple, Row | None] = dict(baseline)
    for row in before:
        full[codec.raw_key(row)] = row
    report = reconcile(
        info,
        full,
        expected,
        [*actual, *hygiene.null_rows],
        touched if isinstance(touched, Mapping) else touched_keys,
        key_columns=key,
        mode=mode,
        normalisers=codec.normalisers,
        later=later,
        full_baseline=True,
        scanned=found.rows_compared,
        worst=worst,
    )
    checked = {
        **report.summary.checked,
        "baseline_rows": found.baseline_rows,
        "flagged_in_sql": len(found.keys),
    }
    report.summary = dataclasses.replace(report.summary, checked=checked)
    clock.lap("classify")
    return report


@dataclass(frozen=True)
class AggregateCheck:
    """The aggregate side of a pushed-down reconciliation: the baseline's aggregates (as
    journaled at snapshot time) and the change set's intended deltas."""

    baseline: Mapping[Group, Aggregates]
    deltas: Mapping[Group, Deltas]
    numeric: Sequence[str]
    group_by: str | None = None


class _Clock:
    def __init__(self, into: dict[str, float] | None) -> None:
        self.into = into
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.into is not None:
            self.into[name] = now - self.last
        self.last = now


__all__ = [
    "AggregateCheck",
    "Detection",
    "Hygiene",
    "TableRef",
    "copy_table",
    "detect",
    "fetch_rows",
    "key_hygiene",
    "reconcile_pushdown",
    "sqlite_engine",
    "table_aggregates",
]
