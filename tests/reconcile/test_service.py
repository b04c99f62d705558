"""Reconciliation of real journaled runs on real targets (apply, out-of-band edits, a later
run, a paused run, a rollback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from console.changes import load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.errors import Exit
from console.journal import Journal
from console.journal.verify import verify
from console.reconcile.service import explain_finding, reconcile_run
from console.rollback.execute import Options, Rollback
from tests.engine.helpers import changeset_doc, make_items, write_changeset


def _journal(tmp_path: Path) -> Journal:
    return Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")


def _apply(j: Journal, tmp_path: Path, doc: dict[str, Any], name: str = "cs.yaml") -> str:
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / name, doc)))
    assert report.run_id
    return report.run_id


def _sql(url: str, *statements: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for s in statements:
            conn.execute(text(s))
    engine.dispose()


def _keys(result: Any, cls: str) -> set[int]:
    return {int(f.key[0]) for f in result.findings if f.cls == cls}


def test_clean_run_is_applied_and_journaled(target_url: str, tmp_path: Path) -> None:
    make_items(target_url, 40)
    doc = changeset_doc(
        target_url, updates=range(1, 11), inserts=range(100, 103), deletes=range(30, 32)
    )
    j = _journal(tmp_path)
    run_id = _apply(j, tmp_path, doc)
    res = reconcile_run(j, Settings(), run_id)
    assert res.against == "expected"
    assert res.exit_code == Exit.DONE, res.counts
    assert res.counts == {"applied": 15}
    assert not j.get_run(run_id).drifted
    events = j.events(run_id, kinds=["reconcile.finished"])
    assert len(events) == 1 and events[0].payload["counts"] == {"applied": 15}
    assert set(events[0].payload["digests"]["items"]) >= {"baseline", "expected", "actual"}
    assert verify(j, remember=False).ok


def test_out_of_band_edits_wrong_value_missing_and_collateral(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 40)
    j = _journal(tmp_path)
    run_id = _apply(j, tmp_path, changeset_doc(url, updates=range(1, 11)))
    _sql(
        url,
        "UPDATE items SET note = 'hand edit' WHERE id = 3",
        "DELETE FROM items WHERE id = 4",
        "UPDATE items SET amount = amount + 1 WHERE id = 20",  # outside the change set
    )
    res = reconcile_run(j, Settings(), run_id)
    assert res.exit_code == Exit.REVIEW
    assert _keys(res, "wrong_value") == {3}
    assert _keys(res, "missing_row") == {4}
    assert _keys(res, "applied") == set(range(1, 11)) - {4}
    assert _keys(res, "collateral") == {20}  # outside the change set: the table baseline
    assert "aggregate_mismatch" not in res.counts  # every row explains its part
    assert j.get_run(run_id).drifted
    worst = j.events(run_id, kinds=["reconcile.finished"])[0].payload["worst"]
    assert worst[0]["class"] == "wrong_value" and worst[0]["op_no"] is not None
    ex = explain_finding(j, Settings(), run_id, [3])
    fields = {f["column"]: f for f in ex["fields"]}
    assert ex["class"] == "wrong_value" and fields["note"]["class"] == "wrong_value"
    assert fields["note"]["actual"] == "hand edit" and fields["note"]["expected"] == "v2"
    assert verify(j, remember=False).ok


def test_later_run_is_later_overwrite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 30)
    j = _journal(tmp_path)
    first = _apply(j, tmp_path, changeset_doc(url, updates=range(1, 11)))
    second = changeset_doc(url, name="other-batch", updates=range(5, 7))
    for op in second["steps"][0]["operations"]:
        op["set"] = {"note": "v3"}
    _apply(j, tmp_path, second, "cs2.yaml")
    res = reconcile_run(j, Settings(), first)
    assert _keys(res, "later_overwrite") == {5, 6}
    assert "wrong_value" not in res.counts


def test_paused_run_not_applied(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 40)
    doc = changeset_doc(url, updates=range(1, 31), segment_size=10)
    doc["steps"][0]["operations"][14]["set"]["amount"] = "-5.00"  # segment 2 fails
    j = _journal(tmp_path)
    run_id = _apply(j, tmp_path, doc)
    assert j.get_run(run_id).status == "paused"
    res = reconcile_run(j, Settings(), run_id)
    assert _keys(res, "applied") == set(range(1, 11))
    assert _keys(res, "not_applied") == set(range(11, 31))
    assert res.exit_code == Exit.REVIEW


def test_after_rollback_restored_and_not_restored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 30)
    j = _journal(tmp_path)
    run_id = _apply(j, tmp_path, changeset_doc(url, updates=range(1, 11), inserts=range(50, 52)))
    Rollback(j, Settings()).execute(run_id, Options())
    assert j.get_run(run_id).status == "rolled_back"
    res = reconcile_run(j, Settings(), run_id)
    assert res.against == "baseline"
    assert res.counts == {"restored": 12} and res.exit_code == Exit.DONE
    _sql(url, "UPDATE items SET note = 'v2' WHERE id = 2")  # as if the rollback missed it
    res = reconcile_run(j, Settings(), run_id, "baseline")
    assert _keys(res, "not_restored") == {2}
    assert res.exit_code == Exit.REVIEW
    assert verify(j, remember=False).ok
