"""Declared per-column normalisers, on top of ``console.targets.values.normalize``.

One module, used by the fingerprint stage (``fingerprint.py``), the classifier (``diff.py``)
and the explanation (``explain.py``), so a value that compares equal in one stage compares
equal in all of them.

Two roles:
- *canonicalising* options (``decimals``, ``truncate``, ``trim``, ``case``, ``ignore``) say
  what equality means for a column: a difference that vanishes under them is no difference.
  They are applied before hashing.
- *tolerance* (``epsilon``) keeps the exact value in the hash; a difference within it is
  classified ``tolerated`` instead of ``wrong_value`` (``tolerated()``).

``value()`` returns JSON-native primitives (str, int, float, bool, None), so normalised rows
are hashable tuples with a canonical encoding and no per-value encoder callbacks.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from console.canonical import canonical_json, digest
from console.errors import BadInput
from console.targets.types import ColumnInfo, TableInfo
from console.targets.values import EXACT, normalize

Norm = Callable[[Any], Any]

_OPTIONS = ("decimals", "epsilon", "truncate", "trim", "case")
_UNITS = ("day", "hour", "minute", "second", "millisecond")
_NUMERIC = ("decimal", "float", "int")
_TEXTUAL = ("text", "other")


@dataclass(frozen=True)
class Rule:
    """What one column declares (all optional)."""

    decimals: int | None = None
    epsilon: Decimal | None = None
    truncate: str | None = None
    trim: bool = False
    case: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.decimals is not None:
            out["decimals"] = self.decimals
        if self.epsilon is not None:
            out["epsilon"] = str(self.epsilon)
        if self.truncate is not None:
            out["truncate"] = self.truncate
        if self.trim:
            out["trim"] = True
        if self.case is not None:
            out["case"] = self.case
        return out

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.as_dict().items())


def _bad(column: str, option: str, problem: str) -> BadInput:
    return BadInput(f"Reconcile normaliser {column}.{option}: {problem}.")


def _parse_rule(column: str, spec: Any) -> Rule:
    if not isinstance(spec, Mapping) or not spec:
        raise _bad(column, "*", "give a table of options (" + ", ".join(_OPTIONS) + ")")
    for option in spec:
        if option not in _OPTIONS:
            raise _bad(column, str(option), "unknown option; use " + ", ".join(_OPTIONS))
    decimals = spec.get("decimals")
    if decimals is not None and (
        isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 18
    ):
        raise _bad(column, "decimals", f"must be a whole number from 0 to 18, not {decimals!r}")
    epsilon: Decimal | None = None
    if "epsilon" in spec:
        raw = spec["epsilon"]
        try:
            if isinstance(raw, bool):
                raise InvalidOperation
            epsilon = Decimal(repr(raw) if isinstance(raw, float) else str(raw))
        except InvalidOperation:
            epsilon = None
        if epsilon is None or not epsilon.is_finite() or epsilon <= 0:
            raise _bad(column, "epsilon", f"must be a positive number, not {raw!r}")
    truncate = spec.get("truncate")
    if truncate is not None and truncate not in _UNITS:
        raise _bad(column, "truncate", f"must be one of {', '.join(_UNITS)}, not {truncate!r}")
    trim = spec.get("trim", False)
    if not isinstance(trim, bool):
        raise _bad(column, "trim", f"must be true or false, not {trim!r}")
    case = spec.get("case")
    if case is not None and case not in ("lower", "upper"):
        raise _bad(column, "case", f"must be lower or upper, not {case!r}")
    return Rule(decimals, epsilon, truncate, trim, case)


def _check_kind(column: str, rule: Rule, col: ColumnInfo) -> None:
    kind = col.kind
    if rule.decimals is not None and kind not in ("decimal", "float"):
        raise _bad(column, "decimals", f"applies to decimal and float columns; this is {kind}")
    if rule.epsilon is not None and kind not in _NUMERIC:
        raise _bad(column, "epsilon", f"applies to numeric columns; this is {kind}")
    if rule.truncate is not None and kind not in ("datetime", "time"):
        raise _bad(column, "truncate", f"applies to datetime and time columns; this is {kind}")
    if (rule.trim or rule.case) and kind not in _TEXTUAL:
        option = "trim" if rule.trim else "case"
        raise _bad(column, option, f"applies to text columns; this is {kind}")


def decimal_text(d: Decimal) -> str:
    """One text per numeric value, without exponent: 10.50, 10.5 and 1.05E+1 all give
    ``10.5``; 1E+2 gives ``100``."""
    if not d:
        return "0"
    return format(d.normalize(EXACT), "f")


def _to_decimal(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    try:
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(str(v))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _truncate_time(t: dt.time | dt.datetime, unit: str) -> Any:
    if unit == "millisecond":
        return t.replace(microsecond=t.microsecond // 1000 * 1000)
    t = t.replace(microsecond=0)
    if unit == "second":
        return t
    t = t.replace(second=0)
    if unit == "minute":
        return t
    t = t.replace(minute=0)
    if unit == "hour" or not isinstance(t, dt.datetime):
        return t
    return t.replace(hour=0)


def primitive(v: Any) -> Any:
    """A JSON-native, hashable form of an already normalised value."""
    if v is None or isinstance(v, str | bool | int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            return repr(v)  # nan/inf cannot be encoded as JSON
        # 2.0 == 2 in Python: one encoding for both, so equal values hash alike
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if isinstance(v, Decimal):
        return decimal_text(v) if v.is_finite() else str(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, bytes | bytearray | memoryview):
        return "b64:" + base64.b64encode(bytes(v)).decode("ascii")
    return canonical_json(v)


def _memoised(slow: Norm, limit: int = 65_536) -> Norm:
    """``slow`` with a bounded memo for text and float inputs (timestamps, prices and codes
    repeat across rows and across the three states). One memo per input type, so that 1,
    1.0 and True, which hash alike, never share an entry."""
    texts: dict[str, Any] = {}
    floats: dict[float, Any] = {}

    def norm(v: Any) -> Any:
        if v is None:
            return None
        t = type(v)
        memo: dict[Any, Any] | None = texts if t is str else floats if t is float else None
        if memo is None:
            return slow(v)
        hit = memo.get(v, _MISS)
        if hit is _MISS:
            if len(memo) >= limit:
                memo.clear()
            hit = memo[v] = slow(v)
        return hit

    return norm


_MISS = object()


def _decimal_fast(slow: Norm) -> Norm:
    """``value`` for a decimal column without rules, minus the generic dispatch."""

    def norm(v: Any) -> Any:
        if v is None:
            return None
        t = type(v)
        try:
            if t is float:
                d = Decimal(repr(v))
            elif t is str:
                d = Decimal(v.strip())
            elif t is int:
                d = Decimal(v)
            else:
                return slow(v)
        except InvalidOperation:
            return slow(v)
        if not d.is_finite():
            return slow(v)
        return "0" if not d else format(d.normalize(EXACT), "f")

    return norm


def merge_specs(*specs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Normaliser specs from several places, weakest first (``backout.toml``, then the change
    set, then the caller): a column's rule from a later spec replaces the earlier one whole
    (the change set knows its batch; mixing options of two rules would be neither's intent);
    ``ignore`` lists add up."""
    out: dict[str, Any] = {}
    ignore: list[str] = []
    for spec in specs:
        for column, rule in (spec or {}).items():
            if column == "ignore" and not isinstance(rule, Mapping):
                ignore.extend(c for c in rule if c not in ignore)
            else:
                out[column] = rule
    if ignore:
        out["ignore"] = ignore
    return out


