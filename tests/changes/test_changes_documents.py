"""Loading YAML and JSON change sets: shape, lines, scalars, digest and every loader error."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from console.changes import ChangeSetInvalid, load_changeset
from console.errors import BadInput, Exit

Write = Callable[[str, str | bytes], Path]

EXAMPLE = """\
changeset: eu-price-uplift        # name
version: 3
automation: n8n:workflow/42
description: Raise EU list prices by 5 %
target: sqlite:///crm.db
options:
  segment_size: 50
  on_error: continue
  max_failed_ratio: 0.05
  on_existing_insert: conflict
touchpoints:
  source: n8n:workflow/42
  writes: [products, stock]
  readers: [bi.daily-revenue]
steps:
  - name: raise-prices
    table: products
    key: sku
    operations:
      - {op: update, key: {sku: A-100}, set: {price: "10.50"}}
      - {op: insert, row: {sku: Z-1, name: Widget, price: "3.00"}}
      - {op: delete, key: {sku: OLD-9}}
      - op: upsert
        row: {sku: Z-2, name: Gadget, price: 4.25}
    invariants:
      - {name: no-negative-prices, sql: "SELECT COUNT(*) FROM products WHERE price < 0", expect: 0}
  - name: move-stock
    table: stock
    key: [warehouse, sku]
    on_error: rollback
    target: sqlite:///warehouse.db
    operations:
      - {op: update, key: {warehouse: W1, sku: A-100}, set: {qty: 5}}
      - {op: delete, key: {warehouse: W2, sku: A-100}}
