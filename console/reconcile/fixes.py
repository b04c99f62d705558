"""Guarded fix plans: the smallest corrective operation per finding to reach a reference state
(E after an apply, B after a rollback; B always for rows outside the change set).

Every operation carries a precondition: the exact current values it expects (the whole row
for a delete, None for an insert, meaning "must still be absent"). The engine re-checks it at
the moment it writes; a fix whose precondition no longer holds goes to review, never "source
wins". This module only plans; executing goes through the journal like any run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from console.canonical import digest, jsonable
from console.errors import BadInput
from console.reconcile.fingerprint import key_text
from console.reconcile.report import CLASSES, Finding, Mode
from console.targets.types import Row, TableInfo

FixKind = Literal["update", "insert", "delete"]

FIXABLE = frozenset(
    {"not_applied", "wrong_value", "collateral", "missing_row", "unexpected_row", "not_restored"}
)
# Never fixed automatically: a person decides.
REVIEW_REASONS = {
    "later_overwrite": "another writer changed the row after the run; fixing it would undo "
    "their change",
    "duplicate_key": "several rows share the key; which one is right is a decision",
    "null_key": "a row with a NULL key cannot be addressed safely",
    "aggregate_mismatch": "no row explains the difference; find the writer first",
}
# A collateral finding without a key: a bucket of a large table's digests moved.
BUCKET_REASON = (
    "rows outside the change set changed in this bucket; their old values were summarised, "
    "not kept: check the candidate rows"
)


@dataclass(frozen=True)
class FixOp:
    """``set`` (update) or ``row`` (insert); ``precondition``: the current values the fix
    expects, None for an insert (the row must be absent)."""

    key: dict[str, Any]
    kind: FixKind
    set: dict[str, Any] | None
    row: dict[str, Any] | None
    precondition: dict[str, Any] | None
    classes: tuple[str, ...]
    op_no: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(
            {
                "key": self.key,
                "kind": self.kind,
                "set": self.set,
                "row": self.row,
                "precondition": self.precondition,
                "classes": list(self.classes),
                "op_no": self.op_no,
            }
        )
        return out


@dataclass(frozen=True)
class FixPlan:
    table: str
    reference: Mode
    key_columns: tuple[str, ...]
    ops: tuple[FixOp, ...]
    review: tuple[dict[str, Any], ...]  # findings left to a person, with the reason
    digest: str  # sha256 of the canonical form: what an approver signs

    def canonical(self) -> dict[str, Any]:
        return _canonical(self.table, self.reference, self.key_columns, self.ops, self.review)

    def as_dict(self) -> dict[str, Any]:
        return {**self.canonical(), "digest": self.digest}


def _canonical(
    table: str,
    reference: Mode,
    key_columns: Sequence[str],
    ops: Iterable[FixOp],
    review: Iterable[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "table": table,
        "reference": reference,
        "key": list(key_columns),
        "ops": [op.as_dict() for op in ops],
        "review": jsonable(list(review)),
    }


def plan_fixes(
    findings: Iterable[Finding],
    table: TableInfo,
    *,
    key_columns: Sequence[str] | None = None,
    reference: Mode = "expected",
    classes: Collection[str] | None = None,
) -> FixPlan:
    """One operation per key for the findings of ``classes`` (default: every fixable class),
    in key order. ``reference`` is the report's mode (E after an apply, B after a rollback).
    ``later_overwrite`` is fixed only when asked for by name."""
    key = tuple(key_columns or table.primary_key)
    wanted = set(classes) if classes is not None else set(FIXABLE)
    unknown = wanted - CLASSES
    if unknown:
        raise BadInput(f"Unknown finding class {sorted(unknown)[0]}; use one of the classes.")
    by_key: dict[str, list[Finding]] = {}
    review: list[dict[str, Any]] = []
    for f in findings:
        if not f.key and f.cls == "collateral":
            if f.cls in wanted:
                review.append({"key": [], "class": f.cls, "reason": BUCKET_REASON, **f.detail})
        elif f.cls in wanted and (f.cls in FIXABLE or f.cls == "later_overwrite"):
            by_key.setdefault(key_text(f.key), []).append(f)
        elif f.cls in REVIEW_REASONS and (classes is None or f.cls in wanted):
            review.append({"key": list(f.key), "class": f.cls, "reason": REVIEW_REASONS[f.cls]})
    ops = [op for kt in sorted(by_key) if (op := _fix(by_key[kt], key, reference)) is not None]
    review.sort(key=lambda r: (key_text(r["key"]), r["class"]))
    body = _canonical(table.name, reference, key, ops, review)
    return FixPlan(table.name, reference, key, tuple(ops), tuple(review), digest(body))


def _fix(found: list[Finding], key: Sequence[str], reference: Mode) -> FixOp | None:
    first = found[0]
    in_b = reference == "baseline" or not first.in_scope
    target: Row | None = first.before if in_b else first.expected
    actual = first.actual
    classes = tuple(sorted({f.cls for f in found}))
    key_values = dict(zip(key, first.key, strict=True))
    if actual is None and target is None:
        return None
    if actual is None:
        assert target is not None
        return FixOp(key_values, "insert", None, dict(target), None, classes, first.op_no)
    if target is None:
        return FixOp(key_values, "delete", None, None, dict(actual), classes, first.op_no)
    columns = sorted({c for f in found for c in f.columns if c not in key})
    if not columns:
        return None
    return FixOp(
        key_values,
        "update",
        {c: target.get(c) for c in columns},
        None,
        {c: actual.get(c) for c in columns},
        classes,
        first.op_no,
    )
