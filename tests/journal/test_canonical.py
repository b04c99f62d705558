"""Canonical JSON: the one encoding behind hashes, digests and stored images (no database)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.canonical import (
    canonical_bytes,
    canonical_json,
    digest,
    jsonable,
    loads,
    mask_url,
    sha256_hex,
)

# JSON values whose text has one meaning: no floats (their repr is canonical in Python, but
# float equality is not what a digest should hinge on), no lone surrogates (not UTF-8).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


def test_sorted_keys_no_whitespace_utf8() -> None:
    value = {"b": 1, "a": {"z": [1, 2], "y": None}, "é": "ünïcødé ✓ 螺丝"}
    text = canonical_json(value)
    assert text == '{"a":{"y":null,"z":[1,2]},"b":1,"é":"ünïcødé ✓ 螺丝"}'
    assert canonical_bytes(value) == text.encode("utf-8")
    assert b"\\u" not in canonical_bytes(value)  # UTF-8, not ASCII escapes


def test_insertion_order_does_not_matter() -> None:
    one = {"x": 1, "y": {"b": 2, "a": 1}}
    two = {"y": {"a": 1, "b": 2}, "x": 1}
    assert canonical_json(one) == canonical_json(two)
    assert digest(one) == digest(two)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (Decimal("10.50"), '"10.50"'),  # exact: the scale is kept
        (Decimal("10.5"), '"10.5"'),
        (Decimal("-0.000001"), '"-0.000001"'),
        (Decimal("1E+3"), '"1E+3"'),
        (
            dt.datetime(2026, 11, 27, 2, 13, 0, 5, tzinfo=dt.UTC),
            '"2026-11-27T02:13:00.000005+00:00"',
        ),
        (dt.datetime(2026, 11, 27, 2, 13), '"2026-11-27T02:13:00"'),
        (dt.date(2026, 2, 28), '"2026-02-28"'),
        (dt.time(23, 59, 1), '"23:59:01"'),
        (b"\x00\x01\xff", '{"$b64":"AAH/"}'),
        (bytearray(b"ab"), '{"$b64":"YWI="}'),
        (memoryview(b"ab"), '{"$b64":"YWI="}'),
        (uuid.UUID(int=1), '"00000000-0000-0000-0000-000000000001"'),
        ((1, "a"), '[1,"a"]'),
        ({"b", "a", "c"}, '["a","b","c"]'),
        (frozenset({3, 1, 2}), "[1,2,3]"),
        (True, "true"),
        (None, "null"),
        ('quote " and \\ and \n', '"quote \\" and \\\\ and \\n"'),
    ],
)
def test_special_values(value: Any, encoded: str) -> None:
    assert canonical_json(value) == encoded


def test_decimals_are_strings_not_floats() -> None:
    assert jsonable({"price": Decimal("0.10")}) == {"price": "0.10"}
    assert canonical_json(Decimal("0.1") + Decimal("0.2")) == '"0.3"'


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), math.nan, math.inf])
def test_non_finite_numbers_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": bad})


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError, match="object is not JSON-serialisable"):
        canonical_json({"x": object()})


@settings(max_examples=120)
@given(JSON)
def test_round_trip_and_idempotence(value: Any) -> None:
    text = canonical_json(value)
    assert loads(text) == value
    assert canonical_json(json.loads(text)) == text
    assert jsonable(value) == value


@settings(max_examples=100)
@given(st.dictionaries(TEXT, st.integers() | TEXT, max_size=8), st.randoms())
def test_any_key_order_gives_the_same_bytes(value: dict[str, Any], rnd: Any) -> None:
    items = list(value.items())
    rnd.shuffle(items)
    assert canonical_bytes(dict(items)) == canonical_bytes(value)


def test_stable_across_processes_and_hash_seeds() -> None:
    """Sets and dicts iterate differently under another PYTHONHASHSEED; the bytes must not."""
    program = (
        "import datetime as dt, decimal, sys\n"
        "from console.canonical import canonical_json\n"
        "value = {'s': {'pear', 'apple', 'fig', 'kiwi', 'plum'}, 'n': {3, 1, 2},\n"
        "         'd': decimal.Decimal('1.10'), 'b': b'\\x00', 't': dt.date(2026, 1, 1),\n"
        "         'k': {str(i): i for i in range(20)}}\n"
        "sys.stdout.write(canonical_json(value))\n"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
        ).stdout
        outputs.add(out)
    assert len(outputs) == 1
    [text] = outputs
    assert text.startswith('{"b":{"$b64":"AA=="},"d":"1.10","k":{"0":0,"1":1,"10":10')
    assert '"s":["apple","fig","kiwi","pear","plum"]' in text


def test_digest_is_sha256_of_the_canonical_bytes() -> None:
    value = {"b": [1, 2], "a": "x"}
    assert digest(value) == sha256_hex(b'{"a":"x","b":[1,2]}')
    assert sha256_hex("abc") == sha256_hex(b"abc")
    assert sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql+psycopg://crm:s3cret@db.internal/crm",
            "postgresql+psycopg://crm:***@db.internal/crm",
        ),
        ("postgresql://crm@db/crm", "postgresql://crm@db/crm"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
        ("mysql+pymysql://u:p@ss:w@h/db", "mysql+pymysql://u:***@h/db"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
