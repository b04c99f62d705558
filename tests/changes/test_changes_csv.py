"""CSV change sets: records, the NULL rule, line numbers, errors and streaming."""

from __future__ import annotations

import itertools
import json
import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from console.changes import ChangeSetInvalid, load_changeset, plan_segments, validate

from .conftest import Tables

Write = Callable[[str, str | bytes], Path]


def test_update_csv_with_composite_key(write: Write) -> None:
    path = write("restock.csv", "warehouse,sku,qty\nW1,A-100,5\nW2,A-100,7\n")
    cs = load_changeset(path, table="stock", key=["warehouse", "sku"], op="update")
    assert (cs.name, cs.version, cs.target, cs.rows) == ("restock", 1, None, 2)
    (step,) = cs.steps
    assert (step.name, step.table, step.key, step.line) == (
        "stock",
        "stock",
        ("warehouse", "sku"),
        1,
    )
    ops = list(step.operations())
    assert [(o.op, dict(o.key), dict(o.values), o.line) for o in ops] == [
        ("update", {"warehouse": "W1", "sku": "A-100"}, {"qty": "5"}, 2),
        ("update", {"warehouse": "W2", "sku": "A-100"}, {"qty": "7"}, 3),
    ]
    assert list(step.operations()) == ops  # re-reads the file, same operations


def test_key_argument_may_be_comma_separated(write: Write) -> None:
    path = write("s.csv", "warehouse,sku,qty\nW1,A,1\n")
    a = load_changeset(path, table="stock", key="warehouse,sku", op="update")  # type: ignore[arg-type]
    b = load_changeset(path, table="stock", key=["warehouse", "sku"], op="update")
    assert a.digest == b.digest and a.steps[0].key == ("warehouse", "sku")


@pytest.mark.parametrize(
    ("op", "values"),
    [
        ("insert", {"sku": "A", "name": "Widget", "price": "1.00"}),
        ("upsert", {"sku": "A", "name": "Widget", "price": "1.00"}),
        ("update", {"name": "Widget", "price": "1.00"}),
    ],
)
def test_insert_upsert_update_records(write: Write, op: str, values: dict[str, str]) -> None:
    path = write("p.csv", "sku,name,price\nA,Widget,1.00\n")
    (o,) = load_changeset(path, table="products", key=["sku"], op=op).steps[0].operations()
    assert (o.op, dict(o.key), dict(o.values)) == (op, {"sku": "A"}, values)


def test_delete_needs_only_the_key(write: Write) -> None:
    cs = load_changeset(write("d.csv", "sku\nA\nB\n"), table="products", key=["sku"], op="delete")
    assert [(dict(o.key), dict(o.values)) for o in cs.steps[0].operations()] == [
        ({"sku": "A"}, {}),
        ({"sku": "B"}, {}),
    ]
    with pytest.raises(ChangeSetInvalid, match="only the key columns"):
        load_changeset(
            write("e.csv", "sku,name\nA,x\n"), table="products", key=["sku"], op="delete"
        )


def test_empty_cell_is_null_and_everything_else_is_literal(write: Write) -> None:
    text = 'sku,name,note\nA,,\\N\nB,"",NULL\nC," ",x\n'
    cs = load_changeset(write("n.csv", text), table="products", key=["sku"], op="update")
    assert [dict(o.values) for o in cs.steps[0].operations()] == [
        {"name": None, "note": "\\N"},
        {"name": None, "note": "NULL"},
        {"name": " ", "note": "x"},
    ]


def test_lines_follow_quoted_newlines_blank_lines_and_bom(write: Write) -> None:
    text = '\ufeffsku,note\nA,"two\nlines"\n\nB,"a, b"\n'
    cs = load_changeset(write("q.csv", text), table="products", key=["sku"], op="update")
    ops = list(cs.steps[0].operations())
    assert [(o.line, dict(o.values)) for o in ops] == [
        (2, {"note": "two\nlines"}),
        (5, {"note": "a, b"}),
    ]
    assert cs.steps[0].key == ("sku",)  # the BOM is not part of the first column name


def test_csv_and_json_rows_share_a_digest(write: Write) -> None:
    rows = [{"sku": "A", "price": "1.50"}, {"sku": "B", "price": None}]
    args = {"table": "products", "key": ["sku"], "op": "update"}
    from_csv = load_changeset(write("prices.csv", "sku,price\nA,1.50\nB,\n"), **args)  # type: ignore[arg-type]
    from_json = load_changeset(write("prices.json", json.dumps(rows)), **args)  # type: ignore[arg-type]
    assert from_csv.digest == from_json.digest
    other = load_changeset(write("prices2.csv", "sku,price\nA,1.50\nB,\n"), **args)  # type: ignore[arg-type]
    assert other.digest != from_csv.digest  # the name (file stem) is part of it


