"""Image <-> driver value conversion, key tuples, and JSON comparison (no database)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from console.canonical import canonical_json, jsonable
from console.targets.types import ColumnInfo, ColumnKind, TableInfo
from console.targets.values import (
    coerce,
    float32_image,
    from_db,
    key_tuple,
    normalize,
    same,
    to_db,
)


def col(kind: ColumnKind, name: str = "c", scale: int | None = None) -> ColumnInfo:
    return ColumnInfo(name=name, kind=kind, nullable=True, scale=scale)


@pytest.mark.parametrize(
    ("raw", "image"),
    [
        (Decimal("10.50"), "10.50"),
        (Decimal("-0.000"), "-0.000"),
        (dt.datetime(2026, 3, 29, 1, 30, 0, 1), "2026-03-29T01:30:00.000001"),
        (
            dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC),
            "2026-01-01T08:00:00+00:00",
        ),
        (dt.date(2026, 2, 28), "2026-02-28"),
        (dt.time(23, 59, 59, 999999), "23:59:59.999999"),
        (dt.timedelta(hours=-12, minutes=-30, microseconds=-500000), "-12:30:00.500000"),
        (dt.timedelta(hours=838, minutes=59, seconds=59), "838:59:59"),
        (b"\x00\xff", {"$b64": "AP8="}),
        (memoryview(b"ab"), {"$b64": "YWI="}),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (float("inf"), "Infinity"),
        (0.1, 0.1),
        ("", ""),
        (None, None),
    ],
)
def test_from_db_is_canonical_and_stable_through_json(raw: object, image: object) -> None:
    assert from_db(None, raw) == image
    assert jsonable(from_db(None, raw)) == image  # survives the journal unchanged


def test_to_db_inverts_from_db_per_dialect() -> None:
    moment = dt.datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    image = from_db(None, moment)
    assert to_db(col("datetime"), image, "postgresql") == moment
    # MariaDB literals carry no offset: converted to UTC (the session time zone).
    assert to_db(col("datetime"), image, "mysql") == dt.datetime(2026, 1, 1, 8, 0, 0, 123456)
    assert to_db(col("datetime"), image, "sqlite") == image  # SQLite: the text as stored
    assert to_db(col("decimal"), "10.50", "postgresql") == Decimal("10.50")
    assert str(to_db(col("decimal"), "10.50", "mysql")) == "10.50"
    assert to_db(col("decimal"), 10.5, "sqlite") == 10.5
    assert to_db(col("bytes"), {"$b64": "AP8="}, "sqlite") == b"\x00\xff"
    assert to_db(col("time"), "10:00:00.5", "postgresql") == dt.time(10, 0, 0, 500000)
    assert to_db(col("time"), "-12:30:00", "mysql") == "-12:30:00"
    assert to_db(col("date"), "2026-02-28", "postgresql") == dt.date(2026, 2, 28)
    assert to_db(col("bool"), 1, "postgresql") is True
    assert to_db(col("float"), "Infinity", "postgresql") == float("inf")
    assert to_db(col("json"), {"b": 1, "a": [1]}, "sqlite") == '{"a":[1],"b":1}'
    assert to_db(col("json"), '{"b":  1}', "postgresql") == '{"b":  1}'  # text kept as is
    assert to_db(col("text"), "", "mysql") == ""
    assert to_db(col("int"), None, "postgresql") is None
    # What does not parse goes to the database unchanged, to be judged there.
    assert to_db(col("date"), "0000-00-00", "mysql") == "0000-00-00"


def test_float32_shortest_text() -> None:
    widened = 1.2345677614212036  # float32(1.2345678) read as DOUBLE
    assert float32_image(widened) == 1.2345678
    assert float32_image(0.10000000149011612) == 0.1
    assert float32_image(None) is None


def test_key_tuple_normalizes_in_key_order() -> None:
    info = TableInfo(
        "t",
        {"sku": col("text", "sku"), "n": col("decimal", "n"), "at": col("datetime", "at")},
        ("sku",),
    )
    a = key_tuple(info, ["n", "sku"], {"sku": "A", "n": "10.50"})
    b = key_tuple(info, ["n", "sku"], {"sku": "A", "n": 10.5, "other": 1})
    assert a == b == (Decimal("10.5"), "A")
    c = key_tuple(info, ["at"], {"at": "2026-01-01 10:00:00+02:00"})
    assert c == key_tuple(info, ["at"], {"at": "2026-01-01T08:00:00"})


def test_json_text_and_value_compare_by_meaning() -> None:
    j = col("json")
    assert same(j, '{"b": 2,  "a": 1}', {"a": 1, "b": 2})
    assert same(j, "1", 1)
    assert not same(j, '{"a": 1}', {"a": 2})
    assert normalize(j, "not json") == "not json"
    assert normalize(j, [1, 2]) == canonical_json([1, 2])


def test_char_padding_carries_no_meaning() -> None:
    padded = ColumnInfo("c", "text", True, type_name="CHAR(5)")
    assert same(padded, "ab   ", "ab")
    assert not same(col("text"), "ab   ", "ab")  # VARCHAR/TEXT keep trailing blanks


def test_decimals_compare_and_coerce_past_28_digits() -> None:
    """Python's default context rounds to 28 digits: two values that differ in the 30th
    digit must not compare equal (a conflict would be hidden), and a NUMERIC(30, 10) value
    must not be refused for its length."""
    d = col("decimal", scale=None)
    assert not same(d, "1.00000000000000000000000000001", "1.00000000000000000000000000002")
    assert same(d, "1.000000000000000000000000000010", Decimal("1.00000000000000000000000000001"))
    wide = ColumnInfo("n", "decimal", True, scale=10, digits=30, type_name="NUMERIC(30, 10)")
    assert coerce(wide, "1234567890123456789.1234567") == "1234567890123456789.1234567"
    with pytest.raises(ValueError, match="21 digits before the decimal point; NUMERIC"):
        coerce(wide, "123456789012345678901")
    with pytest.raises(ValueError, match="more than 10 decimal places"):
        coerce(wide, "1.12345678901")


def test_values_past_the_columns_limits_are_refused() -> None:
    short = ColumnInfo("s", "text", True, type_name="VARCHAR(5)", length=5)
    assert coerce(short, "héllo") == "héllo"  # characters, not bytes
    with pytest.raises(ValueError, match="is 6 characters long; VARCHAR\\(5\\) holds 5"):
        coerce(short, "toolong"[:6])
    small = ColumnInfo("i", "int", True, type_name="SMALLINT", int_range=(-32768, 32767))
    assert coerce(small, "-32768") == -32768
    with pytest.raises(ValueError, match="40000 is out of range for SMALLINT"):
        coerce(small, 40000)
    free = ColumnInfo("t", "text", True)  # SQLite: no limit enforced, none checked
    assert coerce(free, "x" * 10_000) == "x" * 10_000


def test_an_unsigned_bigint_takes_its_whole_range() -> None:
    from console.changes.validate import convert

    u64 = ColumnInfo("u", "int", True, type_name="BIGINT UNSIGNED", int_range=(0, 2**64 - 1))
    assert convert(u64, "18446744073709551615") == 2**64 - 1
    assert convert(u64, 2**64 - 1) == 2**64 - 1
    assert "out of range" in getattr(convert(u64, -1), "message", "")
    signed = ColumnInfo("i", "int", True, type_name="INTEGER")  # SQLite: 64-bit by the driver
    assert "out of range" in getattr(convert(signed, 2**63), "message", "")
