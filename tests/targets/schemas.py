"""Test tables per dialect: every column kind, with awkward values that must round-trip."""

from __future__ import annotations

from typing import Any

KINDS_DDL: dict[str, list[str]] = {
    "sqlite": [
        """CREATE TABLE kinds (
             id INTEGER PRIMARY KEY, i BIGINT, d NUMERIC(10, 2), dn DECIMAL, f REAL,
             t TEXT, v VARCHAR(20), b BOOLEAN, dt DATE, ts TIMESTAMP, tm TIME, bl BLOB,
             j JSON, x)""",
    ],
    "postgresql": [
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
        """CREATE TABLE kinds (
             id integer PRIMARY KEY, i bigint, d numeric(10, 2), dn numeric,
             f double precision, r real, t text, v varchar(20), c char(5), b boolean,
             dt date, ts timestamp(6), tz timestamptz, tm time, ttz timetz, bl bytea,
             j json, jb jsonb, iv interval, u uuid, arr integer[], e mood,
             g bigint GENERATED ALWAYS AS (i * 2) STORED)""",
    ],
    "mysql": [
        """CREATE TABLE kinds (
             id int PRIMARY KEY, i bigint, d decimal(10, 2), f double, r float, t text,
             v varchar(20), b tinyint(1), bo boolean, dt date, ts datetime(6),
             tsp timestamp(6) NULL, tm time(6), bl blob, vb varbinary(10), bt bit(3),
             j json, e enum('x', 'y'), y year, g bigint AS (i * 2) VIRTUAL)""",
    ],
}

KINDS: dict[str, dict[str, str]] = {
    "sqlite": {
        "id": "int",
        "i": "int",
        "d": "decimal",
        "dn": "decimal",
        "f": "float",
        "t": "text",
        "v": "text",
        "b": "bool",
        "dt": "date",
        "ts": "datetime",
        "tm": "time",
        "bl": "bytes",
        "j": "json",
        "x": "other",
    },
    "postgresql": {
        "id": "int",
        "i": "int",
        "d": "decimal",
        "dn": "decimal",
        "f": "float",
        "r": "float",
        "t": "text",
        "v": "text",
        "c": "text",
        "b": "bool",
        "dt": "date",
        "ts": "datetime",
        "tz": "datetime",
        "tm": "time",
        "ttz": "time",
        "bl": "bytes",
        "j": "json",
        "jb": "json",
        "iv": "other",
        "u": "other",
        "arr": "other",
        "e": "text",
        "g": "int",
    },
    "mysql": {
        "id": "int",
        "i": "int",
        "d": "decimal",
        "f": "float",
        "r": "float",
        "t": "text",
        "v": "text",
        "b": "bool",
        "bo": "bool",
        "dt": "date",
        "ts": "datetime",
        "tsp": "datetime",
        "tm": "time",
        "bl": "bytes",
        "vb": "bytes",
        "bt": "bytes",
        "j": "json",
        "e": "text",
        "y": "int",
        "g": "int",
    },
}

# Rows inserted with raw SQL, so the database stores them its own way.
KINDS_ROWS: dict[str, list[str]] = {
    "sqlite": [
        # NUMERIC affinity: '10.50' is stored as REAL 10.5, '10.00' as INTEGER 10.
        """INSERT INTO kinds VALUES (1, 9007199254740993, '10.50', '1.25', 0.1, '', 'é😀',
             1, '2026-02-28', '2026-01-01 10:00:00.123456', '23:59:59.999999',
             X'00FF10', '{"a":  1, "b": [1, 2]}', 5)""",
        """INSERT INTO kinds VALUES (2, NULL, '10.00', 'abc', 1e-300, NULL, 'x', 0,
             NULL, '2026-03-29T01:30:00+02:00', NULL, X'', NULL, '5')""",
        """INSERT INTO kinds VALUES (3, -1, -0.5, NULL, NULL, 'trailing  ', NULL, NULL,
             '2026-12-31', '2026-12-31 23:59:59', '00:00', NULL, '[]', X'01')""",
    ],
    "postgresql": [
        """INSERT INTO kinds (id, i, d, dn, f, r, t, v, c, b, dt, ts, tz, tm, ttz, bl, j, jb,
             iv, u, arr, e) VALUES (1, 9007199254740993, 10.50, 1.000000000000000000001,
             0.1, 1.2345678, '', 'é😀', 'ab', true, '2026-02-28',
             '2026-01-01 10:00:00.123456', '2026-03-29 01:30:00.000001+02',
             '23:59:59.999999', '10:00:00+05:30', '\\x00ff10', '{"b":  2, "a": 1}',
             '{"b": 2, "a": [1, 2]}', '1 mon 2 days 03:04:05.000006',
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', 'happy')""",
        """INSERT INTO kinds (id, i, d, dn, f, r, t, v, c, b) VALUES
             (2, NULL, 0.00, -0.10, 'Infinity', 'NaN', NULL, 'x', NULL, false)""",
        """INSERT INTO kinds (id, d, t, ts, tz) VALUES
             (3, -0.5, 'trailing  ', '2026-12-31 23:59:59', '2026-12-31 23:59:59-08')""",
    ],
    "mysql": [
        """INSERT INTO kinds (id, i, d, f, r, t, v, b, bo, dt, ts, tsp, tm, bl, vb, bt, j, e,
             y) VALUES (1, 9007199254740993, 10.50, 0.1, 1.2345678, '', 'é😀', 5, 1,
             '2026-02-28', '2026-01-01 10:00:00.000001', '2026-03-29 01:30:00.5',
             '-12:30:00.5', X'00FF10', X'00', b'101', '{"a":  1}', 'y', 2024)""",
        """INSERT INTO kinds (id, i, d, f, r, t, v, b, tm, bl) VALUES
             (2, NULL, 0.00, 1e-300, 3.4e38, NULL, 'x', 0, '838:59:59', X'')""",
        """INSERT INTO kinds (id, d, t, ts) VALUES (3, -0.5, 'trailing  ', '2026-12-31
             23:59:59')""",
    ],
}


def changed(dialect: str, row: dict[str, Any]) -> dict[str, Any]:
    """New values for every writable non-key column (an out-of-band batch to undo)."""
    common: dict[str, Any] = {
        "i": 7,
        "d": "1.10",
        "t": "changed",
        "v": None,
        "dt": "2027-01-01",
        "ts": "2027-01-01T00:00:00",
        "tm": "01:02:03",
        "bl": {"$b64": "AQ=="},
    }
    extra: dict[str, dict[str, Any]] = {
        "sqlite": {"dn": "2", "f": 2.5, "b": True, "j": {"z": 1}, "x": "other"},
        "postgresql": {
            "dn": "2",
            "f": 2.5,
            "r": 2.5,
            "c": "zz",
            "b": True,
            "tz": "2027-01-01T00:00:00Z",
            "ttz": "01:02:03+01:00",
            "j": [1],
            "jb": {"z": None},
            "iv": "1 day",
            "u": "00000000-0000-0000-0000-000000000001",
            "arr": "{9}",
            "e": "sad",
        },
        "mysql": {
            "f": 2.5,
            "r": 2.5,
            "b": False,
            "bo": False,
            "tsp": "2027-01-01T00:00:00Z",
            "vb": {"$b64": "AQ=="},
            "bt": {"$b64": "Aw=="},
            "j": {"z": 1},
            "e": "x",
            "y": 2030,
        },
    }
    new = {**common, **extra[dialect]}
    return {c: v for c, v in new.items() if c in row}
