"""The thin layer between a target (``console.targets.sql.SqlTarget`` or anything with the
same reading methods) and the reconciliation core, which only sees plain rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from console.errors import BadInput
from console.reconcile.aggregates import check_aggregates, intended_deltas, numeric_columns
from console.reconcile.diff import LaterWriters, reconcile
from console.reconcile.fingerprint import RowCodec
from console.reconcile.normalise import Normalisers
from console.reconcile.report import Finding, Mode, Report
from console.targets.types import Aggregates, KeyTuple, Row, TableInfo


class RowSource(Protocol):
    """What reconciliation reads from a target (SqlTarget's reading side)."""

    def table(self, name: str) -> TableInfo: ...

    def read_rows(
        self, table: str, key_columns: Sequence[str], keys: Sequence[Mapping[str, Any]]
    ) -> dict[KeyTuple, Row]: ...

    def scan(
        self, table: str, key_columns: Sequence[str], *, batch: int = ...
    ) -> Iterator[Row]: ...

    def aggregates(self, table: str, numeric: Sequence[str] | None = None) -> Aggregates: ...


def read_scope(
    source: RowSource, table: str, key_columns: Sequence[str], keys: Iterable[KeyTuple]
) -> list[Row]:
    """The target's rows for these keys. ``read_rows`` refuses a key that matches several
    rows; then the table is scanned instead, so each duplicate becomes a finding."""
    wanted = [dict(zip(key_columns, k, strict=True)) for k in keys]
    rows: list[Row] = []
    try:
        for i in range(0, len(wanted), 5000):
            rows.extend(source.read_rows(table, key_columns, wanted[i : i + 5000]).values())
        return rows
    except BadInput:
        info = source.table(table)  # re-raises a missing table
        codec = RowCodec(info, key_columns)
        scope = {codec.key(tuple(k.values())) for k in wanted}
        return [r for r in source.scan(table, key_columns) if codec.key(codec.raw_key(r)) in scope]


def reconcile_source(
    source: RowSource,
    table: str,
    baseline: Mapping[KeyTuple, Row | None],
    expected: Mapping[KeyTuple, Row | None],
    touched: Mapping[KeyTuple, int | None] | Iterable[KeyTuple],
    *,
    key_columns: Sequence[str] | None = None,
    mode: Mode = "expected",
    normalisers: Normalisers | None = None,
    later: LaterWriters = None,
    scan: bool = False,
    full_baseline: bool = False,
) -> Report:
    """``diff.reconcile`` over a target: the scope's rows by key, or a full scan (``scan``:
    key hygiene over the whole table, and with ``full_baseline`` collateral row checks)."""
    info = source.table(table)
    key = tuple(key_columns or info.primary_key)
    touched_keys = [tuple(k) for k in touched]
    actual: Iterable[Row] = (
        source.scan(table, key) if scan else read_scope(source, table, key, touched_keys)
    )
    return reconcile(
        info,
        baseline,
        expected,
        actual,
        touched if isinstance(touched, Mapping) else touched_keys,
        key_columns=key,
        mode=mode,
        normalisers=normalisers,
        later=later,
        full_baseline=full_baseline and scan,
    )


def check_source_aggregates(
    source: RowSource,
    table: str,
    baseline: Aggregates,
    changes: Iterable[tuple[Row | None, Row | None]],
    *,
    mode: Mode = "expected",
    normalisers: Normalisers | None = None,
) -> list[Finding]:
    """Aggregate findings for one table: the target's count and sums against the baseline's
    moved by the change set (``expected``) or not moved at all (``baseline``)."""
    info = source.table(table)
    numeric = [c for c in numeric_columns(info, normalisers) if c in baseline.sums]
    actual = source.aggregates(table, numeric)
    deltas = intended_deltas(info, changes if mode == "expected" else (), numeric)
    return check_aggregates(info, {(): baseline}, {(): actual}, deltas, normalisers=normalisers)


def check_group_aggregates(
    info: TableInfo,
    group_by: str,
    baseline: Mapping[Any, Aggregates],
    actual: Mapping[Any, Aggregates],
    changes: Iterable[tuple[Row | None, Row | None]],
    *,
    normalisers: Normalisers | None = None,
) -> list[Finding]:
    """Per-group ``aggregate_mismatch`` findings: each group's count and sums against its
    baseline moved by the change set (a row changing group moves between groups)."""
    numeric = [c for c in numeric_columns(info, normalisers) if c != group_by]

    def only(aggs: Mapping[Any, Aggregates]) -> dict[Any, Aggregates]:
        return {
            g: Aggregates(a.count, {c: v for c, v in a.sums.items() if c in numeric})
            for g, a in aggs.items()
        }

    deltas = intended_deltas(info, changes, numeric, group_by=group_by)
    found = check_aggregates(
        info, only(baseline), only(actual), deltas, group_by=group_by, normalisers=normalisers
    )
    return [dataclasses.replace(f, detail={**f.detail, "group_by": group_by}) for f in found]
