"""The rollback runbook walked end to end by CLI, one new process per command, by several
people, on SQLite and on PostgreSQL (where each person is a database role)."""

from __future__ import annotations

from console.journal import Journal
from console.journal.verify import verify
from tests.engine.helpers import write_counts
from tests.runbook.conftest import Team


def _rules(team: Team) -> list[str]:
    return [r["rule"] for r in team.refusals()]


def test_rollback_runbook_walk(team: Team) -> None:
    # Each step runs in a new process (`python -m console`); approvals and status calls use
    # the same CLI in this process, to keep the suite fast.
    p, c = team.proc, team.cli
    started = p(
        "oncall1", "runbook", "start", "runbooks/rb-walk.yaml", "--run", team.run_id, "--json"
    )
    assert started.code == 0, started.err
    ex = started.json()["exec_id"]

    assert p("oncall1", "runbook", "next", ex).code == 0  # pause (the run already completed)
    assert p("oncall1", "runbook", "next", ex).code == 0  # assess; approval is requested

    # Self-approval: the requester cannot approve their own request.
    r = c("oncall1", "approve", ex)
    assert r.code == 4 and "approval.exclude.requester" in r.err and r.err[-1] == "\n"
    # Two approvals, but nobody from data-owner: the role is missing.
    assert c("ic1", "approve", ex, "--comment", "plan read").code == 0
    assert c("oncall2", "approve", ex).code == 0
    r = p("oncall1", "runbook", "next", ex)
    assert r.code == 4 and "approval.require_roles" in r.err
    assert c("owner1", "approve", ex, "--comment", "ok").code == 0
    # A second approval by the same person is refused.
    r = c("owner1", "approve", ex)
    assert r.code == 4 and "approval.duplicate" in r.err
    assert p("oncall1", "runbook", "next", ex).code == 0  # the approval step passes

    # Someone changes a row the batch wrote: the rollback plan changes, approvals are void.
    team.target_sql("UPDATE items SET amount = 777 WHERE id = 3")
    r = p("oncall2", "runbook", "next", ex)
    assert r.code == 4 and "approval.plan_digest" in r.err
    status = c("oncall2", "runbook", "status", ex, "--json").json()
    assert status["current_step"] == "approve" and status["status"] == "awaiting_approval"
    assert {a["state"] for a in status["approvals"]} == {"void"}
    # Only one fresh approval for the new plan: quorum not met.
    assert c("owner2", "approve", ex, "--comment", "saw the conflict").code == 0
    r = p("oncall2", "runbook", "next", ex)
    assert r.code == 4 and "approval.quorum" in r.err
    assert c("ic1", "approve", ex, "--comment", "new plan read").code == 0
    assert p("oncall2", "runbook", "next", ex).code == 0

    # The rollback: the changed row is a conflict left for review (exit 3), not overwritten.
    before = write_counts(team.target)
    r = p("oncall2", "runbook", "next", ex)
    assert r.code == 3, r.err
    after = write_counts(team.target)
    assert after[3] == before[3] and all(after[i] == before[i] + 1 for i in range(4, 11))
    # Verify finds the row not restored and branches to the escalation.
    r = p("oncall2", "runbook", "next", ex)
    assert r.code == 3 and "next: 'escalate'" in r.out
    r = p("oncall2", "runbook", "next", ex)
    assert r.code == 0 and "escalated" in r.out

    status = c("oncall1", "runbook", "status", ex, "--json").json()
    assert status["status"] == "escalated"
    states = {s["id"]: s["state"] for s in status["steps"]}
    assert states == {
        "pause": "done",
        "assess": "done",
        "approve": "approved",
        "rollback": "done",
        "verify": "failed",
        "notify": "pending",
        "escalate": "done",
    }
    evidence = {s["id"]: s for s in status["steps"]}
    assert evidence["rollback"]["by"] == team.who("oncall2")
    assert evidence["rollback"]["output_digest"]
    assert evidence["rollback"]["result"]["conflicts"] == 1

    # Every refusal is in the journal, with the rule and the policy version and digest.
    refusals = team.refusals()
    rules = [r["rule"] for r in refusals]
    for rule in (
        "approval.exclude.requester",
        "approval.require_roles",
        "approval.duplicate",
        "approval.plan_digest",
        "approval.quorum",
    ):
        assert rule in rules
    assert all(r["policy_version"] == 3 and len(r["policy_digest"]) == 64 for r in refusals)

    j = Journal(team.url, actor="auditor")
    try:
        kinds = [e.kind for e in j.events(team.run_id, limit=10_000)]
        assert "escalation" in kinds and kinds.count("approval.requested") == 2
        granted = j.events(kinds=["approval.granted"], limit=100)
        assert {e.actor for e in granted} == {
            team.who(p) for p in ("ic1", "oncall2", "owner1", "owner2")
        }
        assert all(
            len(e.payload["plan_digest"]) == 64 and e.payload["head"]["seq"] > 0 for e in granted
        )
        report = verify(j, remember=False)
        assert report.ok, report.problem
    finally:
        j.close()
