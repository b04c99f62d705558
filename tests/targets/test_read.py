"""Reading: keyed rows, streamed scans, exact aggregates, and read-only invariant queries."""

from __future__ import annotations

import pytest

from console.errors import BadInput
from console.targets.sql import SqlTarget
from console.targets.types import RowWrite

from .helpers import dialect_of, dump, quote, run_sql


def _ledger(url: str, rows: int = 0) -> None:
    run_sql(
        url,
        [
            """CREATE TABLE ledger (region VARCHAR(5) NOT NULL, n INTEGER NOT NULL,
                 amount NUMERIC(12, 2), qty INTEGER, ratio DOUBLE PRECISION, tag VARCHAR(10),
                 PRIMARY KEY (region, n))""",
            """INSERT INTO ledger VALUES ('eu', 2, 10.10, 1, 0.1, 'a'), ('eu', 1, 20.20, 2, 0.2,
                 'a'), ('us', 1, 0.30, NULL, NULL, 'b'), ('ap', 7, NULL, 3, 0.3, 'b')""",
        ],
    )
    if rows:
        values = ", ".join(f"('zz', {i}, {i}.01, {i}, {i}.5, 'bulk')" for i in range(rows))
        run_sql(url, [f"INSERT INTO ledger VALUES {values}"])


def test_read_rows_returns_present_keys_only(target: SqlTarget, target_url: str) -> None:
    _ledger(target_url)
    keys = [{"region": "eu", "n": 1}, {"region": "eu", "n": 1}, {"region": "xx", "n": 1}]
    found = target.read_rows("ledger", ["region", "n"], keys)
    assert list(found) == [("eu", 1)]
    assert found[("eu", 1)]["tag"] == "a"
    assert target.read_rows("ledger", ["region", "n"], []) == {}


def test_read_rows_refuses_a_key_that_is_not_unique(target: SqlTarget, target_url: str) -> None:
    _ledger(target_url)
    with pytest.raises(BadInput, match="more than one row"):
        target.read_rows("ledger", ["tag"], [{"tag": "a"}])


def test_aggregates_are_exact(target: SqlTarget, target_url: str) -> None:
    _ledger(target_url)
    agg = target.aggregates("ledger")
    assert agg.count == 4
    # SQLite stores NUMERIC 10.10 as REAL: its SUM() rounds, ours does not.
    assert agg.sums == {"n": "11", "amount": "30.60", "qty": "6"} or (
        dialect_of(target_url) == "sqlite" and agg.sums == {"n": "11", "amount": "30.6", "qty": "6"}
    )
    ratio = target.aggregates("ledger", ["ratio"]).sums["ratio"]
    if target.dialect != "mysql":  # MariaDB sums DOUBLE in floating point
        assert ratio in ("0.6", "0.60")
    assert target.aggregates("ledger", []).as_dict() == {"count": 4, "sums": {}}
    with pytest.raises(BadInput, match="not a numeric column"):
        target.aggregates("ledger", ["tag"])


def test_aggregates_of_an_empty_table(target: SqlTarget, target_url: str) -> None:
    _ledger(target_url)
    run_sql(target_url, ["DELETE FROM ledger"])
    assert target.aggregates("ledger").as_dict() == {
        "count": 0,
        "sums": {"n": "0", "amount": "0", "qty": "0"},
    }


def test_scan_is_ordered_complete_and_streamed(target: SqlTarget, target_url: str) -> None:
    _ledger(target_url, rows=250)
    rows = list(target.scan("ledger", ["region", "n"], batch=7))
    keys = [(r["region"], r["n"]) for r in rows]
    assert keys == sorted(keys)
    assert len(rows) == 254
    assert rows[0] == target.read_rows("ledger", ["region", "n"], [rows[0]])[("ap", 7)]
    stream = target.scan("ledger", ["n"], batch=3)
    assert next(stream)["n"] == 0
    stream.close()  # an abandoned scan releases its connection
    with pytest.raises(BadInput, match="key column"):
        target.scan("ledger", ["nope"])


def test_scalar_reads(target: SqlTarget, target_url: str) -> None:
    _ledger(target_url)
    assert target.scalar("SELECT COUNT(*) FROM ledger WHERE amount < 0") == 0
    assert target.scalar("SELECT COUNT(*) FROM ledger WHERE tag LIKE 'a%'") == 2
    assert target.scalar("SELECT tag FROM ledger WHERE n = 99") is None


def test_scalar_refuses_to_write(target: SqlTarget, target_url: str) -> None:
    _ledger(target_url)
    before = dump(target_url, "ledger", "region, n")
    q = quote(target_url, "ledger")
    for sql in [
        f"INSERT INTO {q} VALUES ('xx', 1, 1, 1, 1, 'x')",
        f"DELETE FROM {q}",
        f"SELECT 1; DELETE FROM {q}",
        "COMMIT",
    ]:
        with pytest.raises(BadInput, match="invariant query failed"):
            target.scalar(sql)
    assert dump(target_url, "ledger", "region, n") == before
    # The connection it used is not left read-only.
    assert target.scalar("SELECT COUNT(*) FROM ledger") == 4


def test_values_python_cannot_hold_are_read_as_postgresql_writes_them(pg_url: str) -> None:
    """'infinity' (an open-ended valid_to), a BC date, a year past 9999: the table is read,
    such a row keeps PostgreSQL's text for the value and is written back the same."""
    run_sql(
        pg_url,
        [
            "CREATE TABLE validity (id INTEGER PRIMARY KEY, valid_to TIMESTAMP, d DATE)",
            "INSERT INTO validity VALUES (1, 'infinity', '0044-03-15 BC'), "
            "(2, '2020-01-01', '2020-01-01'), (3, '-infinity', 'infinity')",
        ],
    )
    target = SqlTarget(pg_url)
    rows = list(target.scan("validity", ["id"]))
    assert [(r["valid_to"], r["d"]) for r in rows] == [
        ("infinity", "0044-03-15 BC"), ("2020-01-01T00:00:00", "2020-01-01"),
        ("-infinity", "infinity"),
    ]  # fmt: skip
    before = rows[0]
    out = target.write_segment(
        "validity",
        ["id"],
        [RowWrite(1, "update", {"id": 1}, before, {"valid_to": "2030-01-01T00:00:00"})],
    )
    assert [o.status for o in out] == ["applied"]
    now = target.read_rows("validity", ["id"], [{"id": 1}])[(1,)]
    back = target.write_segment(
        "validity", ["id"], [RowWrite(2, "update", {"id": 1}, now, {"valid_to": "infinity"})]
    )
    assert [o.status for o in back] == ["applied"]
    assert target.read_rows("validity", ["id"], [{"id": 1}])[(1,)]["valid_to"] == "infinity"
    target.close()
