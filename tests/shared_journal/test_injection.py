"""SQL injection through change sets and CLI arguments, on SQLite, PostgreSQL and MariaDB
targets: hostile table names, column names and key values are refused (exit 2, nothing
written) or stored literally; they are never executed. Invariant SQL is trusted
configuration, run read-only: an invariant that tries to write trips the guard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.journal import Journal
from tests.engine.helpers import changeset_doc, dump, make_items, write_changeset
from tests.hostile import assert_refused, cli, journal_head

TABLES = [
    'items"; DROP TABLE items; --',
    "items`; DROP TABLE items; -- ",
    "items; DROP TABLE items",
    "items' OR '1'='1",
    "items]; DROP TABLE items; --",
]
COLUMNS = ['note"; DROP TABLE items; --', "note`; DROP TABLE items; -- ", "note = note; --"]
KEYS = ["1; DROP TABLE items", "1' OR '1'='1", "1`; DELETE FROM items; --", "1 OR 1=1"]
VALUES = [
    "'; DELETE FROM items; --",
    'x"); DROP TABLE items; --',
    "`; DROP TABLE items; -- ",
    "\\'; DROP TABLE items; --",
    "$$; DROP TABLE items; $$",
]


@pytest.fixture
def scene(target_url: str, tmp_path: Path) -> tuple[str, str, Path]:
    make_items(target_url, 8)
    journal = f"sqlite:///{tmp_path / 'journal.db'}"
    Journal(journal, actor="test").append("note", {"text": "start"})
    return target_url, journal, tmp_path


def _apply(journal: str, path: Path, *extra: str) -> Any:
    return cli(["--journal", journal, "apply", str(path), *extra])


def _refused(scene: tuple[str, str, Path], name: str, doc: dict[str, Any]) -> None:
    """Exit 2, the target untouched, and in the journal only the audit of the rejection."""
    target, journal, tmp = scene
    (seq, _), before = journal_head(journal), (dump(target), dump(target, "writes"))
    path = write_changeset(tmp / f"{name}.yaml", doc)
    assert_refused(_apply(journal, path), path)
    assert (dump(target), dump(target, "writes")) == before
    j = Journal(journal)
    try:
        assert not j.runs(limit=10)
        new = j.events(limit=100)[seq:]
        assert [e.kind for e in new] in ([], ["changeset.rejected"]), new
    finally:
        j.close()


def test_hostile_table_column_and_key_names_are_refused(scene: tuple[str, str, Path]) -> None:
    target = scene[0]
    for n, table in enumerate(TABLES):
        doc = changeset_doc(target, name=f"t{n}", updates=range(1, 3))
        doc["steps"][0]["table"] = table
        _refused(scene, f"table{n}", doc)
    for n, column in enumerate(COLUMNS):
        doc = changeset_doc(target, name=f"c{n}", updates=range(1, 3))
        doc["steps"][0]["operations"][0]["set"] = {column: "x"}
        _refused(scene, f"column{n}", doc)
        doc = changeset_doc(target, name=f"k{n}", updates=range(1, 3))
        doc["steps"][0]["key"] = [column]
        _refused(scene, f"keycol{n}", doc)
    for n, key in enumerate(KEYS):
        doc = changeset_doc(target, name=f"v{n}", deletes=range(1, 3))
        doc["steps"][0]["operations"][0]["key"] = {"id": key}
        _refused(scene, f"keyval{n}", doc)


def test_hostile_values_are_stored_literally_and_rolled_back(
    scene: tuple[str, str, Path],
) -> None:
    target, journal, tmp = scene
    baseline = dump(target)
    doc = changeset_doc(target, name="literal", updates=range(1, 1 + len(VALUES)))
    for op, value in zip(doc["steps"][0]["operations"], VALUES, strict=True):
        op["set"] = {"note": value, "name": value}
    doc["steps"][0]["operations"].append(
        {"op": "insert", "row": {"id": 100, "name": VALUES[0], "amount": "1.00", "note": VALUES[1]}}
    )
    doc["steps"][0]["invariants"] = [
        {"name": name, "sql": "SELECT COUNT(*) FROM items WHERE amount < 0", "expect": 0}
        for name in ("x'; DROP TABLE items; --", 'y"; DELETE FROM items; --')
    ]
    result = _apply(journal, write_changeset(tmp / "literal.yaml", doc))
    assert result.code == 0, result.err
    rows = {r[0]: r for r in dump(target)}
    assert len(rows) == 9  # nothing dropped or deleted
    for i, value in enumerate(VALUES, start=1):
        assert rows[i][1] == value and rows[i][3] == value
    assert rows[100][1] == VALUES[0] and rows[100][3] == VALUES[1]
    j = Journal(journal)
    run_id = j.runs(limit=1)[0].id
    j.close()
    assert cli(["--journal", journal, "rollback", run_id]).code == 0
    assert dump(target) == baseline


def test_hostile_cli_arguments_are_refused(scene: tuple[str, str, Path]) -> None:
    journal = scene[1]
    before = journal_head(journal)
    for args in (
        ["show", "x'; DROP TABLE runs; --"],
        ["events", "x' OR '1'='1"],
        ["rollback", "x'; DELETE FROM events; --"],
        ["runs", "--status", "x'; DROP TABLE runs; --"],
        ["export", "x' OR '1'='1"],
    ):
        result = cli(["--journal", journal, *args])
        assert result.code == 2, (args, result.code, result.err)
        assert result.err.startswith("backout: ") and len(result.err.strip().splitlines()) == 1
    assert journal_head(journal) == before
    j = Journal(journal)
    assert j.events(limit=10)[0].payload == {"text": "start"}
    j.close()


def test_an_invariant_that_writes_is_refused_before_anything_is_written(
    scene: tuple[str, str, Path],
) -> None:
    """Invariant SQL runs read-only (a read-only transaction, or PRAGMA query_only), and it
    runs once before the first write: one that writes is bad input (exit 2), and neither the
    target nor the journal's runs change."""
    target, journal, tmp = scene
    doc = changeset_doc(target, name="writer", updates=range(1, 5), segment_size=2)
    doc["steps"][0]["invariants"] = [{"name": "sneaky", "sql": "DELETE FROM items", "expect": 0}]
    before = dump(target)
    j = Journal(journal)
    runs = len(j.runs(limit=100))
    j.close()
    result = _apply(journal, write_changeset(tmp / "writer.yaml", doc))
    assert result.code == 2, result.err
    assert "steps[0].invariants[0].sql: invariant 'sneaky' cannot run" in result.err
    assert dump(target) == before  # the DELETE did not run, and no update either
    j = Journal(journal)
    assert len(j.runs(limit=100)) == runs
    j.close()
