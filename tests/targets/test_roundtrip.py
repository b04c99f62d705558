"""Exactness: what a rollback writes back leaves the database byte-for-byte as it was."""

from __future__ import annotations

from typing import Any

from console.canonical import jsonable
from console.targets.sql import SqlTarget
from console.targets.types import Row, RowWrite

from .helpers import dialect_of, dump, run_sql
from .schemas import KINDS_DDL, KINDS_ROWS, changed

KEYS = [{"id": 1}, {"id": 2}, {"id": 3}]


def _setup(url: str) -> str:
    d = dialect_of(url)
    run_sql(url, KINDS_DDL[d] + KINDS_ROWS[d])
    return d


def _images(target: SqlTarget) -> dict[int, Row]:
    found = target.read_rows("kinds", ["id"], KEYS)
    # Images live in the journal as canonical JSON: use them only after that trip.
    return {int(row["id"]): jsonable(row) for row in found.values()}


def test_images_are_exact(target: SqlTarget, target_url: str) -> None:
    d = _setup(target_url)
    rows = _images(target)
    expected: dict[str, dict[str, Any]] = {
        "sqlite": {
            "d": 10.5,
            "dn": 1.25,
            "f": 0.1,
            "t": "",
            "v": "é😀",
            "b": 1,
            "ts": "2026-01-01 10:00:00.123456",
            "bl": {"$b64": "AP8Q"},
            "j": '{"a":  1, "b": [1, 2]}',
            "x": 5,
            "i": 9007199254740993,
        },
        "postgresql": {
            "d": "10.50",
            "dn": "1.000000000000000000001",
            "f": 0.1,
            "r": 1.2345678,
            "t": "",
            "c": "ab   ",
            "b": True,
            "ts": "2026-01-01T10:00:00.123456",
            "tz": "2026-03-28T23:30:00.000001+00:00",
            "tm": "23:59:59.999999",
            "ttz": "10:00:00+05:30",
            "bl": {"$b64": "AP8Q"},
            "j": '{"b":  2, "a": 1}',
            "jb": '{"a": [1, 2], "b": 2}',
            "iv": "1 mon 2 days 03:04:05.000006",
            "arr": "{1,NULL,3}",
            "e": "happy",
            "g": 18014398509481986,
        },
        "mysql": {
            "d": "10.50",
            "f": 0.1,
            "r": 1.2345678,
            "t": "",
            "v": "é😀",
            "b": 5,
            "ts": "2026-01-01T10:00:00.000001",
            "tsp": "2026-03-29T01:30:00.500000",
            "tm": "-12:30:00.500000",
            "bt": {"$b64": "BQ=="},
            "j": '{"a":  1}',
            "y": 2024,
        },
    }[d]
    assert {c: rows[1][c] for c in expected} == expected
    if d == "sqlite":  # storage classes as found: INTEGER 10, TEXT 'abc', TEXT timestamp
        assert (rows[2]["d"], rows[2]["dn"], rows[2]["x"]) == (10, "abc", "5")
        assert rows[2]["ts"] == "2026-03-29T01:30:00+02:00"
    if d == "postgresql":
        assert (rows[2]["d"], rows[2]["dn"], rows[2]["f"], rows[2]["r"]) == (
            "0.00",
            "-0.10",
            "Infinity",
            "NaN",
        )
    if d == "mysql":
        assert (rows[2]["tm"], rows[2]["bl"], rows[2]["r"]) == ("838:59:59", {"$b64": ""}, 3.4e38)
    assert rows[3]["t"] == "trailing  "


def test_update_then_rollback_is_byte_identical(target: SqlTarget, target_url: str) -> None:
    d = _setup(target_url)
    before = dump(target_url, "kinds")
    base = _images(target)
    forward = [RowWrite(n, "update", {"id": n}, base[n], changed(d, base[n])) for n in (1, 2, 3)]
    assert {o.status for o in target.write_segment("kinds", ["id"], forward)} == {"applied"}
    assert dump(target_url, "kinds") != before
    after = _images(target)
    inverse = [
        RowWrite(
            10 + n, "update", {"id": n}, after[n], {c: base[n][c] for c in changed(d, base[n])}
        )
        for n in (3, 2, 1)
    ]
    assert {o.status for o in target.write_segment("kinds", ["id"], inverse)} == {"applied"}
    assert dump(target_url, "kinds") == before


def test_delete_then_reinsert_is_byte_identical(target: SqlTarget, target_url: str) -> None:
    _setup(target_url)
    before = dump(target_url, "kinds")
    base = _images(target)
    deletes = [RowWrite(n, "delete", {"id": n}, base[n], None) for n in (1, 2, 3)]
    assert {o.status for o in target.write_segment("kinds", ["id"], deletes)} == {"applied"}
    assert dump(target_url, "kinds") == []
    # Generated columns are part of the image but are never written back.
    inserts = [RowWrite(10 + n, "insert", {"id": n}, None, base[n]) for n in (3, 2, 1)]
    assert {o.status for o in target.write_segment("kinds", ["id"], inserts)} == {"applied"}
    assert dump(target_url, "kinds") == before
    assert _images(target) == base


def test_changed_values_read_back_as_written(target: SqlTarget, target_url: str) -> None:
    """In-doubt resolution compares the target with the after-image: they must be `same`."""
    d = _setup(target_url)
    base = _images(target)
    info = target.table("kinds")
    new = changed(d, base[1])
    target.write_segment("kinds", ["id"], [RowWrite(1, "update", {"id": 1}, base[1], new)])
    now = _images(target)[1]
    from console.targets.values import same

    assert [c for c, v in new.items() if not same(info.columns[c], now[c], v)] == []
