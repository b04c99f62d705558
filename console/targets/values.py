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
import ipaddress
import json
import math
import struct
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any, Literal

from console.canonical import canonical_json, jsonable
from console.targets.types import ColumnInfo, KeyTuple, TableInfo

# Decimal arithmetic that never rounds: columns hold more digits than the default context's 28
# (PostgreSQL's NUMERIC, MariaDB's DECIMAL(65, 30)), and a value rounded to 28 digits would
# compare equal to a different one, hiding a conflict.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


class OverLimit(ValueError):
    """A value of the right type past what its column holds; the message says the fix."""


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


_PG_EPOCH = dt.datetime(2000, 1, 1)


def _cut(col: ColumnInfo, micros: int, ahead: bool) -> int:
    """``micros`` (0..999,999) cut to the column's fractional digits as the database does:
    truncated, or (PostgreSQL) rounded half away from its epoch, 2000-01-01: a tie rounds
    up for a moment ``ahead`` of it and down before it."""
    step: int = 10 ** (6 - (col.fraction or 0))
    rest = micros % step
    if not col.fraction_rounds or 2 * rest < step or (2 * rest == step and not ahead):
        return micros - rest
    return micros - rest + step


def _fit_moment(col: ColumnInfo, moment: dt.datetime) -> dt.datetime:
    """A timestamp as a TIMESTAMP(p) / DATETIME(p) column stores it."""
    utc = moment if moment.tzinfo is None else moment.astimezone(dt.UTC).replace(tzinfo=None)
    micros = _cut(col, moment.microsecond, utc >= _PG_EPOCH)
    try:
        return moment.replace(microsecond=0) + dt.timedelta(microseconds=micros)
    except OverflowError:
        raise ValueError(f"'{moment}' rounds past year 9999 in {col.type_name}") from None


