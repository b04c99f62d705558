"""The three-way classifier: baseline B, expected E = B + change set, actual A.

Rows are always paired by normalised key, never by position. Order of work:
1. key hygiene on A in the same pass as the scan: NULL keys and duplicate keys are findings of
   their own (O(n), never collapsed);
2. detection: a row outside the change set is compared with its baseline by raw values first
   (equal raw values have equal fingerprints by construction) and by fingerprint otherwise;
   rows in the change set's scope are compared by fingerprint;
3. classification per column, only for keys whose fingerprints differ.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.reconcile.fingerprint import (
    NormKey,
    RowCodec,
    Values,
    fingerprint_values,
    key_text,
    state_digest,
)
from console.reconcile.normalise import Normalisers
from console.reconcile.report import SEVERITY, Finding, Mode, Report, summarise
from console.targets.types import KeyTuple, Row, TableInfo

LaterWriters = Callable[[KeyTuple], bool] | Collection[KeyTuple] | None

_SAME = object()  # an A row equal to its baseline in every compared column (not retained)
_OUT = object()  # an A row outside the scope, not compared (no full baseline)


def column_class(
    mode: Mode,
    in_scope: bool,
    column: str,
    b: Any,
    e: Any,
    a: Any,
    *,
    b_present: bool,
    normalisers: Normalisers,
    later: bool,
) -> str | None:
    """The class of one column of one row from normalised values; None: nothing to report.

    The single rule shared by the classifier and the explanation (``explain.py``).
    """
    tol = normalisers.tolerated
    if not in_scope:
        if a == b:
            return None
        if tol(column, b, a):
            return "tolerated"
        return "later_overwrite" if later else "collateral"
    if mode == "baseline":
        if a == b:
            return "restored" if e != b else None
        if tol(column, b, a):
            return "tolerated"
        return "later_overwrite" if later else "not_restored"
    if a == e:
        return "applied" if not b_present or b != e else None
    if tol(column, e, a):
        return "tolerated"
    if later:
        return "later_overwrite"
    if b_present and (a == b or tol(column, b, a)):
        return "not_applied"
    return "wrong_value"


@dataclass(frozen=True)
class Classified:
    findings: list[Finding]
    fingerprints: tuple[bytes | None, bytes | None, bytes | None]  # B, E, A


@dataclass(frozen=True)
class _Entry:
    key: KeyTuple
    before: Row | None
    expected: Row | None
    op_no: int | None


class Classifier:
    """Classifies one key at a time; shared by the Python and the SQL-pushdown paths."""

    def __init__(self, codec: RowCodec, mode: Mode, later: LaterWriters = None) -> None:
        self.codec = codec
        self.mode: Mode = mode
        self.normalisers = codec.normalisers
        self.columns = list(codec.columns)
        if later is None:
            self._later: Callable[[KeyTuple], bool] = lambda _k: False
        elif callable(later):
            self._later = later
        else:
            known = {codec.key(k) for k in later}
            self._later = lambda k: codec.key(k) in known

    def later(self, key: KeyTuple) -> bool:
        return self._later(key)

    def _like(
        self, raw: tuple[Any, ...] | None, ref: tuple[Any, ...] | None, ref_v: Values | None
    ) -> Values | None:
        if raw is None:
            return None
        if ref is None or ref_v is None:
            return self.codec.values(raw)
        return self.codec.values_like(raw, ref, ref_v)

    def _close(self, a: Values, b: Values) -> bool:
        """Equal in every column, or within tolerance."""
        tol = self.normalisers.tolerated
        return all(x == y or tol(c, y, x) for c, x, y in zip(self.columns, a, b, strict=True))

    def _per_column(
        self,
        e: _Entry,
        bv: Values | None,
        ev: Values | None,
        av: Values,
        actual: Row,
        in_scope: bool,
        later: bool,
    ) -> list[Finding]:
        groups: dict[str, list[str]] = {}
        bvals: Sequence[Any] = bv if bv is not None else [None] * len(av)
        evals: Sequence[Any] = ev if ev is not None else bvals
        for i, column in enumerate(self.columns):
            if av[i] == bvals[i] and evals[i] == bvals[i]:
                continue  # equal in all three states: nothing to say in any mode
            cls = column_class(
                self.mode,
                in_scope,
                column,
                bvals[i],
                evals[i],
                av[i],
                b_present=bv is not None,
                normalisers=self.normalisers,
                later=later,
            )
            if cls is not None:
                groups.setdefault(cls, []).append(column)
        return [
            Finding(e.key, c, groups[c], e.before, e.expected, actual, e.op_no, in_scope=in_scope)
            for c in SEVERITY
            if c in groups
        ]

    def _whole(
        self, cls: str, e: _Entry, actual: Row | None, in_scope: bool = True
    ) -> list[Finding]:
        return [
            Finding(
                e.key,
                cls,
                list(self.columns),
                e.before,
                e.expected,
                actual,
                e.op_no,
                in_scope=in_scope,
            )
        ]

    def classify(self, e: _Entry, actual: Row | None, in_scope: bool) -> Classified:
        """Findings for one key. ``e.expected`` is E (the intended row) for keys in scope.

        Fingerprints decide first; columns are looked at only when they differ."""
        codec = self.codec
        # Raw tuples first; a state reuses the normalised values of the state it is most
        # likely equal to (E of B, A of E), so only the columns that differ are normalised.
        rb = None if e.before is None else codec.raw(e.before)
        rx = (
            rb
            if e.expected is e.before
            else (None if e.expected is None else codec.raw(e.expected))
        )
        ra = None if actual is None else codec.raw(actual)
        bv = None if rb is None else codec.values(rb)
        ev = bv if rx is rb else self._like(rx, rb, bv)
        av = self._like(ra, rx, ev) if rx is not None else self._like(ra, rb, bv)
        fb = None if bv is None else fingerprint_values(bv)
        fe = fb if ev is bv else None if ev is None else fingerprint_values(ev)
        fa = None if av is None else fingerprint_values(av)
        fps = (fb, fe, fa)
        if not in_scope:
            if fa == fb:
                return Classified([], fps)
            later = self.later(e.key)
            if av is None or bv is None:
                cls = "later_overwrite" if later else "collateral"
                return Classified(self._whole(cls, e, actual, in_scope=False), fps)
            assert actual is not None
            return Classified(self._per_column(e, bv, bv, av, actual, False, later), fps)
        if self.mode == "baseline":
            if fa == fb:
                return Classified(self._changed("restored", e, bv, ev, actual), fps)
            return Classified(self._baseline(e, bv, ev, av, actual), fps)
        if fa == fe:
            return Classified(self._changed("applied", e, bv, ev, actual), fps)
        return Classified(self._expected(e, bv, ev, av, actual), fps)

    def _changed(
        self, cls: str, e: _Entry, bv: Values | None, ev: Values | None, actual: Row | None
    ) -> list[Finding]:
        """A row that is exactly where it should be: report the columns the run changed."""
        if bv is None and ev is None:
            return []
        if bv is None or ev is None:
            return self._whole(cls, e, actual)
        columns = [c for c, b, x in zip(self.columns, bv, ev, strict=True) if b != x]
        if not columns:
            return []
        return [Finding(e.key, cls, columns, e.before, e.expected, actual, e.op_no)]

    def _expected(
        self, e: _Entry, bv: Values | None, ev: Values | None, av: Values | None, actual: Row | None
    ) -> list[Finding]:
        if ev is None:  # the change set deletes the row
            if av is None:
                return self._whole("applied", e, None) if bv is not None else []
            if bv is not None and self._close(av, bv):
                return self._whole("not_applied", e, actual)
            cls = "later_overwrite" if self.later(e.key) else "unexpected_row"
            return self._whole(cls, e, actual)
        if av is None:
            if self.later(e.key):
                return self._whole("later_overwrite", e, None)
            return self._whole("not_applied" if bv is None else "missing_row", e, None)
        assert actual is not None
        return self._per_column(e, bv, ev, av, actual, True, self.later(e.key))

    def _baseline(
        self, e: _Entry, bv: Values | None, ev: Values | None, av: Values | None, actual: Row | None
    ) -> list[Finding]:
        if bv is None:  # the row did not exist before the run
            if av is None:
                return self._whole("restored", e, None) if ev is not None else []
            if self.later(e.key):
                return self._whole("later_overwrite", e, actual)
            return self._whole("not_restored" if av == ev else "unexpected_row", e, actual)
        if av is None:
            if self.later(e.key):
                return self._whole("later_overwrite", e, None)
            return self._whole("not_restored" if ev is None else "missing_row", e, None)
        if ev is None:  # the run deleted it and it is back: restored, column by column
            ev = tuple(object() for _ in bv)  # differs from B everywhere
        assert actual is not None
        return self._per_column(e, bv, ev, av, actual, True, self.later(e.key))


def _touched_items(
    touched: Mapping[KeyTuple, int | None] | Iterable[KeyTuple],
) -> Iterable[tuple[KeyTuple, int | None]]:
    if isinstance(touched, Mapping):
        return touched.items()
    return ((k, None) for k in touched)


def reconcile(
    table: TableInfo,
    baseline: Mapping[KeyTuple, Row | None],
    expected: Mapping[KeyTuple, Row | None],
    actual: Iterable[Row],
    touched: Mapping[KeyTuple, int | None] | Iterable[KeyTuple],
    *,
    key_columns: Sequence[str] | None = None,
    mode: Mode = "expected",
    normalisers: Normalisers | None = None,
    later: LaterWriters = None,
    full_baseline: bool = False,
    scanned: int | None = None,
    worst: int = 20,
) -> Report:
    """Classify every key of the change set's scope, and with ``full_baseline`` every row of
    the table, from plain rows.

    ``baseline``: B by key (None = absent) for the keys in scope; with ``full_baseline`` also
    every other row of the table (a key missing from it means "absent before"). ``expected``:
    E for the touched keys (a touched key missing from it means E = B). ``actual``: rows read
    from the target, the scope's keys or a full scan. ``touched``: the keys the change set
    touched, with the journal's op_no when a mapping. ``later``: keys written by someone
    after our write (a set, or a predicate on the key). ``mode``: ``expected`` after an apply,
    ``baseline`` after a rollback (compares A with B for the run's keys).
    """
    codec = RowCodec(table, key_columns or table.primary_key, normalisers)
    clf = Classifier(codec, mode, later)

    key, raw = codec.key, codec.raw
    exp: dict[NormKey, Row | None] = {key(k): row for k, row in expected.items()}
    ops = {key(k): (tuple(k), op_no) for k, op_no in _touched_items(touched)}
    # One pass over B: the scope's before-images, and with a full-table baseline every other
    # row, kept with its raw values for the scan's cheap equality test.
    before: dict[NormKey, Row | None] = {}
    outside: dict[NormKey, tuple[KeyTuple, Row, tuple[Any, ...]]] = {}
    for k, row in baseline.items():
        nk = key(k)
        if nk in ops:
            before[nk] = row
        elif full_baseline and row is not None:
            outside[nk] = (k if type(k) is tuple else tuple(k), row, raw(row))
    scope: dict[NormKey, _Entry] = {}
    for nk, (k, op_no) in ops.items():
        b = before.get(nk)
        scope[nk] = _Entry(k, b, exp.get(nk, b), op_no)

    scan = _scan(codec, actual, scope, outside, full_baseline)
    findings = _hygiene(codec, scan, scope, outside)
    compared: dict[NormKey, tuple[_Entry, Classified]] = {}

    def check(nk: NormKey, entry: _Entry, row: Row | None, in_scope: bool) -> None:
        result = clf.classify(entry, row, in_scope)
        findings.extend(result.findings)
        if in_scope or result.findings:
            compared[nk] = (entry, result)

    for nk, entry in scope.items():
        if nk not in scan.dups:
            found = scan.seen.get(nk)
            check(nk, entry, found if isinstance(found, dict) else None, True)
    for nk in scan.flagged:
        if nk not in scan.dups:
            a_row = scan.seen[nk]
            base = outside.get(nk)
            if base is None:
                check(nk, _Entry(codec.raw_key(a_row), None, None, None), a_row, False)
            else:
                check(nk, _Entry(base[0], base[1], base[1], None), a_row, False)
    if scan.outside_seen < len(outside):
        for nk, (k, b_row, _raw) in outside.items():
            if nk not in scan.seen:
                check(nk, _Entry(k, b_row, b_row, None), None, False)

    findings.sort(key=Finding.sort_key)
    checked = {
        "keys_in_scope": len(scope),
        "rows_scanned": scan.rows if scanned is None else scanned,
        "baseline_rows": len(outside) + sum(1 for e in scope.values() if e.before is not None),
        "columns": len(codec.columns),
    }
    digests = _digests(compared)
    digests["normalisers"] = codec.normalisers.digest
    return Report(findings, summarise(table.name, mode, findings, checked, digests, worst))


@dataclass
class _Scan:
    seen: dict[NormKey, Any] = field(default_factory=dict)  # key -> row, _SAME or _OUT
    dups: dict[NormKey, list[Any]] = field(default_factory=dict)
    nulls: list[Row] = field(default_factory=list)
    flagged: list[NormKey] = field(default_factory=list)  # outside the scope, may differ
    rows: int = 0
    outside_seen: int = 0


def _scan(
    codec: RowCodec,
    actual: Iterable[Row],
    scope: Mapping[NormKey, _Entry],
    outside: Mapping[NormKey, tuple[KeyTuple, Row, tuple[Any, ...]]],
    full_baseline: bool,
) -> _Scan:
    """One pass over A: key hygiene, and detection for rows outside the scope. Only rows that
    may need classifying are retained."""
    s = _Scan()
    seen, row_key, get_raw, raw = s.seen, codec.row_key, codec.getter, codec.raw  # hot loop
    get_seen, get_outside, flagged = seen.get, outside.get, s.flagged
    rows = outside_seen = 0
    for row in actual:
        rows += 1
        try:
            nk = row_key(row)
        except KeyError:
            codec.raw_key(row)  # raises BadInput naming the missing key column
            raise
        if None in nk:
            s.nulls.append(row)
            continue
        prev = get_seen(nk)
        if prev is not None:
            s.dups.setdefault(nk, [prev]).append(row)
            continue
        if nk in scope:
            seen[nk] = row
        elif full_baseline:
            base = get_outside(nk)
            if base is not None:
                outside_seen += 1
                try:
                    values = get_raw(row)
                except KeyError:  # a row without some column: read as NULL
                    values = raw(row)
                if values == base[2]:
                    seen[nk] = _SAME
                    continue
            seen[nk] = row
            flagged.append(nk)
        else:
            seen[nk] = _OUT
    s.rows, s.outside_seen = rows, outside_seen
    return s


def _hygiene(
    codec: RowCodec,
    scan: _Scan,
    scope: Mapping[NormKey, _Entry],
    outside: Mapping[NormKey, tuple[KeyTuple, Row, tuple[Any, ...]]],
) -> list[Finding]:
    """NULL keys and duplicate keys in A: findings of their own, every row kept."""
    key_cols = list(codec.key_columns)
    out = [Finding(codec.raw_key(r), "null_key", key_cols, None, None, r) for r in scan.nulls]
    for nk, found in scan.dups.items():
        entry = scope.get(nk)
        base = outside.get(nk)
        before = entry.before if entry else (base[1] if base else None)
        # A first occurrence equal to B was not retained: B's image stands for it.
        stand_in = [base[1]] if base else []
        rows = tuple(r for f in found for r in ([f] if isinstance(f, dict) else stand_in))
        out.append(
            Finding(
                entry.key if entry else codec.raw_key(rows[-1]),
                "duplicate_key",
                key_cols,
                before,
                entry.expected if entry else before,
                None,
                entry.op_no if entry else None,
                duplicates=rows,
                detail={"occurrences": len(found)},
            )
        )
    return out


def _digests(compared: Mapping[NormKey, tuple[_Entry, Classified]]) -> dict[str, str]:
    """Digests of the compared states over the keys that were classified: the scope and every
    key with a finding (the same set whichever detection path found them)."""
    texts = {nk: key_text(e.key) for nk, (e, _c) in compared.items()}
    return {
        name: state_digest((texts[nk], c.fingerprints[i]) for nk, (_e, c) in compared.items())
        for i, name in enumerate(("baseline", "expected", "actual"))
    }
