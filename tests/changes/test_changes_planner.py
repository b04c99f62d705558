"""Planning: global numbering, segments within steps, idempotency keys, canonical values."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import pytest

from console.changes import idempotency_key, load_changeset, plan_segments
from console.errors import BadInput

from .conftest import Tables

Write = Callable[[str, str | bytes], Path]

TEXT = """\
changeset: plan
version: 1
options: {segment_size: 2}
steps:
  - name: prices
    table: products
    key: sku
    operations:
      - {op: update, key: {sku: A}, set: {price: "1.5"}}
      - {op: update, key: {sku: B}, set: {price: 2}}
      - {op: insert, row: {sku: C, name: c, price: 3}}
  - name: stock
    table: stock
    key: [warehouse, sku]
    operations:
      - {op: update, key: {warehouse: W, sku: A}, set: {qty: "4"}}
      - {op: delete, key: {warehouse: W, sku: B}}
      - {op: upsert, row: {sku: C, warehouse: W, qty: 6}}
      - {op: delete, key: {warehouse: W, sku: D}}
"""


def test_segments_number_globally_and_never_span_steps(write: Write, tables: Tables) -> None:
    cs = load_changeset(write("plan.yaml", TEXT))
    plan = plan_segments(cs, tables)
    assert inspect.isgenerator(plan)
    segments = list(plan)
    assert [(s.seg_no, s.step_no, s.step.name, [o.op_no for o in s.ops]) for s in segments] == [
        (1, 1, "prices", [1, 2]),
        (2, 1, "prices", [3]),
        (3, 2, "stock", [4, 5]),
        (4, 2, "stock", [6, 7]),
    ]
    ops = [o for s in segments for o in s.ops]
    assert [o.line for o in ops] == [9, 10, 11, 16, 17, 18, 19]
    assert [o.table for o in ops] == ["products"] * 3 + ["stock"] * 4
    assert [o.step_no for o in ops] == [1, 1, 1, 2, 2, 2, 2]
    assert [o.op for o in ops] == [
        "update",
        "update",
        "insert",
        "update",
        "delete",
        "upsert",
        "delete",
    ]


def test_planned_values_are_canonical(write: Write, tables: Tables) -> None:
    cs = load_changeset(write("plan.yaml", TEXT))
    ops = [o for s in plan_segments(cs, tables) for o in s.ops]
    assert ops[0].values == {"price": "1.5"}
    assert ops[1].values == {"price": "2"}
    assert ops[3].values == {"qty": 4}
    assert list(ops[5].key) == ["warehouse", "sku"]  # the step's key order, not the row's
    assert ops[5].key == {"warehouse": "W", "sku": "C"}


def test_segment_size_argument_overrides_the_option(write: Write, tables: Tables) -> None:
    cs = load_changeset(write("plan.yaml", TEXT))
    assert [len(s.ops) for s in plan_segments(cs, tables, 100)] == [3, 4]
    assert [len(s.ops) for s in plan_segments(cs, tables, 1)] == [1] * 7
    with pytest.raises(BadInput, match="at least 1"):
        next(plan_segments(cs, tables, 0))


def test_idempotency_keys(write: Write, tables: Tables) -> None:
    cs = load_changeset(write("plan.yaml", TEXT))
    ops = [o for s in plan_segments(cs, tables) for o in s.ops]
    assert ops[0].idem == idempotency_key(cs.digest, "prices", {"sku": "A"})
    assert len({o.idem for o in ops}) == len(ops)
    assert all(len(o.idem) == 32 and int(o.idem, 16) >= 0 for o in ops)
    # The same row of the same change set: same key, however the key is written.
    key = idempotency_key("d" * 64, "s", {"warehouse": "W", "sku": "A"})
    assert key == idempotency_key("d" * 64, "s", {"sku": "A", "warehouse": "W"})
    assert key != idempotency_key("e" * 64, "s", {"warehouse": "W", "sku": "A"})
    assert key != idempotency_key("d" * 64, "t", {"warehouse": "W", "sku": "A"})
    assert key != idempotency_key("d" * 64, "s", {"warehouse": "W", "sku": "B"})
    # A re-load of the same content plans the same keys.
    again = load_changeset(write("again.yaml", TEXT))
    assert [o.idem for s in plan_segments(again, tables) for o in s.ops] == [o.idem for o in ops]


def test_integer_keys_are_canonical_in_idempotency_keys(write: Write, tables: Tables) -> None:
    path = write("c.csv", "id,email\n7,a@x\n")
    cs = load_changeset(path, table="customers", key=["id"], op="update")
    (segment,) = plan_segments(cs, tables)
    assert segment.ops[0].key == {"id": 7}
    assert segment.ops[0].idem == idempotency_key(cs.digest, "customers", {"id": 7})


def test_tables_are_looked_up_once_per_step_target(write: Write, tables: Tables) -> None:
    calls: list[tuple[str | None, str]] = []

    def counting(target: str | None, table: str) -> object:
        calls.append((target, table))
        return tables(target, table)

    cs = load_changeset(write("plan.yaml", TEXT), target="sqlite:///t.db")
    list(plan_segments(cs, counting))  # type: ignore[arg-type]
    assert calls == [("sqlite:///t.db", "products"), ("sqlite:///t.db", "stock")]