class Normalisers:
    """Per-column rules plus ignored columns, validated once (``parse``)."""

    def __init__(self, rules: Mapping[str, Rule] | None = None, ignore: Iterable[str] = ()):
        self.rules: dict[str, Rule] = dict(rules or {})
        self.ignored: frozenset[str] = frozenset(ignore)

    @classmethod
    def parse(
        cls,
        spec: Mapping[str, Any] | None,
        table: TableInfo | None = None,
        key_columns: Sequence[str] = (),
    ) -> Normalisers:
        """From ``{"price": {"decimals": 2}, ..., "ignore": ["last_seen"]}``; BadInput names
        the column and option at fault. With ``table``, columns and kinds are checked too."""
        if spec is None:
            return cls()
        if not isinstance(spec, Mapping):
            raise BadInput("Reconcile normalisers must be a table of column -> options.")
        rules: dict[str, Rule] = {}
        ignore: list[str] = []
        for column, opts in spec.items():
            if column == "ignore" and not isinstance(opts, Mapping):
                if not isinstance(opts, list | tuple) or not all(isinstance(c, str) for c in opts):
                    raise _bad("ignore", "ignore", "must be a list of column names")
                ignore.extend(opts)
                continue
            rules[str(column)] = _parse_rule(str(column), opts)
        if table is not None:
            for column in [*rules, *ignore]:
                if not table.has(column):
                    option = "ignore" if column in ignore else "*"
                    raise _bad(column, option, f"no such column in table {table.name}")
            for column, rule in rules.items():
                _check_kind(column, rule, table.columns[column])
        for column in key_columns:
            if column in rules or column in ignore:
                option = "ignore" if column in ignore else "*"
                raise _bad(column, option, "key columns are compared exactly")
        return cls(rules, ignore)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {c: r.as_dict() for c, r in sorted(self.rules.items())}
        if self.ignored:
            out["ignore"] = sorted(self.ignored)
        return out

    @property
    def digest(self) -> str:
        return digest(self.as_dict())

    def compared(self, table: TableInfo) -> tuple[str, ...]:
        """The columns that take part in comparisons, in table order."""
        return tuple(c for c in table.columns if c not in self.ignored)

    def value(self, col: ColumnInfo | None, column: str, v: Any) -> Any:
        """The normalised, comparable form of ``v`` (JSON-native, hashable)."""
        base = normalize(col, v)
        rule = self.rules.get(column)
        if rule is None or base is None:
            return primitive(base)
        if rule.decimals is not None:
            d = base if isinstance(base, Decimal) else _to_decimal(base)
            if d is not None:
                exp = Decimal(1).scaleb(-rule.decimals)
                return decimal_text(d.quantize(exp, rounding=ROUND_HALF_UP, context=EXACT))
        if rule.truncate is not None:
            if isinstance(base, str) and col is not None and col.kind == "time":
                try:
                    base = dt.time.fromisoformat(base)
                except ValueError:
                    return base
            if isinstance(base, dt.datetime | dt.time):
                base = _truncate_time(base, rule.truncate)
        if isinstance(base, str):
            if rule.trim:
                base = base.strip()
            if rule.case == "lower":
                base = base.lower()
            elif rule.case == "upper":
                base = base.upper()
        return primitive(base)

    def compile(self, table: TableInfo, columns: Sequence[str]) -> list[Norm]:
        """One function per column, equal to ``value`` but with fast paths for values that
        are already in normal form (most values read from a database)."""
        return [self._compile_one(table.columns.get(c), c) for c in columns]

    def _compile_one(self, col: ColumnInfo | None, column: str) -> Norm:
        def slow(v: Any) -> Any:
            return self.value(col, column, v)

        kind = col.kind if col is not None else "other"
        rule = self.rules.get(column)
        plain = rule is None or rule == Rule(epsilon=rule.epsilon)  # epsilon keeps values
        if plain and kind == "int":
            return lambda v: v if type(v) is int or v is None else slow(v)
        if plain and kind == "text":
            return lambda v: v if type(v) is str or v is None else slow(v)
        if plain and kind == "float":
            # x - x == 0.0 is false for nan and inf; integral floats encode as ints
            return lambda v: (
                v
                if (type(v) is float and v - v == 0.0 and not v.is_integer()) or v is None
                else slow(v)
            )
        if plain and kind == "bool":
            return lambda v: (
                v
                if type(v) is bool or v is None
                else bool(v)
                if type(v) is int and v in (0, 1)
                else slow(v)
            )
        if plain and kind == "decimal":
            return _decimal_fast(slow)
        return _memoised(slow)

    def tolerated(self, column: str, a: Any, b: Any) -> bool:
        """Whether normalised values ``a`` and ``b`` differ by no more than the column's
        declared tolerance (epsilon). Equal values are not "tolerated": they are equal."""
        rule = self.rules.get(column)
        if rule is None or rule.epsilon is None or a is None or b is None or a == b:
            return False
        da, db = _to_decimal(a), _to_decimal(b)
        if da is None or db is None:
            return False
        return abs(da - db) <= rule.epsilon

    def tolerance(self, column: str) -> str | None:
        """The declared tolerance, for messages and explanations."""
        rule = self.rules.get(column)
        if rule is None or rule.epsilon is None:
            return None
        return f"epsilon {rule.epsilon}"

    def describe(self, column: str) -> str | None:
        rule = self.rules.get(column)
        return None if rule is None else rule.describe()