def _fit_clock(col: ColumnInfo, clock: dt.time) -> dt.time:
    """A time of day as a TIME(p) column stores it."""
    micros = _cut(col, clock.microsecond, True)
    if micros < 1_000_000:
        return clock.replace(microsecond=micros)
    whole = clock.hour * 3600 + clock.minute * 60 + clock.second + 1
    if whole == 86_400:
        raise ValueError(
            f"'{clock.isoformat()}' rounds up to 24:00:00 in {col.type_name}; give "
            f"{clock.replace(microsecond=0).isoformat()} or 00:00:00"
        )
    hour, rest = divmod(whole, 3600)
    return clock.replace(hour=hour, minute=rest // 60, second=rest % 60, microsecond=0)


def _respelled(col: ColumnInfo, value: Any) -> Any:
    """Types backout passes through but the database respells on write: PostgreSQL stores
    a UUID in lower case and the inet '10.0.0.1/32' as '10.0.0.1'. Compared by meaning, the
    run's own write is not a change by someone else."""
    name = col.type_name.upper()
    if name == "UUID":
        return str(uuid.UUID(str(value)))
    if name in ("INET", "INET6"):
        return str(ipaddress.ip_interface(str(value)))
    if name == "CIDR":
        return str(ipaddress.ip_network(str(value)))
    return value


def _padded(col: ColumnInfo) -> bool:
    """CHAR(n): PostgreSQL pads to n, MariaDB strips; trailing blanks carry no meaning."""
    name = col.type_name.upper()
    return name.startswith(("CHAR(", "NCHAR(", "CHARACTER(", "BPCHAR")) or name in (
        "CHAR",
        "NCHAR",
        "CHARACTER",
    )


def _json_text(value: Any) -> str:
    """The canonical text of a JSON document given as text (as databases return it) or value."""
    if isinstance(value, str):
        try:
            return canonical_json(json.loads(value))
        except ValueError:
            return value  # not a JSON document: compare the text as written
    return canonical_json(value)


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
        if d != d.to_integral_value(context=EXACT):
            raise ValueError(f"'{value}' is not a whole number")
        n = int(d)
        if col.int_range is not None and not col.int_range[0] <= n <= col.int_range[1]:
            low, high = col.int_range
            raise OverLimit(
                f"{n} is out of range for {col.type_name} ({low} to {high}): use a value "
                "in range, or widen the column"
            )
        return n
    if kind == "decimal":
        d = _decimal(value)
        if col.scale is not None:
            exponent = d.as_tuple().exponent
            rounded = d.quantize(Decimal((0, (1,), -col.scale)), context=EXACT)
            if isinstance(exponent, int) and -exponent > col.scale and d != rounded:
                raise ValueError(f"'{value}' has more than {col.scale} decimal places")
        if col.digits is not None and d:
            whole = d.adjusted() + 1  # digits before the point
            room = col.digits - (col.scale or 0)
            if whole > room:
                raise OverLimit(
                    f"'{value}' has {whole} digits before the decimal point; "
                    f"{col.type_name or 'this column'} holds {max(room, 0)}: use a smaller "
                    "value, or widen the column"
                )
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
            day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"'{value}' is not a date (use YYYY-MM-DD)") from None
        return value.strip() if col.verbatim and isinstance(value, str) else day.isoformat()
    if kind == "datetime":
        moment = _datetime(value)
        if col.verbatim:
            return value.strip() if isinstance(value, str) else moment.isoformat(sep=" ")
        return (moment if col.fraction is None else _fit_moment(col, moment)).isoformat()
    if kind == "time":
        try:
            clock = (
                value if isinstance(value, dt.time) else dt.time.fromisoformat(str(value).strip())
            )
        except ValueError:
            raise ValueError(f"'{value}' is not a time of day (use HH:MM:SS)") from None
        if col.verbatim and isinstance(value, str):
            return value.strip()
        return (clock if col.fraction is None else _fit_clock(col, clock)).isoformat()
    if kind == "bytes":
        return {"$b64": base64.b64encode(_bytes(value)).decode("ascii")}
    if kind == "json":
        canonical_json(value)  # must be encodable
        return value
    if kind == "text":
        if isinstance(value, dict | list):
            raise ValueError("a structured value does not fit a text column")
        text = value if isinstance(value, str) else str(value)
        if col.length is not None and len(text) > col.length:
            raise OverLimit(
                f"'{text[:20]}{'…' if len(text) > 20 else ''}' is {len(text)} characters long; "
                f"{col.type_name} holds {col.length}: shorten it, or widen the column"
            )
        return text
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
            return _decimal(value).normalize(EXACT)
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
        if kind == "json":
            return _json_text(value)
        if kind == "text" and isinstance(value, str) and col is not None and _padded(col):
            return value.rstrip(" ")
        if kind == "other" and col is not None:
            return _respelled(col, value)
    except (ValueError, TypeError):
        pass  # a value the column should not hold: compare it as written
    if isinstance(value, dict | list):
        return canonical_json(value)
    return value


def same(col: ColumnInfo | None, a: Any, b: Any) -> bool:
    """NULL-safe equality by meaning for one column."""
    return bool(normalize(col, a) == normalize(col, b))


# --- database values: images <-> driver values (SqlTarget) ---------------------------------

Dialect = Literal["sqlite", "postgresql", "mysql"]


def _b64(raw: bytes | bytearray | memoryview) -> dict[str, str]:
    return {"$b64": base64.b64encode(bytes(raw)).decode("ascii")}


def _decimal_image(value: Decimal) -> str:
    return str(value)  # keeps the scale: Decimal('10.50') -> '10.50'


def _float_image(value: float) -> float | str:
    # JSON has no NaN/Infinity; their SQL spellings convert back through ``to_db``.
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def float32_image(value: float | None) -> float | str | None:
    """A single-precision value read widened to double, as the shortest decimal that reads
    back to the same float32 (what PostgreSQL prints for ``real``)."""
    if value is None or not math.isfinite(value):
        return None if value is None else _float_image(value)
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == packed:
            return candidate
    return value


def _duration_image(value: dt.timedelta) -> str:
    """MariaDB TIME comes back as a timedelta (it may be negative or past 24 h)."""
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    seconds, micros = divmod(
        value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds, 1_000_000
    )
    hours, rest = divmod(seconds, 3600)
    text = f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{text}.{micros:06d}" if micros else text


def _isoformat(value: dt.date | dt.time) -> str:
    return value.isoformat()