@pytest.mark.parametrize(
    ("content", "args", "line", "field", "words"),
    [
        ("sku,price\nA,1\n", {"key": ["sku"], "op": "update"}, None, "--table", "--table"),
        ("sku,price\nA,1\n", {"table": "products", "op": "update"}, None, "--key", "--key"),
        ("sku,price\nA,1\n", {"table": "products", "key": ["sku"]}, None, "--op", "--op"),
        (
            "sku,price\nA,1\n",
            {"table": "products", "key": ["sku"], "op": "merge"},
            None,
            "--op",
            "merge",
        ),
        (
            "id,price\nA,1\n",
            {"table": "products", "key": ["sku"], "op": "update"},
            1,
            "header",
            "key column sku",
        ),
        (
            "sku,price,price\nA,1,2\n",
            {"table": "products", "key": ["sku"], "op": "update"},
            1,
            "price",
            "twice",
        ),
        (
            "sku,,price\nA,1,2\n",
            {"table": "products", "key": ["sku"], "op": "update"},
            1,
            "column 2",
            "names no column",
        ),
        (
            "sku;price\nA;1\n",
            {"table": "products", "key": ["sku"], "op": "update"},
            1,
            "header",
            "comma",
        ),
        (
            "sku\nA\n",
            {"table": "products", "key": ["sku"], "op": "update"},
            1,
            "columns",
            "besides the key",
        ),
        ("", {"table": "products", "key": ["sku"], "op": "update"}, 1, "header", "empty"),
        (
            "sku,price\n",
            {"table": "products", "key": ["sku"], "op": "update"},
            2,
            "rows",
            "no rows",
        ),
        (
            "sku,price\nA,1\nB,2,3\n",
            {"table": "products", "key": ["sku"], "op": "update"},
            3,
            "row",
            "3 cells",
        ),
        (
            'sku,price\nA,"1\n',
            {"table": "products", "key": ["sku"], "op": "update"},
            2,
            "row",
            "not valid CSV",
        ),
        (
            'sku,price\nA,"1"x\n',
            {"table": "products", "key": ["sku"], "op": "update"},
            2,
            "row",
            "not valid CSV",
        ),
        (
            b"sku,price\nA,1\nB,caf\xe9\n",
            {"table": "products", "key": ["sku"], "op": "update"},
            None,
            "file",
            "UTF-8",
        ),
    ],
)
def test_csv_problems(
    write: Write,
    content: str | bytes,
    args: dict[str, object],
    line: int | None,
    field: str,
    words: str,
) -> None:
    with pytest.raises(ChangeSetInvalid) as caught:
        load_changeset(write("bad.csv", content), **args)  # type: ignore[arg-type]
    problem = caught.value.problems[0]
    if line is not None:
        assert problem.line == line
    assert problem.field == field
    assert words in problem.message


def test_missing_csv_file(tmp_path: Path) -> None:
    with pytest.raises(ChangeSetInvalid, match="does not exist"):
        load_changeset(tmp_path / "x.csv", table="products", key=["sku"], op="update")


def test_a_file_changed_after_loading_is_refused(write: Write) -> None:
    path = write("p.csv", "sku,price\nA,1\nB,2\n")
    cs = load_changeset(path, table="products", key=["sku"], op="update")
    path.write_text("sku,price\nA,1\nB,3\n", encoding="utf-8")
    with pytest.raises(ChangeSetInvalid, match="changed since it was loaded"):
        list(cs.steps[0].operations())
    # Same size and mtime (an edit that stat cannot see): the digest check catches it.
    stat = path.stat()
    path.write_text("sku,price\nA,1\nB,4\n", encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    cs2 = load_changeset(path, table="products", key=["sku"], op="update")
    path.write_text("sku,price\nA,1\nB,5\n", encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(ChangeSetInvalid, match="changed since it was loaded"):
        list(cs2.steps[0].operations())


def _big_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("warehouse,sku,qty\n")
        for i in range(rows):
            out.write(f"W{i % 7},SKU-{i:07d},{i % 1000}\n")


@pytest.mark.parametrize("rows", [10_000, pytest.param(200_000, marks=pytest.mark.slow, id="200k")])
def test_big_csv_streams_in_bounded_memory(tmp_path: Path, tables: Tables, rows: int) -> None:
    path = tmp_path / "big.csv"
    _big_csv(path, rows)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        cs = load_changeset(path, table="stock", key=["warehouse", "sku"], op="update")
        load_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        count = 0
        last = None
        for op in cs.steps[0].operations():
            count += 1
            last = op
        iterate_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        # The plan is lazy: its first segments come before the rest of the file is read.
        plan = plan_segments(cs, tables, 100)
        first = [(s.seg_no, s.ops[-1].op_no) for s in itertools.islice(plan, 20)]
        plan_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert cs.rows == count == rows
    assert last is not None and last.line == rows + 1
    assert first == [(n, n * 100) for n in range(1, 21)]
    # Held as Python objects the rows would take ~30x the file (6 MB for 10k rows); streaming
    # holds one row (one segment when planning) at a time, whatever the file's size.
    assert max(load_peak, iterate_peak) < min(size / 2, 200_000), (size, load_peak, iterate_peak)
    assert plan_peak < 1_000_000, (size, plan_peak)


def test_csv_validates_with_duplicates_found(tmp_path: Path, tables: Tables) -> None:
    path = tmp_path / "dups.csv"
    _big_csv(path, 5_000)
    with path.open("a", encoding="utf-8") as out:
        out.write("W3,SKU-0000010,5\n")  # same key as line 12
    cs = load_changeset(path, table="stock", key=["warehouse", "sku"], op="update")
    problems = validate(cs, tables)
    assert len(problems) == 1
    assert problems[0].line == 5_002
    assert problems[0].field == "steps[0].operations[5000].key"
    assert "first on line 12" in problems[0].message


def test_a_deleted_file_is_refused_on_reread(write: Write) -> None:
    path = write("gone.csv", "sku,price\nA,1\n")
    cs = load_changeset(path, table="products", key=["sku"], op="update")
    path.unlink()
    with pytest.raises(ChangeSetInvalid, match="changed since it was loaded"):
        list(cs.steps[0].operations())
