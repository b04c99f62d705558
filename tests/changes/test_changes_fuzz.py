"""Fuzzing the loaders: whatever the bytes, the only exception is ``ChangeSetInvalid`` (exit 2),
and whatever loads can be iterated, validated and planned without another exception."""

from __future__ import annotations

import copy
import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from console.canonical import canonical_json
from console.changes import ChangeSet, ChangeSetInvalid, load_changeset, plan_segments, validate
from console.changes.digest import FlatOps
from console.changes.json_tree import parse_json, parse_json_fast
from console.changes.tree import Node, to_plain
from console.errors import Exit

from .conftest import Tables
from .test_changes_documents import EXAMPLE

FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

WORDS = [
    "changeset", "version", "steps", "name", "table", "key", "operations", "op", "set", "row",
    "options", "segment_size", "on_error", "target", "invariants", "sql", "expect", "touchpoints",
    "update", "insert", "delete", "upsert", "products", "stock", "sku", "price", "qty", "warehouse",
    "<<", "", "$b64",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(WORDS),
    st.sampled_from(["1e999999999", "0.005", "yes", "2026-02-30", "NaN", "\x00", "10.50"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=30,
)


BASE = yaml.safe_load(EXAMPLE)


class _QuotingDumper(yaml.SafeDumper):
    """PyYAML writes YAML 1.1, our loader reads YAML 1.2: a plain ``0E0`` is text to the
    first and a number to the second. Double-quoting every string means the same to both."""


_QuotingDumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style='"')
)


def _yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_QuotingDumper, allow_unicode=True)


def exercise(cs: ChangeSet, tables: Tables) -> None:
    """What the engine does with a loaded change set must not raise anything unexpected."""
    assert len(cs.digest) == 64
    for step in cs.steps:
        assert sum(1 for _ in step.operations()) == step.count
    if not validate(cs, tables):
        for segment in plan_segments(cs, tables):
            assert segment.ops


def load(path: Path, tables: Tables, **kwargs: Any) -> None:
    try:
        cs = load_changeset(path, **kwargs)
    except ChangeSetInvalid as err:
        assert err.exit_code == Exit.BAD_INPUT
        assert err.problems and err.message
        assert "\n" not in err.message
        return
    exercise(cs, tables)


FLAT = {"table": "products", "key": ["sku"], "op": "update"}


@FUZZ
@given(data=st.binary(max_size=400), ext=st.sampled_from([".yaml", ".json", ".csv", ".txt"]))
def test_random_bytes(tmp_path: Path, tables: Tables, data: bytes, ext: str) -> None:
    path = tmp_path / f"f{ext}"
    path.write_bytes(data)
    load(path, tables, **(FLAT if ext == ".csv" else {}))
    if ext != ".csv":
        load(path, tables, table="products", key=["sku"])


@FUZZ
@given(
    text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    ext=st.sampled_from([".yaml", ".json", ".csv"]),
)
def test_random_text(tmp_path: Path, tables: Tables, text: str, ext: str) -> None:
    path = tmp_path / f"f{ext}"
    path.write_text(text, encoding="utf-8")
    load(path, tables, **(FLAT if ext == ".csv" else {}))


@FUZZ
@given(doc=values, as_json=st.booleans(), flat=st.booleans())
def test_random_structures(
    tmp_path: Path, tables: Tables, doc: Any, as_json: bool, flat: bool
) -> None:
    if as_json:
        path = tmp_path / "f.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
    else:
        path = tmp_path / "f.yaml"
        path.write_text(_yaml(doc), encoding="utf-8")
    load(path, tables, **({"table": "stock", "key": ["warehouse", "sku"]} if flat else {}))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(tmp_path: Path, tables: Tables, data: st.DataObject, as_json: bool) -> None:
    doc = copy.deepcopy(BASE)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)[1:]))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(values)
    target = tmp_path / ("f.json" if as_json else "f.yaml")
    target.write_text(json.dumps(doc) if as_json else _yaml(doc), encoding="utf-8")
    load(target, tables)


@FUZZ
@given(data=st.data(), as_json=st.booleans())
def test_mutated_valid_documents(
    tmp_path: Path, tables: Tables, data: st.DataObject, as_json: bool
) -> None:
    _mutate(tmp_path, tables, data, as_json)


