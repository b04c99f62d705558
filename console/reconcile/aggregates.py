"""Aggregate checks: row count and numeric sums must move by exactly what the change set
intended. A mismatch is a finding even when no row-level finding explains it (a write outside
the scanned keys, a trigger, another job).

Sums are exact decimals (``Aggregates.sums`` holds exact text). Float columns are summed by
the database in floating point, so they are compared with a relative tolerance of 1e-9 plus,
when the column declares ``epsilon``, epsilon per changed row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from console.reconcile.normalise import Normalisers
from console.reconcile.report import Finding
from console.targets.types import Aggregates, Row, TableInfo

FLOAT_REL_TOL = Decimal("1e-9")
Group = tuple[Any, ...]


@dataclass
class Deltas:
    """How the change set intends to move one table's (or one group's) aggregates."""

    count: int = 0
    sums: dict[str, Decimal] = field(default_factory=dict)
    rows: int = 0  # rows that contributed (scales float tolerances)

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "sums": {c: str(v) for c, v in sorted(self.sums.items())}}


def _num(v: Any) -> Decimal:
    """A row value as an exact decimal; NULL counts as nothing, as in SQL's SUM."""
    if v is None:
        return Decimal(0)
    if isinstance(v, bool):
        return Decimal(int(v))
    try:
        return Decimal(repr(v)) if isinstance(v, float) else Decimal(str(v))
    except InvalidOperation:
        return Decimal(0)


def numeric_columns(table: TableInfo, normalisers: Normalisers | None = None) -> list[str]:
    ignored = normalisers.ignored if normalisers else frozenset()
    return [
        c.name
        for c in table.columns.values()
        if c.kind in ("int", "decimal", "float") and c.name not in ignored
    ]


def intended_deltas(
    table: TableInfo,
    changes: Iterable[tuple[Row | None, Row | None]],
    numeric: Sequence[str],
    *,
    group_by: str | None = None,
) -> dict[Group, Deltas]:
    """From (before, after) images of the touched rows: count and sum deltas, for the whole
    table (``{(): Deltas}``) or per group (a row that changes group moves between groups)."""
    out: dict[Group, Deltas] = {}
    # Integers summed as ints, other values counted per distinct value and converted once
    # (prices and weights repeat): no Decimal per value.
    whole: dict[Group, dict[str, int]] = {}
    other: dict[Group, dict[str, Counter[Any]]] = {}

    def add(row: Row, sign: int) -> None:
        g: Group = () if group_by is None else (_group(table, group_by, row.get(group_by)),)
        d = out.get(g)
        if d is None:
            d = out[g] = Deltas(sums=dict.fromkeys(numeric, Decimal(0)))
            whole[g] = dict.fromkeys(numeric, 0)
            other[g] = {c: Counter() for c in numeric}
        ints, rest = whole[g], other[g]
        d.count += sign
        d.rows += 1
        for c in numeric:
            v = row.get(c)
            if type(v) is int:
                ints[c] += sign * v
            elif v is not None:
                rest[c][(type(v), v)] += sign

    for before, after in changes:
        if before is not None:
            add(before, -1)
        if after is not None:
            add(after, 1)
    for g, ints in whole.items():
        sums = out[g].sums
        for c, v in ints.items():
            sums[c] += v
        for c, counts in other[g].items():
            for (_t, v), n in counts.items():
                if n:
                    sums[c] += n * _num(v)
    if group_by is None and () not in out:
        out[()] = Deltas(sums=dict.fromkeys(numeric, Decimal(0)))
    return out


_PLAIN = Normalisers()


def _group(table: TableInfo, column: str, value: Any) -> Any:
    """Group values compare by meaning (SQLite's 1 and a journal's "1" are one group)."""
    return _PLAIN.value(table.columns.get(column), column, value)


def _norm_group(table: TableInfo, group_by: str | None, g: Any) -> Group:
    if group_by is None:
        return ()
    values = g if isinstance(g, tuple) else (g,)
    return tuple(_group(table, group_by, v) for v in values)


def _within(
    table: TableInfo, normalisers: Normalisers, column: str, want: Decimal, got: Decimal, rows: int
) -> bool:
    if want == got:
        return True
    col = table.columns.get(column)
    if col is None or col.kind != "float":
        rule = normalisers.rules.get(column)
        if rule is not None and rule.epsilon is not None:
            return abs(want - got) <= rule.epsilon * max(rows, 1)
        return False
    tol = FLOAT_REL_TOL * max(abs(want), abs(got), Decimal(1))
    rule = normalisers.rules.get(column)
    if rule is not None and rule.epsilon is not None:
        tol += rule.epsilon * max(rows, 1)
    return abs(want - got) <= tol


def check_aggregates(
    table: TableInfo,
    baseline: Mapping[Group, Aggregates],
    actual: Mapping[Group, Aggregates],
    deltas: Mapping[Group, Deltas],
    *,
    group_by: str | None = None,
    normalisers: Normalisers | None = None,
) -> list[Finding]:
    """``aggregate_mismatch`` findings where actual != baseline + deltas (per group, when
    ``group_by``; key ``()`` for the whole table). Pass empty deltas to check that a rollback
    brought the aggregates back to the baseline."""
    norms = normalisers or Normalisers()
    base = {_norm_group(table, group_by, g): a for g, a in baseline.items()}
    now = {_norm_group(table, group_by, g): a for g, a in actual.items()}
    intended = {_norm_group(table, group_by, g): d for g, d in deltas.items()}
    findings: list[Finding] = []
    for g in sorted(set(base) | set(now) | set(intended), key=repr):
        b = base.get(g, Aggregates(0))
        a = now.get(g, Aggregates(0))
        d = intended.get(g, Deltas())
        want_count = b.count + d.count
        bad: list[str] = []
        if a.count != want_count:
            bad.append("count")
        want_sums: dict[str, str] = {}
        for c in sorted(set(b.sums) | set(a.sums) | set(d.sums)):
            want = _num(b.sums.get(c)) + d.sums.get(c, Decimal(0))
            got = _num(a.sums.get(c))
            want_sums[c] = str(want)
            if not _within(table, norms, c, want, got, d.rows):
                bad.append(c)
        if bad:
            findings.append(
                Finding(
                    key=g,
                    cls="aggregate_mismatch",
                    columns=bad,
                    before=b.as_dict(),
                    expected={"count": want_count, "sums": want_sums},
                    actual=a.as_dict(),
                    detail={"intended": d.as_dict()},
                )
            )
    return findings


__all__ = ["Deltas", "check_aggregates", "intended_deltas", "numeric_columns"]
