"""Values by column kind: the one normalisation layer.

``coerce`` turns an input value (YAML, JSON, CSV) into the canonical image form for a column,
or says why it cannot. ``normalize`` turns any image value into a comparable, hashable form,
so that equality is by meaning (``10.5`` equals ``"10.50"`` in a NUMERIC column, SQLite's
``0``/``1`` equal booleans, ``"2026-01-01 10:00:00"`` equals ``"2026-01-01T10:00:00"``).
The engine's conflict checks, in-doubt resolution and reconciliation all use ``normalize``.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from console.canonical import canonical_json
from console.targets.types import ColumnInfo

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    try:
        d = Decimal(str(value).strip()) if not isinstance(value, float) else Decimal(repr(value))
    except InvalidOperation:
        raise ValueError(f"'{value}' is not a number") from None
    if not d.is_finite():
        raise ValueError(f"'{value}' is not a finite number")
    return d


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    text = str(value).strip().replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"'{value}' is not a timestamp (use ISO 8601, e.g. 2026-11-27T10:00:00)"
        ) from None


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict) and set(value) == {"$b64"}:
        return base64.b64decode(value["$b64"])
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError('binary values are given as {"$b64": ...} or text')


def coerce(col: ColumnInfo, value: Any) -> Any:
    """The canonical image value of ``value`` for ``col``; ``ValueError`` says why not."""
    if value is None:
        return None
    kind = col.kind
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError("a boolean is not an integer")
        d = _decimal(value)
        if d != d.to_integral_value():
            raise ValueError(f"'{value}' is not a whole number")
        return int(d)
    if kind == "decimal":
        d = _decimal(value)
        if col.scale is not None:
            exponent = d.as_tuple().exponent
            if isinstance(exponent, int) and -exponent > col.scale and d != round(d, col.scale):
                raise ValueError(f"'{value}' has more than {col.scale} decimal places")
        return str(d)
    if kind == "float":
        f = float(_decimal(value))
        if not math.isfinite(f):
            raise ValueError(f"'{value}' is not a finite number")
        return f
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"'{value}' is not true or false")
    if kind == "date":
        if isinstance(value, dt.datetime):
            raise ValueError(f"'{value}' is a timestamp, not a date")
        try:
            return (
                value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value).strip())
            ).isoformat()
        except ValueError:
            raise ValueError(f"'{value}' is not a date (use YYYY-MM-DD)") from None
    if kind == "datetime":
        return _datetime(value).isoformat()
    if kind == "time":
        try:
            return (
                value if isinstance(value, dt.time) else dt.time.fromisoformat(str(value).strip())
            ).isoformat()
        except ValueError:
            raise ValueError(f"'{value}' is not a time of day (use HH:MM:SS)") from None
    if kind == "bytes":
        return {"$b64": base64.b64encode(_bytes(value)).decode("ascii")}
    if kind == "json":
        canonical_json(value)  # must be encodable
        return value
    if kind == "text":
        if isinstance(value, dict | list):
            raise ValueError("a structured value does not fit a text column")
        return value if isinstance(value, str) else str(value)
    return value


def normalize(col: ColumnInfo | None, value: Any) -> Any:
    """A hashable form of an image value that compares equal exactly when meanings do."""
    if value is None:
        return None
    kind = col.kind if col is not None else "other"
    try:
        if kind == "int":
            return int(_decimal(value)) if not isinstance(value, bool) else int(value)
        if kind == "decimal":
            return _decimal(value).normalize()
        if kind == "float":
            return float(_decimal(value))
        if kind == "bool":
            return coerce(col, value) if col is not None else value
        if kind == "datetime":
            moment = _datetime(value)
            if moment.tzinfo is not None:
                moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
            return moment
        if kind in ("date", "time"):
            return coerce(col, value) if col is not None else value
        if kind == "bytes":
            return _bytes(value)
    except (ValueError, TypeError):
        pass  # a value the column should not hold: compare it as written
    if isinstance(value, dict | list):
        return canonical_json(value)
    return value


def same(col: ColumnInfo | None, a: Any, b: Any) -> bool:
    """NULL-safe equality by meaning for one column."""
    return bool(normalize(col, a) == normalize(col, b))
