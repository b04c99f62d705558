"""Validate a whole change set against the reflected target tables, before anything is written.

Every step and every operation is checked and every problem collected (up to ``limit``): the
table exists; key columns exist and each operation gives exactly them, none NULL; no key
appears twice within a step; every column exists and every value converts to its type
(``console.targets.values.coerce``, the one conversion layer); no NULL into a NOT NULL column;
an update never sets a key column; an insert gives every NOT NULL column without a default.

Duplicate detection is O(n) in time and small in memory: a set of 64-bit hashes of the
canonical keys (about 70 bytes per row; the rows themselves are not kept). The rare suspected
duplicates are confirmed by a second read of the step, which also finds the first occurrence.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from console.canonical import canonical_json
from console.changes.errors import MAX_PROBLEMS, ChangeSetInvalid
from console.changes.model import ChangeSet, Operation, Problem, Step
from console.errors import BadInput, TargetUnavailable
from console.targets.types import ColumnInfo, TableInfo
from console.targets.values import OverLimit, coerce, normalize

Tables = Callable[[str | None, str], TableInfo]

_INT64 = 2**63
_EXAMPLES = {
    "int": "a whole number such as 42",
    "decimal": "a decimal such as 10.50",
    "float": "a number such as 0.5",
    "bool": "true or false",
    "date": "a date such as 2026-01-31",
    "datetime": "a timestamp such as 2026-01-31T10:00:00",
    "time": "a time of day such as 10:00:00",
    "bytes": 'base64 as {"$b64": "..."}',
    "text": "text",
    "json": "a JSON value",
}


class _Bad:
    """A value that does not convert, and why."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _type(col: ColumnInfo) -> str:
    return f"{col.type_name} ({col.kind})" if col.type_name else col.kind


def _names(names: Any, limit: int = 12) -> str:
    shown = list(names)
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def _hint(name: str, names: Any) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _huge_exponent(value: Any) -> bool:
    """Guard before ``coerce``: int(Decimal('1e999999999')) would build a billion digits."""
    if isinstance(value, str):
        if "e" not in value and "E" not in value:
            return False
        try:
            value = Decimal(value.strip())
        except (InvalidOperation, ValueError):
            return False
    return isinstance(value, Decimal) and value.is_finite() and value.adjusted() > 18


def convert(col: ColumnInfo, value: Any) -> Any:
    """The canonical value for ``col``, or ``_Bad`` saying why not (NULLs are the caller's)."""
    if col.kind == "int" and _huge_exponent(value):
        return _Bad(f"'{str(value)[:40]}' is out of range for {_type(col)}")
    try:
        result = coerce(col, value)
    except OverLimit as exc:
        return _Bad(str(exc))
    except (ValueError, ArithmeticError, TypeError) as exc:
        reason = str(exc) or f"'{str(value)[:40]}' does not fit"
        example = _EXAMPLES.get(col.kind, "a value of that type")
        return _Bad(f"{reason}; {col.name} is {_type(col)}: give {example}")
    if col.kind == "int" and col.int_range is None and not -_INT64 <= result < _INT64:
        return _Bad(f"'{str(value)[:40]}' is out of range for {_type(col)}")
    return result


_MISS: Any = object()  # a fast converter's "ask ``convert``"
_INT_TEXT = re.compile(r"-?[0-9]{1,18}").fullmatch
# A plain decimal: no sign but '-', no leading zero, at most 6 places (so that str(Decimal(s))
# is s itself: no exponent form, nothing normalised away).
_DECIMAL_TEXT = re.compile(r"-?(0|[1-9][0-9]*)(?:\.([0-9]{1,6}))?").fullmatch
_FLOAT_TEXT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?").fullmatch


