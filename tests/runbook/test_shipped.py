"""The shipped runbooks, found by name and walked on a real run (the reconciliation steps
need `console.reconcile.service`)."""

from __future__ import annotations

from tests.runbook.conftest import Team


def test_list_finds_shipped_and_local_runbooks(sqlite_team: Team) -> None:
    r = sqlite_team.cli("oncall1", "runbook", "list", "--json")
    assert r.code == 0
    names = {i["name"]: i for i in r.json()}
    for name in ("rollback-batch", "reconcile-and-fix", "resume-after-guard", "rb-walk"):
        assert names[name]["valid"], name


def test_shipped_rollback_batch_end_to_end(sqlite_team: Team) -> None:
    t = sqlite_team
    r = t.cli("oncall1", "runbook", "start", "rollback-batch", "--run", t.run_id, "--json")
    assert r.code == 0, r.err
    ex = r.json()["exec_id"]
    assert t.cli("oncall1", "runbook", "next", ex).code == 0  # pause
    r = t.cli("oncall1", "runbook", "next", ex, "--json")  # assess: a clean run
    assert r.code == 0, r.err
    assert r.json()["result"]["findings"]["wrong_value"] == 0
    assert r.json()["next_step"] == "approve"
    assert t.cli("owner1", "approve", ex, "--comment", "plan read").code == 0
    assert t.cli("ic1", "approve", ex).code == 0
    assert t.cli("oncall1", "runbook", "next", ex).code == 0  # approval passes
    r = t.proc("oncall2", "runbook", "next", ex)  # the rollback, in a new process
    assert r.code == 0, r.err
    r = t.cli("oncall2", "runbook", "next", ex, "--json")  # verify against the baseline
    assert r.code == 0, r.err
    assert r.json()["result"]["findings"]["not_restored"] == 0
    r = t.cli("oncall2", "runbook", "next", ex)  # notify
    assert r.code == 0 and "completed" in r.out
