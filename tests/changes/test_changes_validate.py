"""Validation against real reflected SQLite tables: every kind of problem, with file, line and
field, and the canonical values the engine journals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from console.changes import (
    ChangeSetInvalid,
    Problem,
    coerced_operations,
    load_changeset,
    validate,
)

from .conftest import Tables

Write = Callable[[str, str | bytes], Path]

HEAD = "changeset: v\nversion: 1\nsteps:\n"


def one_step(table: str, key: str, ops: list[str]) -> str:
    """A change set text with one step; operation i is on line 8 + i."""
    lines = [HEAD, f"  - name: s\n    table: {table}\n    key: {key}\n    operations:\n"]
    lines += [f"      - {op}\n" for op in ops]
    return "".join(lines)


def problems(write: Write, tables: Tables, text: str, name: str = "v.yaml") -> list[Problem]:
    cs = load_changeset(write(name, text))
    return validate(cs, tables)


def only(found: list[Problem]) -> Problem:
    assert len(found) == 1, found
    return found[0]


def test_a_valid_change_set_has_no_problem(write: Write, tables: Tables) -> None:
    text = one_step(
        "products",
        "sku",
        [
            "{op: update, key: {sku: A}, set: {price: 10.5, note: null, updated: 2026-01-31}}",
            '{op: insert, row: {sku: B, name: Widget, price: "3.00", active: "yes"}}',
            "{op: upsert, row: {sku: C, name: Gadget, price: 4}}",
            "{op: delete, key: {sku: D}}",
        ],
    )
    assert problems(write, tables, text) == []


def test_unknown_table(write: Write, tables: Tables) -> None:
    p = only(problems(write, tables, one_step("prodcts", "sku", ["{op: delete, key: {sku: A}}"])))
    assert (p.line, p.field) == (4, "steps[0].table")
    assert "no table prodcts" in p.message


def test_unknown_key_column_of_the_table(write: Write, tables: Tables) -> None:
    p = only(
        problems(write, tables, one_step("products", "skus", ["{op: delete, key: {skus: A}}"]))
    )
    assert (p.line, p.field) == (4, "steps[0].key")
    assert "did you mean 'sku'" in p.message and "its columns are sku, name" in p.message


def test_unknown_column(write: Write, tables: Tables) -> None:
    p = only(
        problems(
            write,
            tables,
            one_step("products", "sku", ["{op: update, key: {sku: A}, set: {prise: 1}}"]),
        )
    )
    assert (p.line, p.field) == (8, "steps[0].operations[0].set.prise")
    assert "products has no column prise (did you mean 'price'?)" in p.message


def test_key_values_missing_foreign_and_null(write: Write, tables: Tables) -> None:
    text = one_step(
        "stock",
        "[warehouse, sku]",
        [
            "{op: update, key: {warehouse: W1}, set: {qty: 1}}",
            "{op: update, key: {warehouse: W1, sku: A, qty: 3}, set: {qty: 1}}",
            "{op: delete, key: {warehouse: W1, sku: null}}",
            "{op: insert, row: {warehouse: W1, qty: 2}}",
        ],
    )
    found = problems(write, tables, text)
    assert [(p.line, p.field) for p in found] == [
        (8, "steps[0].operations[0].key.sku"),
        (9, "steps[0].operations[1].key.qty"),
        (10, "steps[0].operations[2].key.sku"),
        (11, "steps[0].operations[3].row.sku"),
    ]
    assert "missing; add key.sku" in found[0].message
    assert "not a key column of this step (key: warehouse, sku)" in found[1].message
    assert "is NULL; give it a value" in found[2].message
    assert "missing; add row.sku" in found[3].message


def test_duplicate_keys_within_a_step(write: Write, tables: Tables) -> None:
    text = one_step(
        "stock",
        "[warehouse, sku]",
        [
            "{op: update, key: {warehouse: W1, sku: A}, set: {qty: 1}}",
            "{op: update, key: {warehouse: W1, sku: B}, set: {qty: 1}}",
            "{op: delete, key: {warehouse: W1, sku: A}}",
        ],
    )
    p = only(problems(write, tables, text))
    assert (p.line, p.field) == (10, "steps[0].operations[2].key")
    assert "appears twice in step s (first on line 8)" in p.message


def test_duplicates_compare_canonical_values(write: Write, tables: Tables) -> None:
    # 7 and "7" and 7.0 are the same integer key once converted to the column's type.
    text = one_step(
        "customers",
        "id",
        [
            "{op: update, key: {id: 7}, set: {email: a@x}}",
            '{op: update, key: {id: "7"}, set: {email: b@x}}',
            "{op: update, key: {id: 7.0}, set: {email: c@x}}",
        ],
    )
    assert [p.line for p in problems(write, tables, text)] == [9, 10]


def test_the_same_key_in_two_steps_is_allowed(write: Write, tables: Tables) -> None:
    text = HEAD + "".join(
        f"  - {{name: s{i}, table: products, key: sku,\n"
        "     operations: [{op: delete, key: {sku: A}}]}\n"
        for i in range(2)
    )
    assert problems(write, tables, text) == []


@pytest.mark.parametrize(
    ("table", "key", "op", "field", "words"),
    [
        (
            "products",
            "sku",
            "{op: update, key: {sku: A}, set: {price: abc}}",
            "set.price",
            "'abc' is not a number; price is NUMERIC(10, 2) (decimal): give a decimal such as 10.5",
        ),
        (
            "products",
            "sku",
            "{op: update, key: {sku: A}, set: {price: 1.234}}",
            "set.price",
            "more than 2 decimal places",
        ),
        (
            "products",
            "sku",
            "{op: update, key: {sku: A}, set: {active: maybe}}",
            "set.active",
            "not true or false",
        ),
        (
            "products",
            "sku",
            "{op: update, key: {sku: A}, set: {updated: yesterday}}",
            "set.updated",
            "not a timestamp",
        ),
        (
            "products",
            "sku",
            "{op: update, key: {sku: A}, set: {note: {a: 1}}}",
            "set.note",
            "structured value",
        ),
        (
            "stock",
            "[warehouse, sku]",
            "{op: update, key: {warehouse: W, sku: A}, set: {qty: 1.5}}",
            "set.qty",
            "not a whole number; qty is INTEGER (int)",
        ),
        (
            "stock",
            "[warehouse, sku]",
            "{op: update, key: {warehouse: W, sku: A}, set: {qty: 99999999999999999999}}",
            "set.qty",
            "out of range",
        ),
        (
            "stock",
            "[warehouse, sku]",
            "{op: update, key: {warehouse: W, sku: A}, set: {qty: 1e999999999}}",
            "set.qty",
            "out of range",
        ),
        (
            "customers",
            "id",
            "{op: update, key: {id: x}, set: {email: a}}",
            "key.id",
            "'x' is not a number",
        ),
        (
            "customers",
            "id",
            "{op: update, key: {id: 1}, set: {born: 2026-02-30}}",
            "set.born",
            "not a date",
        ),
        (
            "customers",
            "id",
            "{op: update, key: {id: 1}, set: {opens: '25:00'}}",
            "set.opens",
            "not a time of day",
        ),
        (
            "customers",
            "id",
            "{op: update, key: {id: 1}, set: {photo: [1]}}",
            "set.photo",
            "binary values",
        ),
        (
            "customers",
            "id",
            "{op: update, key: {id: 1}, set: {ratio: 1e400}}",
            "set.ratio",
            "not a finite number",
        ),
    ],
)
def test_values_that_do_not_convert(
    write: Write, tables: Tables, table: str, key: str, op: str, field: str, words: str
) -> None:
    p = only(problems(write, tables, one_step(table, key, [op])))
    assert (p.line, p.field) == (8, f"steps[0].operations[0].{field}")
    assert words in p.message


def test_null_into_not_null(write: Write, tables: Tables) -> None:
    text = one_step(
        "products",
        "sku",
        [
            "{op: update, key: {sku: A}, set: {name: null}}",
            "{op: insert, row: {sku: B, name: W, price: 1, active: null}}",
            "{op: update, key: {sku: C}, set: {note: null}}",
        ],
    )
    first, second = problems(write, tables, text)
    assert (first.line, first.field) == (8, "steps[0].operations[0].set.name")
    assert "name is NOT NULL and cannot be set to NULL; give name a value" in first.message
    assert (second.line, second.field) == (9, "steps[0].operations[1].row.active")
    assert "omit active to use its default" in second.message


def test_update_of_a_key_column(write: Write, tables: Tables) -> None:
    p = only(
        problems(
            write,
            tables,
            one_step("products", "sku", ["{op: update, key: {sku: A}, set: {sku: B}}"]),
        )
    )
    assert (p.line, p.field) == (8, "steps[0].operations[0].set.sku")
    assert "cannot change the key column sku; delete the row and insert" in p.message


def test_insert_missing_not_null_columns(write: Write, tables: Tables) -> None:
    text = one_step(
        "products", "sku", ["{op: insert, row: {sku: A}}", "{op: upsert, row: {sku: B, name: x}}"]
    )
    first, second = problems(write, tables, text)
    assert (first.line, first.field) == (8, "steps[0].operations[0].row")
    assert (
        "lacks name, price, NOT NULL without a default; add row.name and row.price" in first.message
    )
    assert "lacks price" in second.message  # active has a default, so it may be omitted


def test_problems_render_as_file_line_field_sentences(write: Write, tables: Tables) -> None:
    text = one_step(
        "products",
        "sku",
        [
            "{op: update, key: {sku: A}, set: {price: abc}}",
            "{op: update, key: {sku: B}, set: {x: 1}}",
        ],
    )
    path = write("render.yaml", text)
    found = validate(load_changeset(path), tables)
    err = ChangeSetInvalid(found)
    assert err.message.startswith(f"{path}:8: steps[0].operations[0].set.price: 'abc' is not")
    assert err.message.endswith("(and 1 more).")
    assert found[1].as_dict()["line"] == 9


def test_csv_problems_point_at_csv_lines(write: Write, tables: Tables) -> None:
    path = write("p.csv", "sku,price,colour\nA,1.00,red\nB,abc,blue\n")
    found = validate(load_changeset(path, table="products", key=["sku"], op="update"), tables)
    assert [(p.line, p.field) for p in found] == [
        (2, "steps[0].operations[0].set.colour"),
        (3, "steps[0].operations[1].set.price"),
        (3, "steps[0].operations[1].set.colour"),
    ]


def test_every_step_is_checked_and_problems_stop_at_the_limit(write: Write, tables: Tables) -> None:
    bad = [
        f'{{"op": "update", "key": {{"sku": "S{i}"}}, "set": {{"price": "x"}}}}' for i in range(300)
    ]
    path = write("many.json", "[" + ",\n".join(bad) + "]")
    cs = load_changeset(path, table="products", key=["sku"])
    found = validate(cs, tables)
    assert len(found) == 100
    assert [p.line for p in found[:3]] == [1, 2, 3]
    assert len(validate(cs, tables, limit=5)) == 5


def test_steps_use_their_own_target(write: Write) -> None:
    seen: list[tuple[str | None, str]] = []

    def tables(target: str | None, table: str) -> object:
        seen.append((target, table))
        from console.errors import BadInput

        raise BadInput(f"no table {table} at {target}")

    text = (
        "changeset: t\nversion: 1\ntarget: main-db\nsteps:\n"
        "  - {name: a, table: x, key: id, operations: [{op: delete, key: {id: 1}}]}\n"
        "  - {name: b, table: y, key: id, target: other-db,\n"
        "     operations: [{op: delete, key: {id: 1}}]}\n"
    )
    cs = load_changeset(write("t.yaml", text))
    found = validate(cs, tables)  # type: ignore[arg-type]
    assert seen == [("main-db", "x"), ("other-db", "y")]
    assert [(p.line, p.field) for p in found] == [(5, "steps[0].table"), (6, "steps[1].table")]


def test_coerced_operations_are_canonical(write: Write, tables: Tables) -> None:
    text = one_step(
        "customers",
        "id",
        [
            '{op: update, key: {id: "7"}, set: {ratio: "0.5", born: 2026-01-31, data: {a: [1]}}}',
            "{op: insert, row: {id: 8, email: a@x, photo: !!binary aGk=, opens: '10:30'}}",
        ],
    )
    cs = load_changeset(write("c.yaml", text))
    info = tables(None, "customers")
    update, insert = coerced_operations(cs.steps[0], info)
    assert update.key == {"id": 7}
    assert update.values == {"ratio": 0.5, "born": "2026-01-31", "data": {"a": [1]}}
    assert insert.key == {"id": 8}
    assert insert.values == {
        "id": 8,
        "email": "a@x",
        "photo": {"$b64": "aGk="},
        "opens": "10:30:00",
    }
    assert (update.line, insert.line) == (8, 9)


def test_coerced_operations_refuse_an_unchecked_operation(write: Write, tables: Tables) -> None:
    cs = load_changeset(
        write(
            "c.yaml", one_step("products", "sku", ["{op: update, key: {sku: A}, set: {price: x}}"])
        )
    )
    with pytest.raises(ChangeSetInvalid, match="is not a number"):
        list(coerced_operations(cs.steps[0], tables(None, "products")))