@pytest.mark.slow
@settings(FUZZ, max_examples=3_000)
@given(data=st.data(), as_json=st.booleans())
def test_mutated_valid_documents_deep(
    tmp_path: Path, tables: Tables, data: st.DataObject, as_json: bool
) -> None:
    _mutate(tmp_path, tables, data, as_json)


@FUZZ
@given(
    header=st.lists(st.sampled_from(["sku", "price", "name", "note", "", "sku "]), max_size=5),
    rows=st.lists(st.lists(st.text(max_size=6), max_size=5), max_size=6),
    op=st.sampled_from(["insert", "update", "delete", "upsert"]),
)
def test_random_csv(
    tmp_path: Path, tables: Tables, header: list[str], rows: list[list[str]], op: str
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / "f.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    load(path, tables, table="products", key=["sku"], op=op)


@pytest.mark.parametrize("depth", [10, 63, 64, 65, 1_000, 100_000])
@pytest.mark.parametrize(
    ("ext", "opening", "closing"),
    [
        (".json", "[", "]"),
        (".json", '{"a":', "}"),
        (".yaml", "[", "]"),
        (".yaml", "{a: ", "}"),
    ],
)
def test_deep_nesting(
    tmp_path: Path, tables: Tables, depth: int, ext: str, opening: str, closing: str
) -> None:
    path = tmp_path / f"deep{ext}"
    path.write_text(opening * depth + "1" + closing * depth, encoding="utf-8")
    load(path, tables)


def test_deep_block_yaml(tmp_path: Path, tables: Tables) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("".join("  " * i + "- \n" for i in range(3_000)) + "  " * 3_000 + "x\n")
    load(path, tables)


@settings(max_examples=200, deadline=None)
@given(
    cells=st.lists(st.one_of(st.none(), st.text()), min_size=3, max_size=3),
    op=st.sampled_from(["insert", "update", "delete", "upsert"]),
)
def test_flat_digest_lines_equal_canonical_json(cells: list[str | None], op: str) -> None:
    header = ["zeta", "ä", "a"]
    key = [("a", 2)]
    others = (
        []
        if op == "delete"
        else [(c, i) for i, c in enumerate(header) if op != "update" or c != "a"]
    )
    fast = FlatOps(op, key, others).line(cells)
    slow = canonical_json([op, {c: cells[i] for c, i in key}, {c: cells[i] for c, i in others}])
    assert fast == slow


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(
        st.tuples(
            st.text(min_size=1, max_size=8),
            st.decimals(places=2, allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_yaml_and_json_digests_agree(tmp_path: Path, ops: list[tuple[str, Decimal]]) -> None:
    keys = [k for k, _ in ops]
    assume(len(set(keys)) == len(keys))
    doc = {
        "changeset": "prop",
        "version": 1,
        "steps": [
            {
                "name": "s",
                "table": "products",
                "key": ["sku"],
                "operations": [
                    {"op": "update", "key": {"sku": k}, "set": {"price": str(p)}} for k, p in ops
                ],
            }
        ],
    }
    (tmp_path / "p.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(_yaml(doc), encoding="utf-8")
    assert load_changeset(tmp_path / "p.json").digest == load_changeset(tmp_path / "p.yaml").digest


def _container_lines(node: Node) -> list[int]:
    if isinstance(node.value, dict):
        return [node.line, *(n for c in node.value.values() for n in _container_lines(c))]
    if isinstance(node.value, list):
        return [node.line, *(n for c in node.value for n in _container_lines(c))]
    return []


@FUZZ
@given(doc=values, indent=st.sampled_from([None, 0, 1, "\t"]))
def test_fast_and_exact_json_parsers_agree(doc: Any, indent: int | str | None) -> None:
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    fast = parse_json_fast(text)
    exact, problems = parse_json(text, "f.json")
    if not problems:
        assert fast is not None  # the fast path gives up only on what needs exact lines
    if fast is not None:
        assert to_plain(fast) == to_plain(exact)
        assert _container_lines(fast) == _container_lines(exact)
