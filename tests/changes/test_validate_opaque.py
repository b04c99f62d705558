"""Values of the types backout passes through (UUID, interval, money, inet, domains) are
checked and spelled by the database itself, before anything is written: a value it would
refuse is a problem with file, line and field (exit 2), and the journal holds each value as
the column stores it, so the run's own writes never read back as someone else's."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from console.changes import coerced_operations, load_changeset, validate
from console.targets.sql import SqlTarget
from console.targets.types import TableInfo

from .test_changes_validate import one_step

Write = Callable[[str, str | bytes], Path]

DDL = [
    "CREATE DOMAIN pct AS NUMERIC CHECK (VALUE BETWEEN 0 AND 100)",
    """CREATE TABLE o (id UUID PRIMARY KEY, span INTERVAL, price MONEY, ip INET, share pct,
                       note TEXT)""",
]


@pytest.fixture
def target(pg_url: str) -> Iterator[SqlTarget]:
    eng = create_engine(pg_url)
    with eng.begin() as conn:
        for ddl in DDL:
            conn.exec_driver_sql(ddl)
    eng.dispose()
    t = SqlTarget(pg_url)
    yield t
    t.close()


def _tables(target: SqlTarget) -> Callable[[str | None, str], TableInfo]:
    return lambda _target, table: target.table(table)


UUID = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"


def test_refused_values_are_problems_with_line_and_field(
    target: SqlTarget, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (the package's ``validate`` is the function: import the module by name)
    module = importlib.import_module("console.changes.validate")
    monkeypatch.setattr(module, "SETTLE", 2)  # batches of two: problems in several
    text = one_step(
        "o",
        "[id]",
        [
            f"{{op: insert, row: {{id: {UUID}, span: 90 minutes, price: 2.5, share: 50}}}}",
            "{op: insert, row: {id: not-a-uuid, note: x}}",  # line 9: the key
            f"{{op: update, key: {{id: {UUID.lower()[:-1]}0}}, set: {{span: soon}}}}",  # 10
            "{op: update, key: {id: b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}, set: {share: 150}}",
            "{op: update, key: {id: c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}, set: {ip: 10.0.0.300}}",
        ],
    )
    found = validate(load_changeset(write("o.yaml", text)), _tables(target))
    assert [(p.line, p.field) for p in found] == [
        (9, "steps[0].operations[1].row.id"),
        (10, "steps[0].operations[2].set.span"),
        (11, "steps[0].operations[3].set.share"),
        (12, "steps[0].operations[4].set.ip"),
    ]
    assert "refuses 'not-a-uuid' for UUID (invalid input syntax for type uuid" in found[0].message
    assert 'violates check constraint "pct_check"' in found[2].message
    assert all(p.file.endswith("o.yaml") for p in found)


def test_values_are_journaled_as_the_column_stores_them(target: SqlTarget, write: Write) -> None:
    text = one_step(
        "o",
        "[id]",
        [
            f"{{op: insert, row: {{id: {UUID}, span: 90 minutes, price: 2.5, ip: 10.0.0.1}}}}",
            "{op: update, key: {id: B0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}, "
            "set: {span: P1Y2M, share: 7.50, note: P1Y2M}}",
        ],
    )
    cs = load_changeset(write("o.yaml", text))
    assert validate(cs, _tables(target)) == []
    ops = list(coerced_operations(cs.steps[0], target.table("o")))
    assert ops[0].key == {"id": UUID.lower()}
    assert ops[0].values == {
        "id": UUID.lower(),
        "span": "01:30:00",
        "price": "$2.50",
        "ip": "10.0.0.1/32",
    }
    assert ops[1].values == {"span": "1 year 2 mons", "share": "7.50", "note": "P1Y2M"}


def test_one_key_in_two_spellings_is_a_duplicate(target: SqlTarget, write: Write) -> None:
    text = one_step(
        "o",
        "[id]",
        [
            f"{{op: update, key: {{id: {UUID}}}, set: {{note: a}}}}",
            f"{{op: update, key: {{id: {UUID.lower()}}}, set: {{note: b}}}}",
        ],
    )
    cs = load_changeset(write("o.yaml", text))
    (found,) = validate(cs, _tables(target))
    assert (found.line, found.field) == (9, "steps[0].operations[1].key")
    assert "appears twice" in found.message and "first on line 8" in found.message
