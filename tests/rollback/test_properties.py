"""Properties over generated tables, change sets and out-of-band writes (real SQLite files):
applying twice equals applying once; a rejected change set leaves the target untouched;
rollback(apply(x)) restores the baseline exactly; with out-of-band writes after the apply,
exactly those rows are conflicts and every other row is restored."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.changes import ChangeSetInvalid, load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.errors import Exit
from console.journal import Journal
from console.rollback.execute import Options, Rollback
from tests.engine.helpers import changeset_doc, make_items, sqlite_dump, write_changeset

ROWS = 40
ids = st.integers(min_value=1, max_value=ROWS)


@st.composite
def batches(draw: st.DrawFn) -> dict[str, Any]:
    """Disjoint updates, deletes (existing ids) and inserts (new ids), random values."""
    chosen = draw(st.lists(ids, min_size=1, max_size=25, unique=True))
    cut = draw(st.integers(min_value=0, max_value=len(chosen)))
    updates, deletes = chosen[:cut], chosen[cut:]
    inserts = draw(st.lists(st.integers(100, 140), max_size=8, unique=True))
    amounts = draw(
        st.lists(
            st.decimals(min_value=0, max_value=9999, places=2, allow_nan=False),
            min_size=len(updates),
            max_size=len(updates),
        )
    )
    notes = draw(
        st.lists(
            st.one_of(st.none(), st.text(max_size=6)), min_size=len(updates), max_size=len(updates)
        )
    )
    return {
        "updates": list(zip(updates, amounts, notes, strict=True)),
        "deletes": deletes,
        "inserts": inserts,
        "segment_size": draw(st.integers(1, 12)),
    }


def _doc(url: str, b: dict[str, Any], name: str = "prop") -> dict[str, Any]:
    doc = changeset_doc(url, name=name, inserts=range(0), segment_size=b["segment_size"])
    ops: list[dict[str, Any]] = [
        {"op": "update", "key": {"id": i}, "set": {"amount": str(a), "note": n}}
        for i, a, n in b["updates"]
    ]
    ops += [{"op": "delete", "key": {"id": i}} for i in b["deletes"]]
    ops += [
        {
            "op": "insert",
            "row": {
                "id": i,
                "name": f"n{i}",
                "amount": "1.50",
                "note": None,
                "seen_at": "2026-11-27T09:30:00",
            },
        }
        for i in b["inserts"]
    ]
    doc["steps"][0]["operations"] = ops
    return doc


def _setup(tmp: Path, b: dict[str, Any]) -> tuple[str, Path, Journal]:
    url = f"sqlite:///{tmp / 't.db'}"
    make_items(url, ROWS)
    return (
        url,
        write_changeset(tmp / "cs.yaml", _doc(url, b)),
        Journal(f"sqlite:///{tmp / 'j.db'}", actor="prop"),
    )


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(b=batches())
def test_apply_twice_equals_apply_once(b: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _url, cs, j = _setup(tmp, b)
        first = Engine(j, Settings()).apply(load_changeset(cs))
        assert first.exit_code == Exit.DONE, first.message
        once = sqlite_dump(tmp / "t.db")
        again = Engine(j, Settings()).apply(load_changeset(cs))
        assert again.exit_code == Exit.DONE and again.extra.get("duplicate")
        assert sqlite_dump(tmp / "t.db") == once
        j.close()


@SETTINGS
@given(b=batches(), bad=st.sampled_from(["column", "type", "null_key", "exists"]))
def test_rejected_changeset_leaves_target_untouched(b: dict[str, Any], bad: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        url, _, j = _setup(tmp, b)
        doc = _doc(url, b)
        ops = doc["steps"][0]["operations"]
        broken = {
            "column": {"op": "update", "key": {"id": 1}, "set": {"no_such_column": 1}},
            "type": {"op": "update", "key": {"id": 1}, "set": {"amount": "lots"}},
            "null_key": {"op": "delete", "key": {"id": None}},
            "exists": {"op": "insert", "row": {"id": 39, "name": "x", "amount": "1.00"}},
        }[bad]
        ops.insert(len(ops) // 2, broken)
        ops[:] = [
            o
            for o in ops
            if o is broken
            or (o.get("key") or o.get("row"))["id"]
            != (broken.get("key") or broken.get("row"))["id"]
        ]
        before = sqlite_dump(tmp / "t.db")
        try:
            Engine(j, Settings()).apply(load_changeset(write_changeset(tmp / "bad.yaml", doc)))
        except ChangeSetInvalid:
            pass
        else:
            raise AssertionError(f"a change set with a bad {bad} was accepted")
        assert sqlite_dump(tmp / "t.db") == before
        assert j.count_runs() == 0
        j.close()


@SETTINGS
@given(b=batches(), edits=st.lists(ids, max_size=6, unique=True))
def test_rollback_restores_baseline_except_out_of_band_edits(
    b: dict[str, Any], edits: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _url, cs, j = _setup(tmp, b)
        baseline = {r[0]: r for r in sqlite_dump(tmp / "t.db")}
        applied = Engine(j, Settings()).apply(load_changeset(cs))
        assert applied.exit_code == Exit.DONE, applied.message
        updated = {i for i, _, _ in b["updates"]}
        conn = sqlite3.connect(tmp / "t.db")
        with conn:
            for i in edits:  # someone edits rows after the batch (present ones only)
                # Even ids: a column the updates set (theirs against ours: a conflict); odd:
                # one they leave alone (the rollback restores its columns and keeps the edit).
                column = "amount = amount + 1" if i % 2 == 0 else "name = name || '!'"
                conn.execute(f"UPDATE items SET {column} WHERE id = ?", (i,))
        edited_present = {
            i for i in edits if conn.execute("SELECT 1 FROM items WHERE id = ?", (i,)).fetchone()
        }
        conn.close()
        report = Rollback(j, Settings()).execute(applied.run_id or "", Options())
        conflicted = {int(c["key"]["id"]) for c in report.extra["conflicts"]}
        assert conflicted == {i for i in edited_present & updated if i % 2 == 0}
        assert report.exit_code == (Exit.REVIEW if conflicted else Exit.DONE)
        now = {r[0]: r for r in sqlite_dump(tmp / "t.db")}
        for i, row in baseline.items():
            if i in edited_present:
                continue  # an out-of-band edit stands (conflict or never ours)
            assert now.get(i) == row, f"row {i} not restored"
        for i in b["inserts"]:
            assert i in now if i in conflicted else i not in now
        j.close()