def _fast_converter(col: ColumnInfo) -> Callable[[Any], Any] | None:
    """For the common values of ``col``: a converter whose result equals ``convert``'s, or
    ``_MISS`` for any other value (which then goes through ``convert``)."""
    kind = col.kind
    if kind == "int":
        low, high = col.int_range or (-_INT64, _INT64 - 1)

        def to_int(value: Any) -> Any:
            t = type(value)
            if t is str and _INT_TEXT(value):
                value, t = int(value), int
            if t is int:
                return value if low <= value <= high else _MISS
            return _MISS

        return to_int
    if kind == "decimal":
        scale = col.scale
        # Digits before the point a value may have (past it, ``convert`` words the error).
        room = col.digits - (scale or 0) if col.digits is not None else 1 << 30

        def to_decimal(value: Any) -> Any:
            t = type(value)
            if t is str:
                m = _DECIMAL_TEXT(value)
                if m is None:
                    return _MISS
                whole, places = m.group(1), m.group(2)
                if places is not None and scale is not None and len(places) > scale:
                    return _MISS
                return value if whole == "0" or len(whole) <= room else _MISS
            if t is int:
                return str(value) if len(str(abs(value))) <= room or not value else _MISS
            return _MISS

        return to_decimal
    if kind == "float":

        def to_float(value: Any) -> Any:
            t = type(value)
            if t is str and _FLOAT_TEXT(value):
                return float(value)
            if t is float and math.isfinite(value):
                return value
            return _MISS

        return to_float
    if kind == "text":
        length = col.length if col.length is not None else 1 << 62

        def to_text(value: Any) -> Any:
            return value if type(value) is str and len(value) <= length else _MISS

        return to_text
    return None


def _null_message(col: ColumnInfo) -> str:
    fix = f"omit {col.name} to use its default" if col.has_default else f"give {col.name} a value"
    return f"{col.name} is NOT NULL and cannot be set to NULL; {fix}"


def _dup_key(values: list[Any]) -> tuple[Any, ...]:
    """A hashable, exact stand-in for a canonical key (dicts, e.g. binary, as JSON text)."""
    return tuple(canonical_json(v) if isinstance(v, dict | list) else v for v in values)


# (index in the step, the operation as read, the operation checked or None)
Checked = tuple[int, Operation, Operation | None]
SETTLE = 1000  # checked operations held back per question to the database (``settle``)


def _section(kind: str, in_key: bool) -> str:
    """Where a column's value sits in an operation, as the change set spells it."""
    section = "set" if kind == "update" else "key" if kind == "delete" else "row"
    return ("row" if section == "row" else "key") if in_key else section


def _spellable(value: Any) -> bool:
    return type(value) in (str, int, float, Decimal)


def _spelled_text(value: Any) -> str:
    return value if type(value) is str else repr(value) if type(value) is float else str(value)


