"""Reflection: column kinds per database, keys, and names that never reach SQL unchecked."""

from __future__ import annotations

import pytest

from console.errors import BadInput
from console.targets.sql import SqlTarget
from console.targets.types import RowWrite

from .helpers import dialect_of, dump, run_sql
from .schemas import KINDS, KINDS_DDL


def test_kinds(target: SqlTarget, target_url: str) -> None:
    d = dialect_of(target_url)
    run_sql(target_url, KINDS_DDL[d])
    info = target.table("kinds")
    assert {c: i.kind for c, i in info.columns.items()} == KINDS[d]
    assert list(info.columns) == list(KINDS[d])  # table order
    assert info.primary_key == ("id",)
    assert info.columns["id"].primary_key
    assert info.columns["d"].scale == 2
    assert info.columns["d"].type_name.upper().startswith(("NUMERIC", "DECIMAL"))
    assert target.table("kinds") is info  # cached
    if d != "sqlite":
        assert info.columns["g"].has_default  # generated: never required on insert


def test_keys_defaults_and_unique_keys(target: SqlTarget, target_url: str) -> None:
    d = dialect_of(target_url)
    auto = {
        "sqlite": "INTEGER PRIMARY KEY",
        "postgresql": "serial PRIMARY KEY",
        "mysql": "int AUTO_INCREMENT PRIMARY KEY",
    }[d]
    run_sql(
        target_url,
        [
            f"""CREATE TABLE customers (id {auto}, region VARCHAR(10) NOT NULL,
                 email VARCHAR(100) NOT NULL, status VARCHAR(10) DEFAULT 'new',
                 CONSTRAINT uq_email UNIQUE (region, email))""",
            "CREATE UNIQUE INDEX ix_status ON customers (status, email)",
        ],
    )
    info = target.table("customers")
    assert info.columns["id"].has_default
    assert info.columns["status"].has_default
    assert not info.columns["email"].has_default
    assert not info.columns["email"].nullable
    keys = target.unique_keys("customers")
    assert keys[0] == ("id",)
    assert {("region", "email"), ("status", "email")} <= set(keys)


def test_unknown_table_is_bad_input(target: SqlTarget, target_url: str) -> None:
    run_sql(target_url, ["CREATE TABLE products (id INTEGER PRIMARY KEY)"])
    with pytest.raises(BadInput) as err:
        target.table("prodcts")
    assert err.value.message.startswith(
        f"table 'prodcts' does not exist in {target.display_url}; check the name"
    )
    assert "did you mean 'products'" in err.value.message


def test_hostile_names_are_only_names(target: SqlTarget, target_url: str) -> None:
    run_sql(
        target_url,
        [
            "CREATE TABLE y (id INTEGER PRIMARY KEY, name VARCHAR(40) UNIQUE)",
            "INSERT INTO y VALUES (1, 'a')",
        ],
    )
    before = dump(target_url, "y")
    for name in ['x"; DROP TABLE y; --', "y; DROP TABLE y", "y`; DROP TABLE y; --"]:
        with pytest.raises(BadInput, match="does not exist"):
            target.table(name)
    with pytest.raises(BadInput, match="key column"):
        target.read_rows("y", ['id" OR 1=1 --'], [{"id": 1}])
    with pytest.raises(BadInput, match="not a numeric column"):
        target.aggregates("y", ["id); DROP TABLE y; --"])
    # Values are bound, never spliced into SQL.
    hostile = [{"name": "a' OR '1'='1"}, {"name": "a'; DROP TABLE y; --"}]
    assert target.read_rows("y", ["name"], hostile) == {}
    assert dump(target_url, "y") == before


def test_identity_always_is_written_back(pg_url: str) -> None:
    """Rolling back a delete re-inserts the row with its GENERATED ALWAYS identity."""
    run_sql(
        pg_url,
        [
            "CREATE TABLE notes (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)",
            "INSERT INTO notes (body) VALUES ('a'), ('b')",
        ],
    )
    with SqlTarget(pg_url) as target:
        before = dump(pg_url, "notes")
        row = target.read_rows("notes", ["id"], [{"id": 2}])[(2,)]
        target.write_segment("notes", ["id"], [RowWrite(1, "delete", {"id": 2}, row, None)])
        target.write_segment("notes", ["id"], [RowWrite(2, "insert", {"id": 2}, None, row)])
        assert dump(pg_url, "notes") == before


def test_quoted_identifiers_work(target: SqlTarget, target_url: str) -> None:
    """Reserved words, spaces and quotes in real names are quoted, not refused."""
    q = "`" if dialect_of(target_url) == "mysql" else '"'
    name = "Order Lines"
    run_sql(
        target_url,
        [
            f"CREATE TABLE {q}{name}{q} ({q}order{q} INTEGER PRIMARY KEY, "
            f"{q}Select{q} VARCHAR(10), {q}a%b{q} VARCHAR(10))",
        ],
    )
    out = target.write_segment(
        name,
        ["order"],
        [RowWrite(1, "insert", {"order": 1}, None, {"order": 1, "Select": "x", "a%b": "%s"})],
    )
    assert out[0].status == "applied"
    rows = target.read_rows(name, ["order"], [{"order": 1}])
    assert rows[(1,)] == {"order": 1, "Select": "x", "a%b": "%s"}
    assert [r["a%b"] for r in target.scan(name, ["order"])] == ["%s"]


def test_write_limits_are_reflected_where_enforced(target: SqlTarget, target_url: str) -> None:
    d = dialect_of(target_url)
    unsigned = "INT UNSIGNED" if d == "mysql" else "BIGINT"
    run_sql(
        target_url,
        [
            f"""CREATE TABLE limits (id INTEGER PRIMARY KEY, s VARCHAR(5), n NUMERIC(30, 10),
                 sm SMALLINT, u {unsigned}, t TEXT)"""
        ],
    )
    cols = target.table("limits").columns
    if d == "sqlite":  # SQLite enforces none of them: nothing to check
        assert all(c.length is None and c.digits is None for c in cols.values())
        assert all(c.int_range is None for c in cols.values())
        return
    assert cols["s"].length == 5 and cols["t"].length is None
    assert cols["n"].digits == 30 and cols["n"].scale == 10
    assert cols["sm"].int_range == (-32768, 32767)
    assert cols["id"].int_range == (-(2**31), 2**31 - 1)
    expected = (0, 2**32 - 1) if d == "mysql" else (-(2**63), 2**63 - 1)
    assert cols["u"].int_range == expected