"""


def as_data() -> dict[str, object]:
    data = yaml.safe_load(EXAMPLE)
    assert isinstance(data, dict)
    return data


def test_yaml_document_loads_every_part(write: Write) -> None:
    cs = load_changeset(write("uplift.yaml", EXAMPLE))
    assert (cs.name, cs.version, cs.target) == ("eu-price-uplift", 3, "sqlite:///crm.db")
    assert cs.automation == "n8n:workflow/42"
    assert cs.description == "Raise EU list prices by 5 %"
    assert (cs.options.segment_size, cs.options.on_error) == (50, "continue")
    assert cs.options.max_failed_ratio == 0.05
    assert cs.options.on_existing_insert == "conflict"
    assert cs.touchpoints.as_dict() == {
        "source": "n8n:workflow/42",
        "writes": ["products", "stock"],
        "readers": ["bi.daily-revenue"],
    }
    assert cs.rows == 6
    assert len(cs.digest) == 64
    assert cs.source.endswith("uplift.yaml")
    prices, stock = cs.steps
    assert (prices.name, prices.table, prices.key, prices.line) == (
        "raise-prices",
        "products",
        ("sku",),
        16,
    )
    assert prices.invariants[0].name == "no-negative-prices"
    assert prices.invariants[0].expect == 0
    ops = list(prices.operations())
    assert [(o.op, o.line) for o in ops] == [
        ("update", 20),
        ("insert", 21),
        ("delete", 22),
        ("upsert", 23),
    ]
    assert ops[0].key == {"sku": "A-100"} and ops[0].values == {"price": "10.50"}
    assert ops[1].key == {"sku": "Z-1"}  # taken from the row
    assert ops[1].values == {"sku": "Z-1", "name": "Widget", "price": "3.00"}
    assert ops[2].values == {}
    assert ops[3].values["price"] == Decimal("4.25")  # exact, never a float
    assert list(prices.operations()) == ops  # re-iterable
    assert (stock.key, stock.on_error, stock.target) == (
        ("warehouse", "sku"),
        "rollback",
        "sqlite:///warehouse.db",
    )
    assert [o.key for o in stock.operations()] == [
        {"warehouse": "W1", "sku": "A-100"},
        {"warehouse": "W2", "sku": "A-100"},
    ]


def test_defaults_when_options_are_omitted(write: Write) -> None:
    text = (
        "changeset: x\nversion: 1\nsteps:\n"
        "- {name: s, table: t, key: id, operations: [{op: delete, key: {id: 1}}]}\n"
    )
    cs = load_changeset(write("x.yml", text))
    assert cs.options.segment_size == 100
    assert cs.options.on_error == "pause"
    assert cs.target is None
    assert cs.touchpoints.as_dict() == {"source": None, "writes": [], "readers": []}


def test_json_document_gives_the_same_change_set_and_digest(write: Write) -> None:
    from_yaml = load_changeset(write("a.yaml", EXAMPLE))
    data = as_data()
    from_json = load_changeset(write("a.json", json.dumps(data, indent="\t", sort_keys=True)))
    assert from_json.digest == from_yaml.digest
    assert [list(s.operations()) for s in from_json.steps] != []
    ops_json = [(o.op, dict(o.key), dict(o.values)) for o in from_json.steps[0].operations()]
    ops_yaml = [(o.op, dict(o.key), dict(o.values)) for o in from_yaml.steps[0].operations()]
    assert ops_json == ops_yaml
    line_of_update = next(o.line for o in from_json.steps[0].operations())
    assert line_of_update is not None and line_of_update > 1


def test_digest_ignores_formatting_comments_key_order_and_prose(write: Write) -> None:
    base = load_changeset(write("a.yaml", EXAMPLE)).digest
    data = as_data()
    reordered = dict(reversed(list(data.items())))
    reordered["description"] = "another wording"
    reordered["automation"] = "zapier"
    flowed = yaml.safe_dump(reordered, default_flow_style=True, sort_keys=False)
    assert load_changeset(write("b.yaml", "# a comment\n" + flowed)).digest == base
    compact = json.dumps(data, separators=(",", ":"))
    assert load_changeset(write("c.json", compact)).digest == base


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('set: {price: "10.50"}', 'set: {price: "10.51"}'),
        ("segment_size: 50", "segment_size: 51"),
        ("version: 3", "version: 4"),
        ("writes: [products, stock]", "writes: [products]"),
        ("expect: 0", "expect: 1"),
        ("key: sku", "key: [sku, name]"),
    ],
)
def test_digest_changes_with_the_content(write: Write, old: str, new: str) -> None:
    assert old in EXAMPLE
    base = load_changeset(write("a.yaml", EXAMPLE)).digest
    assert load_changeset(write("b.yaml", EXAMPLE.replace(old, new))).digest != base


def test_target_argument_overrides_the_document(write: Write) -> None:
    path = write("a.yaml", EXAMPLE)
    plain = load_changeset(path)
    other = load_changeset(path, target="sqlite:///other.db")
    assert other.target == "sqlite:///other.db"
    assert other.digest != plain.digest  # the target is part of the identity


def test_yaml_scalars_follow_yaml_1_2_and_stay_exact(write: Write) -> None:
    text = """\
changeset: scalars
version: 1
steps:
  - name: s
    table: t
    key: code
    operations:
      - op: insert
        row: {code: 007, country: NO, flag: on, price: 10.50, n: 12, b: true, d: 2026-01-31, nul: ~}
"""
    (op,) = load_changeset(write("s.yaml", text)).steps[0].operations()
    assert op.values == {
        "code": "007",
        "country": "NO",
        "flag": "on",
        "price": Decimal("10.50"),
        "n": 12,
        "b": True,
        "d": "2026-01-31",
        "nul": None,
    }


def test_yaml_anchors_and_merge_keys(write: Write) -> None:
    text = """\
changeset: anchors
version: 1
steps:
  - name: s
    table: products
    key: sku
    operations:
      - {op: insert, row: &base {sku: A, name: Widget, price: "1.00"}}
      - op: insert
        row:
          <<: *base
          sku: B
