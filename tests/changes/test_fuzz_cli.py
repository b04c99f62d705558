"""Hostile change sets through `backout apply`: random bytes, random structures in YAML and
JSON, deep nesting, huge files. Always exit 2 with one sentence naming the file, never a
traceback, and neither the journal nor the target changes.

(tests/changes/test_changes_fuzz.py fuzzes the loaders themselves, below the CLI.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from console.journal import Journal
from tests.engine.helpers import dump, make_items
from tests.hostile import (
    NORMAL,
    SLOW,
    assert_refused,
    cli,
    deep,
    deep_block_yaml,
    dumped,
    journal_head,
    structures,
)

WORDS = [
    "changeset", "version", "steps", "name", "table", "key", "operations", "op", "set", "row",
    "options", "segment_size", "on_error", "target", "invariants", "sql", "expect", "items",
    "id", "note", "amount", "update", "insert", "delete", "upsert", "$b64",
]  # fmt: skip
FLAT = ["--table", "items", "--key", "id", "--op", "update"]
NESTING = [("[", "]"), ("{a: ", "}"), ('{"a":', "}"), ("- [", "]")]


@dataclass
class Scene:
    journal: str
    target: str
    tmp: Path

    def state(self) -> tuple[object, ...]:
        return journal_head(self.journal), dump(self.target), dump(self.target, "writes")

    def refused(self, name: str, content: str | bytes, *extra: str) -> str:
        path = self.tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
        before = self.state()
        result = cli(["--journal", self.journal, "apply", str(path), *extra])
        assert self.state() == before, "a refused change set wrote something"
        return assert_refused(result, path)


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    make_items(target, 5)
    journal = f"sqlite:///{tmp_path / 'journal.db'}"
    j = Journal(journal, actor="test")
    j.append("note", {"text": "the journal is not empty"})
    j.close()
    yield Scene(journal, target, tmp_path)


def _bytes_case(scene: Scene, data: bytes, ext: str) -> None:
    scene.refused(f"f{ext}", data, *(FLAT if ext == ".csv" else ()))


def _structure_case(scene: Scene, doc: object, how: str, aimed: bool) -> None:
    if aimed and isinstance(doc, dict):  # aimed at the real target: validation goes deeper
        doc = {"changeset": "x", "version": 1, "target": scene.target, **doc}
    try:
        text = dumped(doc, how)
    except (ValueError, OverflowError):
        return  # not representable in that syntax
    scene.refused(f"doc.{how}", text)


def _deep_case(scene: Scene, depth: int, nesting: int, block: bool) -> None:
    opening, closing = NESTING[nesting]
    text = deep_block_yaml(depth) if block else deep(opening, closing, depth)
    scene.refused("deep.json" if opening.startswith('{"') else "deep.yaml", text)


bytes_cases = given(data=st.binary(max_size=4_000), ext=st.sampled_from([".yaml", ".json", ".csv"]))
structure_cases = given(
    doc=structures(WORDS), how=st.sampled_from(["yaml", "json"]), aimed=st.booleans()
)
deep_cases = given(
    depth=st.integers(1, 20_000), nesting=st.integers(0, len(NESTING) - 1), block=st.booleans()
)


@NORMAL
@bytes_cases
def test_random_bytes(scene: Scene, data: bytes, ext: str) -> None:
    _bytes_case(scene, data, ext)


@NORMAL
@structure_cases
@example(doc={" \x85": None}, how="yaml", aimed=False)  # a C1 line break echoed in the message
def test_random_structures(scene: Scene, doc: object, how: str, aimed: bool) -> None:
    _structure_case(scene, doc, how, aimed)


@settings(NORMAL, max_examples=40)
@deep_cases
def test_deep_nesting(scene: Scene, depth: int, nesting: int, block: bool) -> None:
    _deep_case(scene, depth, nesting, block)


@pytest.mark.slow
@SLOW
@bytes_cases
def test_random_bytes_thousands(scene: Scene, data: bytes, ext: str) -> None:
    _bytes_case(scene, data, ext)


@pytest.mark.slow
@SLOW
@structure_cases
def test_random_structures_thousands(scene: Scene, doc: object, how: str, aimed: bool) -> None:
    _structure_case(scene, doc, how, aimed)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("huge.yaml", "a" * 30_000_000),  # one plain scalar, not a mapping
        ("huge.json", '{"changeset": "' + "x" * 30_000_000 + '"}'),
        ("huge.bin.yaml", bytes(range(256)) * 40_000),
        ("wide.yaml", "{" + ", ".join(f"k{i}: {i}" for i in range(30_000)) + "}"),
        ("laughs.yaml", "a: &a [x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
                   for i in range(8))),
    ],
    ids=["scalar", "string", "binary", "wide", "laughs"],
)  # fmt: skip
def test_huge_input(scene: Scene, name: str, content: str | bytes) -> None:
    scene.refused(name, content)
