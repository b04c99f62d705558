"""Export of a run rolled back through the approval-gated runbook: the bundle carries the
runbook and approval events and verifies offline; the report names who decided and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runbook.conftest import Team, make_team


@pytest.fixture
def walked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Team, str]:
    monkeypatch.chdir(tmp_path)
    team = make_team(f"sqlite:///{tmp_path / 'journal.db'}", tmp_path)
    c = team.cli
    started = c(
        "oncall1", "runbook", "start", "runbooks/rb-walk.yaml", "--run", team.run_id, "--json"
    )
    assert started.code == 0, started.err
    ex = started.json()["exec_id"]
    assert c("oncall1", "runbook", "next", ex).code == 0  # pause
    assert c("oncall1", "runbook", "next", ex).code == 0  # assess; approval requested
    assert c("oncall1", "approve", ex).code == 4  # self-approval: refused by the gate
    assert c("owner1", "approve", ex, "--comment", "plan read, 10 rows").code == 0
    assert c("ic1", "approve", ex, "--comment", "go").code == 0
    assert c("oncall1", "runbook", "next", ex).code == 0  # approval step passes
    assert c("oncall1", "runbook", "next", ex).code == 0  # rollback
    return team, ex


def test_runbook_approvals_in_bundle_and_report(walked: tuple[Team, str], tmp_path: Path) -> None:
    team, ex = walked
    bundle = tmp_path / "evidence.json"
    r = team.cli("oncall1", "export", team.run_id, "--format", "json", "-o", str(bundle))
    assert r.code == 0, r.err
    data = json.loads(bundle.read_text())
    kinds = {e["kind"] for e in data["events"]}
    assert {"runbook.started", "approval.requested", "approval.granted", "gate.refused"} <= kinds
    assert [r["kind"] for r in data["related_runs"]] == ["rollback"]

    md_path = tmp_path / "incident.md"
    r = team.cli("oncall1", "export", team.run_id, "-o", str(md_path))
    assert r.code == 0, r.err
    md = md_path.read_text()
    decisions = md.split("## Approvals and decisions", 1)[1].split("##", 1)[0]
    assert f"**{team.who('owner1')}** granted at step approve: “plan read, 10 rows”" in decisions
    assert f"**{team.who('ic1')}** granted at step approve: “go”" in decisions
    assert "gate refused approve" in decisions
    assert f"runbook rb-walk v1 started (exec {ex})" in md

    (tmp_path / "journal.db").unlink()
    r = team.cli("nobody", "journal", "verify", "--bundle", str(bundle), "--json")
    assert r.code == 0, r.err
    assert r.json()["rehashed"] == len(data["events"])