_FROM_DB: dict[type, Callable[[Any], Any]] = {
    Decimal: _decimal_image,
    float: _float_image,
    dt.datetime: _isoformat,
    dt.date: _isoformat,
    dt.time: _isoformat,
    dt.timedelta: _duration_image,
    bytes: _b64,
    bytearray: _b64,
    memoryview: _b64,
    uuid.UUID: str,
}
_PLAIN = frozenset({str, int, bool, type(None)})


def from_db(col: ColumnInfo | None, raw: Any) -> Any:
    """The canonical image value of a raw driver value (read without type processing).

    Exact by construction: SQLite's stored int/float/str/bytes are kept as they are,
    PostgreSQL/MariaDB decimals keep their scale, timestamps their microseconds and offset.
    """
    kind = type(raw)
    if kind in _PLAIN:
        return raw
    convert = _FROM_DB.get(kind)
    if convert is not None:
        return convert(raw)
    if isinstance(raw, list | dict):
        return raw
    try:
        return jsonable(raw)
    except (TypeError, ValueError):
        return str(raw)


def to_db(col: ColumnInfo, value: Any, dialect: Dialect) -> Any:
    """The bind parameter for an image value: what ``from_db`` read is written back as it was.

    SQLite gets the JSON scalars as they are (its storage classes are what was read);
    PostgreSQL and MariaDB get Decimal / datetime / date / time objects. A value that does not
    parse is passed through unchanged, so the database (not this layer) judges it.
    """
    if value is None:
        return None
    kind = col.kind
    if kind == "json":
        return value if isinstance(value, str) else canonical_json(value)
    if isinstance(value, dict):
        if set(value) == {"$b64"}:
            return base64.b64decode(value["$b64"])
        return canonical_json(value)
    if isinstance(value, list):
        return canonical_json(value)
    try:
        if kind == "float" and isinstance(value, str):
            return float(value)  # "NaN", "Infinity" (see _float_image)
        if dialect == "sqlite":
            return str(value) if isinstance(value, Decimal) else value
        if kind == "decimal" and not isinstance(value, bool | Decimal):
            return _decimal(value)
        if kind == "datetime" and isinstance(value, str):
            moment = _datetime(value)
            if dialect == "mysql" and moment.tzinfo is not None:
                # MariaDB literals carry no offset; the session time zone is UTC.
                moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
            return moment
        if kind == "date" and isinstance(value, str):
            return dt.date.fromisoformat(value)
        if kind == "time" and isinstance(value, str) and dialect == "postgresql":
            return dt.time.fromisoformat(value)  # MariaDB TIME takes the text (may pass 24 h)
        if kind == "bool" and dialect == "postgresql" and not isinstance(value, bool):
            return coerce(col, value)
        if kind == "text" and dialect == "postgresql" and not isinstance(value, str):
            return str(value)  # PostgreSQL will not compare text with a number
    except ValueError:
        pass
    return value


def passthrough(col: ColumnInfo, dialect: Dialect) -> frozenset[type]:
    """Types whose values ``to_db`` returns unchanged for ``col`` (lets the hot path skip it)."""
    kind = col.kind
    if kind == "json":
        return frozenset({type(None), str})
    if dialect == "sqlite":
        plain = {type(None), int, float, bool, bytes}
        return frozenset(plain if kind == "float" else plain | {str})
    types: set[type] = {type(None)}
    if kind in ("text", "other"):
        types.add(str)
    if kind in ("int", "other"):
        types.add(int)
    if kind == "bool":
        types.add(bool)
    return frozenset(types)


def key_tuple(
    info: TableInfo, key_columns: Sequence[str], row_or_key: Mapping[str, Any]
) -> KeyTuple:
    """The one way to build a row's key: ``normalize``d values in ``key_columns`` order."""
    cols = info.columns
    if len(key_columns) == 1:  # the common case, without the generator
        c = key_columns[0]
        return (_key_part(cols.get(c), row_or_key.get(c)),)
    return tuple(_key_part(cols.get(c), row_or_key.get(c)) for c in key_columns)


def _key_part(col: ColumnInfo | None, value: Any) -> Any:
    # Fast paths for the common keys; the result is exactly ``normalize``'s.
    kind = type(value)
    if col is not None:
        if kind is int and col.kind == "int":
            return value
        if kind is str and col.kind == "text" and not _padded(col):
            return value
    return normalize(col, value)
