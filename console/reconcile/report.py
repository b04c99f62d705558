"""Findings and the summary of a reconciliation (plain data, JSON-able)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from console.canonical import jsonable
from console.targets.types import KeyTuple, Row

Mode = Literal["expected", "baseline"]

# Worst first: the order of the summary's "worst rows" and of a report's findings.
SEVERITY: tuple[str, ...] = (
    "null_key",
    "duplicate_key",
    "wrong_value",
    "collateral",
    "missing_row",
    "unexpected_row",
    "not_restored",
    "not_applied",
    "aggregate_mismatch",
    "later_overwrite",
    "tolerated",
    "restored",
    "applied",
)
CLASSES = frozenset(SEVERITY)
# Classes that mean "as intended"; everything else is surfaced for review.
OK_CLASSES = frozenset({"applied", "restored", "tolerated"})
_RANK = {c: i for i, c in enumerate(SEVERITY)}


@dataclass(frozen=True)
class Finding:
    """One key (or aggregate) in one class.

    ``key``: the key values in key-column order (the group for grouped aggregates, ``()`` for
    a table aggregate). ``columns``: the columns in this class. ``before``/``expected``/
    ``actual``: the baseline, intended and current images (None = absent). ``duplicates``: every
    row found under a duplicate key.
    """

    key: KeyTuple
    cls: str
    columns: list[str]
    before: Row | None
    expected: Row | None
    actual: Row | None
    op_no: int | None = None
    duplicates: tuple[Row, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)
    in_scope: bool = True  # False: a key outside the change set (collateral checks)
    _order: tuple[int, int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # computed once: reports sort their findings more than once
        order = (_RANK.get(self.cls, 0), -len(self.columns), repr(self.key))
        object.__setattr__(self, "_order", order)

    @property
    def needs_review(self) -> bool:
        return self.cls not in OK_CLASSES

    def sort_key(self) -> tuple[int, int, str]:
        return self._order

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": list(self.key),
            "class": self.cls,
            "columns": list(self.columns),
            "before": self.before,
            "expected": self.expected,
            "actual": self.actual,
            "op_no": self.op_no,
            "in_scope": self.in_scope,
        }
        if self.duplicates:
            out["duplicates"] = list(self.duplicates)
        if self.detail:
            out["detail"] = dict(self.detail)
        return jsonable(out)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Summary:
    table: str
    mode: Mode
    counts: dict[str, int]  # findings per class
    checked: dict[str, int]  # keys, rows scanned, columns, aggregates...
    worst: list[Finding]  # needing review, worst first (capped)
    digests: dict[str, str]  # compared states: baseline, expected, actual, normalisers
    needs_review: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "mode": self.mode,
            "counts": dict(sorted(self.counts.items(), key=lambda kv: _RANK.get(kv[0], 0))),
            "checked": dict(self.checked),
            "needs_review": self.needs_review,
            "worst": [f.as_dict() for f in self.worst],
            "digests": dict(self.digests),
        }


def summarise(
    table: str,
    mode: Mode,
    findings: Iterable[Finding],
    checked: Mapping[str, int],
    digests: Mapping[str, str],
    worst: int = 20,
) -> Summary:
    found = list(findings)
    counts = Counter(f.cls for f in found)
    review = sorted((f for f in found if f.needs_review), key=Finding.sort_key)
    return Summary(
        table=table,
        mode=mode,
        counts=dict(counts),
        checked=dict(checked),
        worst=review[:worst],
        digests=dict(digests),
        needs_review=bool(review),
    )


@dataclass
class Report:
    """Findings (worst first) and their summary for one table."""

    findings: list[Finding]
    summary: Summary

    def of_class(self, cls: str) -> list[Finding]:
        return [f for f in self.findings if f.cls == cls]

    def keys_of(self, cls: str | None = None) -> set[KeyTuple]:
        return {f.key for f in self.findings if cls is None or f.cls == cls}

    def with_findings(
        self, extra: Iterable[Finding], checked: Mapping[str, int], worst: int = 20
    ) -> Report:
        """This report plus more findings (aggregate checks), summary recomputed."""
        findings = sorted([*self.findings, *extra], key=Finding.sort_key)
        s = self.summary
        merged = {**s.checked, **checked}
        return Report(findings, summarise(s.table, s.mode, findings, merged, s.digests, worst))

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary.as_dict(),
            "findings": [f.as_dict() for f in self.findings],
        }
