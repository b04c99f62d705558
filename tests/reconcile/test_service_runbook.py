"""The shipped reconcile-and-fix runbook on a real run: reconcile, approve the exact fix plan,
fix through the journal, verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runbook.conftest import make_team


def test_reconcile_and_fix_runbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    t = make_team(f"sqlite:///{tmp_path / 'journal.db'}", tmp_path)
    t.target_sql("UPDATE items SET note = 'oops' WHERE id = 3")
    r = t.cli(
        "oncall1", "runbook", "start", "reconcile-and-fix", "--run", t.run_id,
        "--backup-ref", "snap-1", "--json",
    )  # fmt: skip
    assert r.code == 0, r.err
    ex = r.json()["exec_id"]
    r = t.cli("oncall1", "runbook", "next", ex, "--json")  # reconcile
    assert r.code == 0, r.err
    assert r.json()["result"]["findings"]["wrong_value"] == 1
    assert r.json()["next_step"] == "approve"
    assert t.cli("owner1", "approve", ex, "--comment", "fix plan read").code == 0
    assert t.cli("ic1", "approve", ex).code == 0  # the policy's quorum is 2
    assert t.cli("oncall1", "runbook", "next", ex).code == 0  # approval passes
    r = t.cli("oncall2", "runbook", "next", ex, "--json")  # fix
    assert r.code == 0, r.err + r.out
    assert r.json()["result"]["verified"] is True
    r = t.cli("oncall2", "runbook", "next", ex, "--json")  # verify
    assert r.code == 0, r.err
    assert r.json()["result"]["findings"]["wrong_value"] == 0
    j = t.journal()
    assert j.count_events(None, ["fix.verified"]) == 1