class _StepChecker:
    """Checks the operations of one step; shared by ``validate`` and ``coerced_operations``."""

    def __init__(self, file: str, prefix: str, step: Step, info: TableInfo | None) -> None:
        self.file = file
        self.prefix = prefix
        self.step = step
        self.key_set = frozenset(step.key)
        self.problems: list[Problem] = []
        self.info = info
        if info is not None and any(not info.has(c) for c in step.key):
            for c in step.key:
                if not info.has(c):
                    self.bad(
                        step.line,
                        f"{prefix}.key",
                        f"the key column {c} is not a column of {info.name}"
                        f"{_hint(c, info.columns)}; its columns are {_names(info.columns)}",
                    )
            self.info = info = None  # check what does not need the table
        self.required = (
            [
                c.name
                for c in info.columns.values()
                if not c.nullable and not c.has_default and c.name not in self.key_set
            ]
            if info is not None
            else []
        )
        # Columns whose values only the database can check and spell (``TableInfo.respell``):
        # ``validate`` and ``coerced_operations`` hold checked operations back in batches and
        # ``settle`` them.
        self.opaque = (
            frozenset(c for c, col in info.columns.items() if col.kind == "other")
            if info is not None and info.respell is not None
            else frozenset()
        )
        # Per column: a fast converter (None: none for that kind) and nullability, for
        # ``_fast_check``; None when a key column has no fast converter.
        self.fast: dict[str, Callable[[Any], Any] | None] | None = None
        self.nullable: dict[str, bool] = {}
        if info is not None:
            fast = {c: _fast_converter(col) for c, col in info.columns.items()}
            if all(fast[c] is not None for c in step.key):
                self.fast = fast
                self.nullable = {c: col.nullable for c, col in info.columns.items()}

    def bad(self, line: int | None, fld: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, fld, message))

    def _fast_check(self, op: Operation) -> Operation | None:
        """``check``'s result for an operation that is valid in the common way, all its values
        converted by the fast converters; None for anything else (``check`` decides)."""
        fast = self.fast
        if fast is None:
            return None
        keys = self.step.key
        op_key = op.key
        if len(op_key) != len(keys):
            return None
        key: dict[str, Any] = {}
        for c in keys:
            raw = op_key.get(c)
            if raw is None:
                return None
            value = fast[c](raw)  # type: ignore[misc]  # key converters exist (see __init__)
            if value is _MISS:
                return None
            key[c] = value
        kind = op.op
        key_set = self.key_set
        nullable = self.nullable
        values: dict[str, Any] = {}
        for c, raw in op.values.items():
            if c in key_set:
                if kind == "update":
                    return None
                values[c] = key[c]
                continue
            convert_fast = fast.get(c)
            if convert_fast is None:
                return None
            if raw is None:
                if not nullable[c]:
                    return None
                values[c] = None
                continue
            value = convert_fast(raw)
            if value is _MISS:
                return None
            values[c] = value
        if kind in ("insert", "upsert") and self.required:
            present = op.values
            for c in self.required:
                if c not in present:
                    return None
        return Operation(kind, key, values, op.line)

    def check(self, index: int, op: Operation) -> Operation | None:
        """The operation with canonical values, or None (problems recorded)."""
        fast = self._fast_check(op)
        if fast is not None:
            return fast
        step, info, line = self.step, self.info, op.line
        kind = op.op
        before = len(self.problems)
        section, key_section = _section(kind, False), _section(kind, True)

        def where(part: str, column: str) -> str:
            return f"{self.prefix}.operations[{index}].{part}.{column}"

        key: dict[str, Any] = {}
        for c in step.key:
            raw = op.key.get(c)
            if raw is None:
                message = (
                    f"the key column {c} is NULL; give it a value"
                    if c in op.key
                    else f"the key value for {c} is missing; add {key_section}.{c}"
                )
                self.bad(line, where(key_section, c), message)
            elif info is None:
                key[c] = raw
            else:
                value = convert(info.columns[c], raw)
                if isinstance(value, _Bad):
                    self.bad(line, where(key_section, c), value.message)
                key[c] = value
        if not self.key_set.issuperset(op.key):
            for c in op.key:
                if c not in self.key_set:
                    self.bad(
                        line,
                        where("key", c),
                        f"{c} is not a key column of this step (key: {', '.join(step.key)}); "
                        "remove it from key or fix the step's key",
                    )
        values: dict[str, Any] = {}
        for c, raw in op.values.items():
            if c in self.key_set:
                if kind == "update":
                    self.bad(
                        line,
                        where(section, c),
                        f"an update cannot change the key column {c}; delete the row and "
                        "insert the new one instead",
                    )
                elif c in key:
                    values[c] = key[c]  # converted and NULL-checked above, as a key
                continue
            if info is None:
                values[c] = raw
                continue
            col = info.columns.get(c)
            if col is None:
                self.bad(
                    line,
                    where(section, c),
                    f"{info.name} has no column {c}{_hint(c, info.columns)}; its columns are "
                    f"{_names(info.columns)}",
                )
                continue
            if raw is None:
                if not col.nullable:
                    self.bad(line, where(section, c), _null_message(col))
                values[c] = None
                continue
            value = convert(col, raw)
            if isinstance(value, _Bad):
                self.bad(line, where(section, c), value.message)
            values[c] = value
        if section == "row" and self.required:
            missing = [c for c in self.required if c not in op.values]
            if missing:
                self.bad(
                    line,
                    f"{self.prefix}.operations[{index}].row",
                    f"the row lacks {_names(missing, 5)}, NOT NULL without a default; add "
                    f"{' and '.join('row.' + c for c in missing[:3])}",
                )
        if len(self.problems) > before:
            return None
        return Operation(kind, key, values, line)

    def settle(self, batch: Sequence[Checked]) -> list[Checked]:
        """The batch with every value of an opaque column as the database stores it (one
        question per column for the whole batch); an operation with a value the database
        refuses becomes None, its problem recorded."""
        info = self.info
        assert info is not None and info.respell is not None
        wanted: dict[str, dict[str, None]] = {c: {} for c in self.opaque}
        for _, _, op in batch:
            if op is not None:
                for c, v in (*op.key.items(), *op.values.items()):
                    if c in wanted and _spellable(v):
                        wanted[c].setdefault(_spelled_text(v))
        answers = {
            c: dict(zip(texts, info.respell(c, list(texts)), strict=True))
            for c, texts in wanted.items()
            if texts
        }
        out: list[Checked] = []
        for index, raw, op in batch:
            if op is None:
                out.append((index, raw, None))
                continue
            before = len(self.problems)
            key = self._spell(answers, index, op, op.key, True)
            values = self._spell(answers, index, op, op.values, False)
            settled = Operation(op.op, key, values, op.line)
            out.append((index, raw, settled if len(self.problems) == before else None))
        return out

    def _spell(
        self,
        answers: dict[str, dict[str, tuple[Any, str | None]]],
        index: int,
        op: Operation,
        part: Mapping[str, Any],
        in_key: bool,
    ) -> dict[str, Any]:
        spelled = dict(part)
        for c, v in part.items():
            found = answers.get(c)
            if found is None or not _spellable(v):
                continue
            image, reason = found[_spelled_text(v)]
            spelled[c] = image
            if reason is not None and (in_key or c not in op.key):  # a key value: once
                assert self.info is not None
                kind = self.info.columns[c].type_name
                self.bad(
                    op.line,
                    f"{self.prefix}.operations[{index}].{_section(op.op, in_key)}.{c}",
                    f"the database refuses {v!r} for {kind} ({reason}); give a value the "
                    "column accepts",
                )
        return spelled

    def checked_key(self, op: Operation) -> tuple[Any, ...]:
        """``dup_key`` of a checked operation, whose values are converted already."""
        if not self.opaque or self.info is None or self.opaque.isdisjoint(op.key):
            return _dup_key(list(op.key.values()))
        cols = self.info.columns
        return _dup_key(
            [normalize(cols[c], v) if c in self.opaque else v for c, v in op.key.items()]
        )

    def dup_key(self, op: Operation) -> tuple[Any, ...] | None:
        """The canonical key for duplicate detection; None when the key is incomplete.
        Opaque values compare by meaning (``normalize``): a UUID in either case."""
        values = []
        for c in self.step.key:
            raw = op.key.get(c)
            if raw is None:
                return None
            if self.info is not None:
                col = self.info.columns[c]
                value = convert(col, raw)
                raw = raw if isinstance(value, _Bad) else value
                if c in self.opaque:
                    raw = normalize(col, raw)
            values.append(raw)
        return _dup_key(values)


