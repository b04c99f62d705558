"""Stage 2: explain one flagged row with DeepDiff, lazily, when someone asks about it.

DeepDiff never sees a whole table: only the before, expected and actual images of one key,
pre-normalised with the same ``Normalisers`` as the fingerprint stage, and every field's
class comes from the same rule as the summary (``diff.column_class``). So a difference that
the summary calls ``tolerated`` is ``tolerated`` here too. Results are plain JSON (DeepDiff's
``to_json``), never pickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deepdiff import DeepDiff

from console.canonical import jsonable
from console.reconcile.diff import column_class
from console.reconcile.fingerprint import key_text
from console.reconcile.normalise import Normalisers
from console.reconcile.report import Finding, Mode
from console.targets.types import Row, TableInfo

_DELETED = object()  # E of a row the run deleted: differs from B in every column
_WHOLE_ROW = frozenset({"missing_row", "unexpected_row", "null_key", "duplicate_key"})


@dataclass(frozen=True)
class FieldDiff:
    column: str
    cls: str | None  # the column's class; None: differs from one state only as intended
    before: Any
    expected: Any
    actual: Any
    paths: list[str]  # DeepDiff paths inside the column (nested JSON values)
    tolerance: str | None = None  # the declared tolerance that made it ``tolerated``
    normaliser: str | None = None  # the declared normaliser applied before comparing

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(
            {
                "column": self.column,
                "class": self.cls,
                "before": self.before,
                "expected": self.expected,
                "actual": self.actual,
                "paths": self.paths,
                "tolerance": self.tolerance,
                "normaliser": self.normaliser,
            }
        )
        return out


@dataclass(frozen=True)
class Explanation:
    key: tuple[Any, ...]
    cls: str
    mode: Mode
    present: dict[str, bool]  # before / expected / actual
    fields: list[FieldDiff]
    ignored: list[str]
    deepdiff: dict[str, Any]  # DeepDiff (JSON) reference -> actual, and before -> actual

    def field(self, column: str) -> FieldDiff | None:
        return next((f for f in self.fields if f.column == column), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": jsonable(list(self.key)),
            "class": self.cls,
            "mode": self.mode,
            "present": dict(self.present),
            "fields": [f.as_dict() for f in self.fields],
            "ignored": list(self.ignored),
            "deepdiff": self.deepdiff,
        }


def _for_diff(table: TableInfo, norms: Normalisers, column: str, v: Any) -> Any:
    """The normalised value; JSON columns parsed back so DeepDiff shows the inner path."""
    col = table.columns.get(column)
    n = norms.value(col, column, v)
    if col is not None and col.kind == "json" and isinstance(n, str) and n[:1] in "[{":
        try:
            return json.loads(n)
        except ValueError:
            return n
    return n


def _deepdiff(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[dict[str, list[str]], Any]:
    """Per column, the DeepDiff paths that differ; and the diff as JSON. An absent row
    (empty mapping) differs in every column."""
    if not a or not b:
        present = a or b
        whole = {c: [f"root[{c!r}]"] for c in present}
        return whole, ({} if not present else {"row": "removed" if a else "added"})
    dd = DeepDiff(dict(a), dict(b), verbose_level=2)
    paths: dict[str, list[str]] = {}
    for levels in dd.tree.values():
        for level in levels:
            path = level.path(output_format="list")
            if path:
                paths.setdefault(str(path[0]), []).append(level.path())
    return paths, json.loads(dd.to_json())


def explain(
    finding: Finding,
    table: TableInfo,
    *,
    normalisers: Normalisers | None = None,
    mode: Mode = "expected",
) -> Explanation:
    """The field-level story of one finding: which columns differ, their three values, the
    class of each and any tolerance applied."""
    norms = normalisers or Normalisers()
    columns = norms.compared(table)
    present = {
        "before": finding.before is not None,
        "expected": finding.expected is not None,
        "actual": finding.actual is not None,
    }
    if finding.cls == "aggregate_mismatch":
        return _aggregate(finding, mode, present)

    def normed(row: Row | None) -> dict[str, Any]:
        if row is None:
            return {}
        return {c: _for_diff(table, norms, c, row.get(c)) for c in columns}

    b, e, a = normed(finding.before), normed(finding.expected), normed(finding.actual)
    reference = b if (mode == "baseline" or not finding.in_scope) else e
    ref_paths, ref_dd = _deepdiff(reference, a)
    before_paths, before_dd = _deepdiff(b, a)
    changed_by_run = {c for c in columns if b.get(c) != e.get(c)} if finding.in_scope else set()
    flagged = set(ref_paths) | set(before_paths) | changed_by_run

    later = finding.cls == "later_overwrite"
    if finding.in_scope and mode == "expected":
        per_column = finding.actual is not None and finding.expected is not None
    else:
        per_column = finding.actual is not None and finding.before is not None
    whole = finding.cls in _WHOLE_ROW or not per_column
    fields: list[FieldDiff] = []
    for c in columns:
        if c not in flagged:
            continue
        cls: str | None = finding.cls
        if not whole:
            cls = column_class(
                mode,
                finding.in_scope,
                c,
                b.get(c),
                e.get(c) if finding.expected is not None else _DELETED,
                a.get(c),
                b_present=finding.before is not None,
                normalisers=norms,
                later=later,
            )
        fields.append(
            FieldDiff(
                column=c,
                cls=cls,
                before=None if finding.before is None else finding.before.get(c),
                expected=None if finding.expected is None else finding.expected.get(c),
                actual=None if finding.actual is None else finding.actual.get(c),
                paths=ref_paths.get(c, before_paths.get(c, [])),
                tolerance=norms.tolerance(c) if cls == "tolerated" else None,
                normaliser=norms.describe(c),
            )
        )
    return Explanation(
        key=tuple(finding.key),
        cls=finding.cls,
        mode=mode,
        present=present,
        fields=fields,
        ignored=sorted(norms.ignored),
        deepdiff={"reference_to_actual": ref_dd, "before_to_actual": before_dd},
    )


def _aggregate(finding: Finding, mode: Mode, present: dict[str, bool]) -> Explanation:
    def flat(d: Row | None) -> dict[str, Any]:
        if d is None:
            return {}
        return {"count": d.get("count"), **dict(d.get("sums") or {})}

    b, e, a = flat(finding.before), flat(finding.expected), flat(finding.actual)
    paths, dd = _deepdiff(e, a)
    fields = [
        FieldDiff(c, "aggregate_mismatch", b.get(c), e.get(c), a.get(c), paths.get(c, []))
        for c in finding.columns
    ]
    return Explanation(
        tuple(finding.key), finding.cls, mode, present, fields, [], {"reference_to_actual": dd}
    )


class Explainer:
    """Explanations on demand, computed once per finding (the console asks row by row)."""

    def __init__(
        self, table: TableInfo, normalisers: Normalisers | None = None, mode: Mode = "expected"
    ) -> None:
        self.table = table
        self.normalisers = normalisers or Normalisers()
        self.mode: Mode = mode
        self._cache: dict[tuple[str, str, tuple[str, ...]], Explanation] = {}

    def __call__(self, finding: Finding) -> Explanation:
        ident = (key_text(finding.key), finding.cls, tuple(finding.columns))
        hit = self._cache.get(ident)
        if hit is None:
            hit = self._cache[ident] = explain(
                finding, self.table, normalisers=self.normalisers, mode=self.mode
            )
        return hit
