"""Normalisers and group columns declared once, in the change set (a step's ``reconcile:``)
or in ``backout.toml`` (``[reconcile.normalise.TABLE]``), validated strictly and used by
every stage of a real reconciliation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from console.changes import load_changeset
from console.changes.errors import ChangeSetInvalid
from console.config import ReconcileConfig, Settings, load_settings
from console.engine.apply import Engine
from console.errors import BadInput
from console.journal import Journal
from console.reconcile.normalise import Normalisers, merge_specs
from console.reconcile.service import explain_finding, reconcile_run
from tests.engine.helpers import changeset_doc, make_items, write_changeset

NOTE = {"note": {"trim": True, "case": "lower"}}


def _doc(url: str, reconcile: dict[str, Any] | None) -> dict[str, Any]:
    doc = changeset_doc(url, updates=range(1, 11))
    if reconcile is not None:
        doc["steps"][0]["reconcile"] = reconcile
    return doc


def _apply(
    tmp_path: Path, url: str, doc: dict[str, Any], settings: Settings
) -> tuple[Journal, str]:
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")
    report = Engine(j, settings).apply(load_changeset(write_changeset(tmp_path / "cs.yaml", doc)))
    assert report.run_id
    return j, report.run_id


def _edit(url: str, *statements: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for s in statements:
            conn.execute(text(s))
    engine.dispose()


def _wrong(res: Any) -> set[int]:
    return {int(f.key[0]) for f in res.findings if f.cls == "wrong_value"}


@pytest.mark.parametrize("declared", [True, False])
def test_change_set_normalisers_reach_detection_and_explanation(
    tmp_path: Path, declared: bool
) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 30)
    j, run_id = _apply(
        tmp_path, url, _doc(url, {"normalise": NOTE} if declared else None), Settings()
    )
    _edit(
        url,
        "UPDATE items SET note = '  V2 ' WHERE id = 3",
        "UPDATE items SET amount = 9 WHERE id = 4",
    )
    res = reconcile_run(j, Settings(), run_id)
    assert _wrong(res) == ({4} if declared else {3, 4})
    assert (
        res.digests["items"]["normalisers"] == Normalisers.parse(NOTE if declared else None).digest
    )
    ex = explain_finding(j, Settings(), run_id, [3])
    changed = str(ex["deepdiff"]["reference_to_actual"])
    assert ("root['note']" in changed) is not declared  # equal under the declared rule


def test_config_and_change_set_merge_change_set_wins_per_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 30)
    config = {"items": {"amount": {"decimals": 0}, "note": {"case": "upper"}, "ignore": ["name"]}}
    settings = Settings(reconcile=ReconcileConfig(normalise=config))
    j, run_id = _apply(tmp_path, url, _doc(url, {"normalise": NOTE}), settings)
    _edit(
        url,
        "UPDATE items SET note = ' v2' WHERE id = 3",  # equal under the change set's rule
        "UPDATE items SET amount = amount + 0.1 WHERE id = 4",  # equal at 0 places (config)
        "UPDATE items SET name = 'renamed' WHERE id = 5",  # ignored (config)
        "UPDATE items SET note = 'other' WHERE id = 6",
    )
    res = reconcile_run(j, settings, run_id)
    assert _wrong(res) == {6}
    merged = merge_specs(config["items"], NOTE)
    assert merged["note"] == NOTE["note"] and merged["amount"] == {"decimals": 0}
    assert res.digests["items"]["normalisers"] == Normalisers.parse(merged).digest
    # without the config only the change set's rule applies
    assert _wrong(reconcile_run(j, Settings(), run_id)) == {4, 5, 6}


def test_change_set_reconcile_section_is_validated_strictly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    doc = _doc(url, {"normalise": {"amount": {"decimals": 2, "epsilom": 1}}, "grup_by": "x"})
    with pytest.raises(ChangeSetInvalid) as info:
        load_changeset(write_changeset(tmp_path / "cs.yaml", doc))
    problems = {p.field: p for p in info.value.problems}
    assert set(problems) == {
        "steps[0].reconcile.grup_by",
        "steps[0].reconcile.normalise.amount.epsilom",
    }
    assert all(p.line for p in problems.values())
    assert "group_by" in problems["steps[0].reconcile.grup_by"].message  # did you mean
    bad = _doc(url, {"normalise": {"note": {"case": "title"}}})
    with pytest.raises(ChangeSetInvalid, match=r"normalise\.note\.case: must be lower or upper"):
        load_changeset(write_changeset(tmp_path / "cs2.yaml", bad))


def test_backout_toml_reconcile_section_is_strict(tmp_path: Path) -> None:
    cfg = tmp_path / "backout.toml"
    cfg.write_text("[reconcile]\nfull_baseline_rows = 5\nrows_per_buckett = 3\n")
    with pytest.raises(BadInput, match=r"backout.toml:3: unknown key 'reconcile.rows_per_buckett'"):
        load_settings(cfg)
    cfg.write_text("[reconcile.normalise.items]\nprice = {decimals = 40}\n")
    with pytest.raises(
        BadInput, match=r"backout.toml:1: 'reconcile.normalise.items' .*price.decimals"
    ):
        load_settings(cfg)
    cfg.write_text("[reconcile.normalise.items]\nprice = {decimals = 2}\nignore = ['x']\n")
    assert load_settings(cfg).reconcile.normalise["items"]["price"] == {"decimals": 2}


def test_unknown_column_in_declared_normaliser_is_bad_input(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 5)
    j, run_id = _apply(
        tmp_path, url, _doc(url, {"normalise": {"nope": {"trim": True}}}), Settings()
    )
    with pytest.raises(BadInput, match="nope"):
        reconcile_run(j, Settings(), run_id)