_Cache = dict[tuple[str | None, str], TableInfo | BadInput]


def _lookup(tables: Tables, cache: _Cache, cs: ChangeSet, step: Step) -> TableInfo | BadInput:
    ref = (step.target or cs.target, step.table)
    if ref not in cache:
        try:
            cache[ref] = tables(*ref)
        except BadInput as exc:
            cache[ref] = exc
    return cache[ref]


def _duplicates(checker: _StepChecker, suspects: set[tuple[Any, ...]]) -> list[Problem]:
    """Second read of a step: confirm suspected duplicate keys and name their first lines."""
    step = checker.step
    first: dict[tuple[Any, ...], int | None] = {}
    out: list[Problem] = []
    for index, op in enumerate(step.operations()):
        key = checker.dup_key(op)
        if key is None or key not in suspects:
            continue
        if key not in first:
            first[key] = op.line
            continue
        shown = canonical_json(dict(zip(step.key, key, strict=True)))
        out.append(
            Problem(
                checker.file,
                op.line,
                f"{checker.prefix}.operations[{index}].key",
                f"the key {shown} appears twice in step {step.name} (first on line "
                f"{first[key]}); keep one operation per row and step",
            )
        )
    return out


Sink = Callable[[int, Operation | None], None]


def validate(
    cs: ChangeSet, tables: Tables, *, limit: int = MAX_PROBLEMS, sink: Sink | None = None
) -> list[Problem]:
    """Every problem of ``cs`` against its target tables (at most ``limit``); [] when valid.

    ``tables(target, table)`` is called with ``step.target or cs.target``; a ``BadInput``
    from it (unknown table, unreachable target) becomes a problem of that step.

    ``sink(step_index, op)``, if given, receives every operation with canonical values (as
    ``coerced_operations`` gives them) in the same read of the change set, and
    ``(step_index, None)`` after each step, for as long as no problem has been found (after
    one, what it received is moot: the change set is invalid).
    """
    problems: list[Problem] = []
    cache: _Cache = {}
    for i, step in enumerate(cs.steps):
        prefix = f"steps[{i}]"
        found = _lookup(tables, cache, cs, step)
        if isinstance(found, TargetUnavailable) and found.field == "--target":
            if not any(p.field == "--target" for p in problems):  # once, not per step
                problems.append(Problem(cs.source, None, "--target", found.message))
        elif isinstance(found, TargetUnavailable):
            field = f"{prefix}.target" if step.target else "target"
            problems.append(Problem(cs.source, step.line, field, found.message))
        elif isinstance(found, BadInput):
            problems.append(Problem(cs.source, step.line, f"{prefix}.table", found.message))
        checker = _StepChecker(
            cs.source, prefix, step, found if isinstance(found, TableInfo) else None
        )
        problems.extend(checker.problems)  # a key the table lacks
        checker.problems.clear()
        seen: set[int] = set()
        suspects: set[tuple[Any, ...]] = set()
        for _, op, checked in _checked(checker, step):
            if checker.problems:
                problems.extend(checker.problems)
                checker.problems.clear()
                if len(problems) >= limit:
                    return problems[:limit]
            if checked is not None and sink is not None and not problems:
                sink(i, checked)
            key = checker.checked_key(checked) if checked else checker.dup_key(op)
            if key is None:
                continue  # a missing or NULL key is reported, and cannot be a duplicate
            # hash() is salted per process, which is fine: the set lives for this call only.
            h = hash(key)
            if h in seen:
                suspects.add(key)
            else:
                seen.add(h)
        if suspects:
            problems.extend(_duplicates(checker, suspects))
            if len(problems) >= limit:
                return problems[:limit]
        if sink is not None and not problems:
            sink(i, None)
    return problems


def coerced_operations(step: Step, table_info: TableInfo) -> Iterator[Operation]:
    """The step's operations with canonical values (``coerce``d), as the engine journals them.

    Meant for a validated change set: an operation that does not check raises
    ``ChangeSetInvalid`` naming it.
    """
    checker = _StepChecker("<change set>", f"step {step.name}", step, table_info)
    if checker.problems:
        raise ChangeSetInvalid(checker.problems)
    for _, _, checked in _checked(checker, step):
        if checked is None:
            raise ChangeSetInvalid(checker.problems)
        yield checked


def _checked(checker: _StepChecker, step: Step) -> Iterator[Checked]:
    """The step's operations, checked; when the table has opaque columns, held back and
    settled ``SETTLE`` at a time (their problems arrive with the batch)."""
    if not checker.opaque:
        for index, op in enumerate(step.operations()):
            yield index, op, checker.check(index, op)
        return
    pending: list[Checked] = []
    for index, op in enumerate(step.operations()):
        pending.append((index, op, checker.check(index, op)))
        if len(pending) >= SETTLE:
            yield from checker.settle(pending)
            pending = []
    if pending:
        yield from checker.settle(pending)