"""
    ops = list(load_changeset(write("a.yaml", text)).steps[0].operations())
    assert ops[1].values == {"sku": "B", "name": "Widget", "price": "1.00"}
    assert ops[1].key == {"sku": "B"}


def test_json_list_of_operations_with_table_and_key(write: Write) -> None:
    ops = [
        {"op": "update", "key": {"warehouse": "W1", "sku": "A"}, "set": {"qty": 3}},
        {"op": "insert", "row": {"warehouse": "W1", "sku": "B", "qty": 1}},
        {"op": "delete", "key": {"warehouse": "W2", "sku": "A"}},
    ]
    text = json.dumps(ops, indent=2)
    path = write("stock-fix.json", text)
    cs = load_changeset(path, table="stock", key=["warehouse", "sku"])
    assert (cs.name, cs.version, cs.target) == ("stock-fix", 1, None)
    (step,) = cs.steps
    assert (step.name, step.table, step.key, step.count) == (
        "stock",
        "stock",
        ("warehouse", "sku"),
        3,
    )
    assert [o.op for o in step.operations()] == ["update", "insert", "delete"]
    starts = [n for n, line in enumerate(text.splitlines(), start=1) if line == "  {"]
    assert [o.line for o in step.operations()] == starts
    named = load_changeset(path, table="stock", key="warehouse,sku", name="fix", version=7)
    assert (named.name, named.version) == ("fix", 7)


def test_json_list_of_rows_with_op(write: Write) -> None:
    rows = [{"sku": "A", "price": "1.50"}, {"sku": "B", "price": "2.50"}]
    cs = load_changeset(
        write("p.json", json.dumps(rows)), table="products", key=["sku"], op="update"
    )
    ops = list(cs.steps[0].operations())
    assert [(o.op, dict(o.key), dict(o.values)) for o in ops] == [
        ("update", {"sku": "A"}, {"price": "1.50"}),
        ("update", {"sku": "B"}, {"price": "2.50"}),
    ]


# --- loader errors: one clear sentence naming file, line and field ---------------------


def problems_of(path: Path, **kwargs: object) -> ChangeSetInvalid:
    with pytest.raises(ChangeSetInvalid) as caught:
        load_changeset(path, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_error_is_bad_input_with_a_one_sentence_summary(write: Write) -> None:
    text = EXAMPLE.replace("segment_size: 50", "segment_size: 0").replace(
        "on_error: continue", "on_error: stop"
    )
    err = problems_of(write("bad.yaml", text))
    assert isinstance(err, BadInput)
    assert err.exit_code == Exit.BAD_INPUT
    assert len(err.problems) == 2
    first = err.problems[0]
    assert (first.line, first.field) == (7, "options.segment_size")
    assert err.message.startswith(f"{first.file}:7: options.segment_size: must be a whole number")
    assert err.message.endswith("(and 1 more).")
    assert "\n" not in err.message


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("version: 3", "version: 3\nowner: me", 3, "owner", "unknown key 'owner'"),
        ("version: 3", "version: three", 2, "version", "whole number"),
        ("version: 3", "version: 0", 2, "version", "at least 1"),
        ("changeset: eu-price-uplift ", "changeset: '' ", 1, "changeset", "non-empty"),
        ("on_error: continue", "on_error: stop", 8, "options.on_error", "pause, rollback"),
        (
            "max_failed_ratio: 0.05",
            "max_failed_ratio: 1.5",
            9,
            "options.max_failed_ratio",
            "0 to 1",
        ),
        (
            "on_existing_insert: conflict",
            "on_existing_insert: skip",
            10,
            "options.on_existing_insert",
            "refuse",
        ),
        ("segment_size: 50", "segment_size: true", 7, "options.segment_size", "whole number"),
        (
            "segment_size: 50",
            "segmentsize: 50",
            7,
            "options.segmentsize",
            "did you mean 'segment_size'",
        ),
        (
            "writes: [products, stock]",
            "writes: products",
            13,
            "touchpoints.writes",
            "list of names",
        ),
        ("    key: sku\n", "    key: []\n", 18, "steps[0].key", "column name"),
        ("    key: sku\n", "    key: [sku, sku]\n", 18, "steps[0].key", "twice"),
        ("    table: products\n", "", 16, "steps[0].table", "needs 'table'"),
        ("    on_error: rollback", "    on_error: retry", 30, "steps[1].on_error", "pause"),
        (
            "{op: update, key: {sku: A-100}, set:",
            "{op: update, key: {sku: A-100}, sett:",
            20,
            "steps[0].operations[0].sett",
            "did you mean 'set'",
        ),
        (
            '{op: update, key: {sku: A-100}, set: {price: "10.50"}}',
            "{op: update, key: {sku: A-100}}",
            20,
            "steps[0].operations[0].set",
            "needs 'set'",
        ),
        (
            "{op: insert, row:",
            "{op: insert, key: {sku: Z-1}, row:",
            21,
            "steps[0].operations[1].key",
            "unknown key 'key' in an insert",
        ),
        (
            "{op: delete, key: {sku: OLD-9}}",
            "{op: delete, key: {sku: OLD-9}, set: {name: x}}",
            22,
            "steps[0].operations[2].set",
            "a delete",
        ),
        (
            "{op: delete, key: {sku: OLD-9}}",
            "{op: remove, key: {sku: OLD-9}}",
            22,
            "steps[0].operations[2].op",
            "'remove' is not allowed; use one of insert",
        ),
        (
            "{op: delete, key: {sku: OLD-9}}",
            "{key: {sku: OLD-9}}",
            22,
            "steps[0].operations[2].op",
            "needs 'op'",
        ),
        (
            "{op: delete, key: {sku: OLD-9}}",
            "{op: delete, key: sku}",
            22,
            "steps[0].operations[2].key",
            "mapping of column",
        ),
        (
            "{op: delete, key: {sku: OLD-9}}",
            "{op: delete, key: {}}",
            22,
            "steps[0].operations[2].key",
            "names no column",
        ),
        (
            "{op: delete, key: {sku: OLD-9}}",
            "just-text",
            22,
            "steps[0].operations[2]",
            "must be a mapping",
        ),
        ("  - name: move-stock", "  - name: raise-prices", 27, "steps[1].name", "already named"),
        ("expect: 0}", "expect: 0, sql: again}", 26, "sql", "appears twice"),
        ("expect: 0}", "}", 26, "steps[0].invariants[0].expect", "needs 'expect'"),
    ],
)
def test_document_problems_name_line_and_field(
    write: Write, old: str, new: str, line: int, field: str, words: str
) -> None:
    assert old in EXAMPLE
    err = problems_of(write("bad.yaml", EXAMPLE.replace(old, new, 1)))
    found = [(p.line, p.field) for p in err.problems]
    assert (line, field) in found, err.problems
    problem = next(p for p in err.problems if (p.line, p.field) == (line, field))
    assert words in problem.message
    assert str(problem).startswith(f"{problem.file}:{line}: {field}: ")


def test_all_problems_are_collected_in_line_order(write: Write) -> None:
    text = EXAMPLE.replace("version: 3", "version: x").replace("on_error: rollback", "on_error: no")
    text = text.replace("{op: delete, key: {sku: OLD-9}}", "{op: nope}")
    err = problems_of(write("bad.yaml", text))
    assert [p.line for p in err.problems] == [2, 22, 30]


@pytest.mark.parametrize(
    ("name", "content", "line", "field", "words"),
    [
        ("syntax.yaml", "changeset: a\nsteps: [1, 2\n", 3, "document", "not valid YAML"),
        ("tabs.yaml", "changeset: a\n\tversion: 1\n", 2, "document", "not valid YAML"),
        ("syntax.json", '{"changeset": "a",\n "version": 1,,\n}', 2, "document", "not valid JSON"),
        ("nan.json", '{"changeset": NaN}', None, "value", "finite"),
        ("empty.yaml", "", None, "document", "empty"),
        ("comments.yaml", "# nothing\n", None, "document", "empty"),
        ("scalar.yaml", "hello\n", 1, "document", "single value"),
        ("two.yaml", "changeset: a\n---\nchangeset: b\n", 2, "document", "several YAML documents"),
        (
            "dup.json",
            '{"changeset": "a", "changeset": "b", "version": 1, "steps": []}',
            1,
            "changeset",
            "twice",
        ),
        ("alias.yaml", "changeset: *nope\n", 1, "alias", "no anchor"),
        ("tag.yaml", "changeset: !python/object x\n", 1, "tag", "not supported"),
        ("deep.json", "[" * 200 + "]" * 200, 1, "document", "nested"),
        ("deep.yaml", "a: " + "[" * 200 + "]" * 200, 1, "document", "nested"),
        ("latin1.yaml", b"changeset: caf\xe9\n", 1, "file", "UTF-8"),
        ("surrogate.json", '{"changeset": "\\ud800", "version": 1}', 1, "value", "\\u escape"),
    ],
)
def test_unreadable_documents(
    write: Write, name: str, content: str | bytes, line: int | None, field: str, words: str
) -> None:
    err = problems_of(write(name, content))
    problem = (
        err.problems[0]
        if field == "document"
        else next(p for p in err.problems if p.field == field)
    )
    assert (problem.line, problem.field) == (line, field)
    assert words in problem.message


def test_billion_laughs_is_refused_quickly(write: Write) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    err = problems_of(write("lol.yaml", "\n".join(lines) + "\n"))
    assert "aliases expand" in err.message


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "does not exist" in problems_of(tmp_path / "nope.yaml").message
    assert "directory" in problems_of(tmp_path).message


def test_flat_arguments_are_refused_for_documents(write: Write) -> None:
    err = problems_of(write("a.yaml", EXAMPLE), table="products", op="update")
    assert {p.field for p in err.problems} == {"--table", "--op"}
    err = problems_of(write("b.yaml", EXAMPLE), name="other", version=9)
    assert {p.field for p in err.problems} == {"changeset", "version"}


def test_flat_list_needs_its_arguments(write: Write) -> None:
    path = write("ops.json", '[{"op": "delete", "key": {"sku": "A"}}]')
    err = problems_of(path)
    assert {p.field for p in err.problems} == {"--table", "--key"}
    err = problems_of(path, table="products", key=["sku"], op="merge")
    assert [p.field for p in err.problems] == ["--op"]
    err = problems_of(path, table="products", key=["sku", "sku"])
    assert [p.field for p in err.problems] == ["--key"]


def test_flat_list_of_rows_errors(write: Write) -> None:
    ops = '[{"op": "update", "key": {"sku": "A"}, "set": {"price": 1}}]'
    err = problems_of(write("o.json", ops), table="products", key=["sku"], op="update")
    assert "drop --op" in err.message
    rows = '[\n{"sku": "A", "price": 1},\n{"sku": "B"}\n]'
    err = problems_of(write("r.json", rows), table="products", key=["sku"], op="update")
    assert (err.problems[0].line, "besides the key") == (3, "besides the key")
    err = problems_of(write("d.json", rows), table="products", key=["sku"], op="delete")
    assert err.problems[0].line == 2 and "only the key columns" in err.message
    err = problems_of(write("e.json", "[]"), table="products", key=["sku"])
    assert "no operation" in err.message


def test_json_problems_name_the_exact_line_of_the_key(write: Write) -> None:
    data = as_data()
    data["options"] = {"segment_size": 0, "on_error": "pause"}
    text = json.dumps(data, indent=2)
    line = next(n for n, t in enumerate(text.splitlines(), start=1) if "segment_size" in t)
    err = problems_of(write("bad.json", text))
    assert (err.problems[0].line, err.problems[0].field) == (line, "options.segment_size")


def test_a_version_past_what_the_journal_stores_is_refused(write: Write) -> None:
    old = "\nversion: 3\n"
    assert old in EXAMPLE
    err = problems_of(write("huge.yaml", EXAMPLE.replace(old, "\nversion: 99999999999999999999\n")))
    assert err.problems[0].field == "version"
    assert "from 1 to 9223372036854775807" in err.problems[0].message
