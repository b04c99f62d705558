"""Approval and execution scenarios through the CLI: expiry with a controlled clock, denial,
identity, the executor exclusion, a crashed executor, the pinned runbook, prerequisites,
manual steps, governance and locks. Every refusal exits 4 and is journaled."""

from __future__ import annotations

import os
import socket

import pytest

from console.config import load_settings
from console.engine import lease
from console.engine.lease import Holder
from console.errors import Blocked
from console.journal import Journal
from console.runbook import gate
from console.runbook.executor import lease_key
from tests.engine.helpers import dump
from tests.runbook.conftest import Team, make_team

APPROVE_FIRST = """
runbook: rb-approve-first
version: 1
steps:
  - id: approve
    approval: {{quorum: 2}}
    {on_denied}
  - id: rollback
    action: rollback
    next: end
"""
ESCALATE = """  - id: escalate
    escalate: {page: [dba-oncall], message: denied}
"""


def _start(
    team: Team,
    runbook: str,
    person: str = "oncall1",
    *extra: str,
    env: dict[str, str] | None = None,
) -> str:
    r = team.cli(
        person, "runbook", "start", runbook, "--run", team.run_id, "--json", *extra, env=env
    )
    assert r.code == 0, r.err
    return str(r.json()["exec_id"])


def _approve_first(
    team: Team, on_denied: str = "on_denied: escalate", env: dict[str, str] | None = None
) -> str:
    body = APPROVE_FIRST.format(on_denied=on_denied) + (ESCALATE if on_denied else "")
    team.write_runbook("rb-approve-first", body)
    return _start(team, "rb-approve-first", env=env)


def _status(team: Team, ex: str) -> dict[str, object]:
    r = team.cli("oncall1", "runbook", "status", ex, "--json")
    assert r.code == 0, r.err
    return dict(r.json())


def test_expiry_is_its_own_state_and_never_counts(sqlite_team: Team) -> None:
    t = sqlite_team
    later = {"BACKOUT_CLOCK": "+31m"}
    ex = _approve_first(t)
    assert t.cli("owner1", "approve", ex).code == 0
    assert t.cli("ic1", "approve", ex).code == 0
    r = t.cli("oncall1", "runbook", "next", ex, env=later)
    assert r.code == 4 and "approval.expires_after" in r.err
    status = _status(t, ex)
    assert status["status"] == "blocked"
    assert [s["state"] for s in status["steps"] if s["id"] == "approve"] == ["expired"]  # type: ignore[attr-defined]
    assert {a["state"] for a in status["approvals"]} == {"expired"}  # type: ignore[attr-defined]
    pending = t.cli("oncall1", "approvals", "--pending", "--json", env=later).json()
    assert [p["state"] for p in pending] == ["expired"]
    # Approving an expired request is refused; `next` asks for approval again.
    r = t.cli("owner2", "approve", ex, env=later)
    assert r.code == 4 and "approval.pending" in r.err
    r = t.cli("oncall1", "runbook", "next", ex, env=later)
    assert r.code == 4 and "approval requested" in r.err
    assert t.cli("owner1", "approve", ex, env=later).code == 0
    assert t.cli("ic1", "approve", ex, env=later).code == 0
    assert t.cli("oncall1", "runbook", "next", ex, env=later).code == 0
    j = t.journal()
    try:
        kinds = [e.kind for e in j.events(t.run_id, kinds=["approval.*"], limit=100)]
    finally:
        j.close()
    assert kinds.count("approval.expired") == 1 and kinds.count("approval.requested") == 2


def test_unanswered_request_expires(sqlite_team: Team) -> None:
    t = sqlite_team
    ex = _approve_first(t)
    r = t.cli("oncall1", "runbook", "next", ex, env={"BACKOUT_CLOCK": "+2h"})
    assert r.code == 4 and "approval.expires_after" in r.err
    assert "approval.expires_after" in [x["rule"] for x in t.refusals()]


def test_denial_branches_or_ends(sqlite_team: Team) -> None:
    t = sqlite_team
    ex = _approve_first(t)
    r = t.cli("owner1", "deny", ex)
    assert r.code == 2  # a denial needs a comment
    r = t.cli("owner1", "deny", ex, "--comment", "conflicts need a DBA")
    assert r.code == 0, r.err
    r = t.cli("owner2", "approve", ex)
    assert r.code == 4  # nothing pending any more
    status = _status(t, ex)
    assert status["current_step"] == "escalate"
    assert t.cli("oncall1", "runbook", "next", ex).code == 0
    assert _status(t, ex)["status"] == "escalated"

    # Without on_denied, a denial ends the execution: denied, and nothing runs after it.
    t.cli("oncall1", "runbook", "abort", ex, "--comment", "done")
    ex2 = _approve_first(t, on_denied="")
    assert t.cli("ic1", "deny", ex2, "--comment", "no").code == 0
    assert _status(t, ex2)["status"] == "denied"
    r = t.cli("oncall1", "runbook", "next", ex2)
    assert r.code == 4 and "denied" in r.err
    decisions = [a["decision"] for a in _status(t, ex2)["approvals"]]  # type: ignore[attr-defined]
    assert decisions == ["denied"]


def test_executor_cannot_count_their_own_approval(sqlite_team: Team) -> None:
    t = sqlite_team
    ex = _approve_first(t)
    assert t.cli("owner1", "approve", ex).code == 0
    assert t.cli("owner2", "approve", ex).code == 0
    r = t.cli("owner2", "runbook", "next", ex)
    assert r.code == 4 and "approval.exclude.executor" in r.err


def test_identity_is_the_database_role_on_postgresql(team: Team) -> None:
    if team.backend != "postgres":
        # SQLite: --as is the identity.
        r = team.cli("owner1", "approvals", "--json")
        assert r.code == 0
        return
    ex = _start(team, "runbooks/rb-walk.yaml")
    # Connected as owner1, claiming to be owner2: refused, and journaled.
    argv_url = team.url_for("owner1")
    from console.cli import main

    with pytest.raises(SystemExit) as exc:
        main(
            [
                "--journal",
                argv_url,
                "--config",
                str(team.config),
                "--as",
                team.who("owner2"),
                "approve",
                ex,
            ]
        )
    assert exc.value.code == 4
    refusal = [r for r in team.refusals() if r["rule"] == "identity"]
    assert refusal and refusal[0]["actor"] == team.who("owner1")
    status = _status(team, ex)
    assert status["requested_by"] == team.who("oncall1")


def test_a_new_process_takes_over_a_crashed_step(sqlite_team: Team) -> None:
    t = sqlite_team
    ex = _approve_first(t)
    assert t.cli("owner1", "approve", ex).code == 0
    assert t.cli("ic1", "approve", ex).code == 0
    assert t.cli("oncall1", "runbook", "next", ex).code == 0  # approval step passes
    # An executor claims the rollback step, then dies (its process is gone).
    j = Journal(t.url, actor=t.who("oncall1"))
    dead = Holder(socket.gethostname(), 2**22 + os.getpid() % 1000, "dead")
    with j.write() as w:
        lease.acquire(w.conn, j, lease_key(ex), dead)
        w.append(
            "runbook.step.started",
            {"exec": ex, "step": "rollback", "kind": "action", "attempt": 1, "holder": str(dead)},
            run_id=t.run_id,
        )
    # While the step runs, the rollback service asking the gate for it is cleared.
    settings = load_settings(t.config)
    assert gate.check(settings, gate.GateRequest("rollback", t.run_id, "x", ex), j).allowed
    j.close()
    assert _status(t, ex)["status"] == "running"
    r = t.proc("oncall1", "runbook", "next", ex)
    assert r.code == 0, r.err
    status = _status(t, ex)
    assert status["status"] == "completed"
    rollback = next(s for s in status["steps"] if s["id"] == "rollback")  # type: ignore[attr-defined]
    assert rollback["attempts"] == 2 and rollback["state"] == "done"


def test_the_runbook_is_pinned_when_the_execution_starts(sqlite_team: Team) -> None:
    t = sqlite_team
    ex = _start(t, "runbooks/rb-walk.yaml")
    digest = _status(t, ex)["digest"]
    # Someone edits the file afterwards: the running execution does not change.
    path = t.tmp / "runbooks" / "rb-walk.yaml"
    path.write_text(path.read_text().replace("action: pause_run", "action: notify"))
    r = t.cli("oncall1", "runbook", "next", ex, "--json")
    assert r.code == 0 and r.json()["step"] == "pause"
    result = next(s for s in _status(t, ex)["steps"] if s["id"] == "pause")  # type: ignore[attr-defined]
    assert "message" in result["result"] and _status(t, ex)["digest"] == digest


def test_prerequisites_and_single_execution(sqlite_team: Team) -> None:
    t = sqlite_team
    body = (
        (t.tmp / "runbooks" / "rb-walk.yaml")
        .read_text()
        .replace("prerequisites: [lock_target]", "prerequisites: [lock_target, backup_reference]")
    )
    t.write_runbook("rb-backup", body.replace("runbook: rb-walk", "runbook: rb-backup"))
    r = t.cli("oncall1", "runbook", "start", "rb-backup", "--run", t.run_id)
    assert r.code == 4 and "runbook.prerequisites.backup_reference" in r.err
    ex = _start(t, "rb-backup", "oncall1", "--backup-ref", "snap-0412")
    assert _status(t, ex)["backup_ref"] == "snap-0412"
    r = t.cli("oncall2", "runbook", "start", "rb-backup", "--run", t.run_id, "--backup-ref", "x")
    assert r.code == 4 and "runbook.single_execution" in r.err
    # The target is locked while the execution runs: the gate refuses new writes to it.
    settings = load_settings(t.config)
    j = Journal(t.url, actor="automation")
    target = j.get_run(t.run_id).target
    with pytest.raises(Blocked, match="locked by runbook"):
        gate.check(settings, gate.GateRequest("apply", "", "automation", target=target), j)
    t.cli("oncall1", "runbook", "abort", ex, "--comment", "test over")
    assert gate.check(
        settings, gate.GateRequest("apply", "", "automation", target=target), j
    ).allowed
    j.close()


def test_manual_step_needs_confirmation_and_answer(sqlite_team: Team) -> None:
    t = sqlite_team
    t.write_runbook(
        "rb-manual",
        """
runbook: rb-manual
version: 1
steps:
  - id: backup
    manual: Take a snapshot of the CRM database.
    answer: {prompt: Snapshot id, pattern: "^snap-"}
""",
    )
    ex = _start(t, "rb-manual")
    r = t.cli("oncall1", "runbook", "next", ex)
    assert r.code == 4 and "--confirm" in r.err
    assert t.cli("oncall1", "runbook", "next", ex, "--confirm").code == 2
    assert t.cli("oncall1", "runbook", "next", ex, "--confirm", "--answer", "x").code == 2
    r = t.cli("oncall1", "runbook", "next", ex, "--confirm", "--answer", "snap-7", "--json")
    assert r.code == 0 and r.json()["result"]["answer"] == "snap-7"
    assert _status(t, ex)["status"] == "completed"


def test_direct_rollback_names_the_runbook(sqlite_team: Team) -> None:
    r = sqlite_team.cli("oncall1", "rollback", sqlite_team.run_id)
    assert r.code == 4 and "backout runbook start rollback-batch" in r.err


def test_governance_adds_approvals_or_refuses(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    tmp = Path(str(tmp_path))
    monkeypatch.chdir(tmp)
    extra = """
[targets.crm]
url = "{target}"
environment = "production"

[policy.environments.production]
operations = ["insert", "update"]
rollback_window = "1h"
"""
    t = make_team(
        f"sqlite:///{tmp / 'journal.db'}",
        tmp,
        inserts=range(100, 103),
        extra_config=extra,
        target_ref="crm",
    )
    ex = _approve_first(t)
    pending = t.cli("owner1", "approvals", "--pending", "--json").json()
    need = pending[0]["requirement"]
    # Rolling back inserts deletes rows, and deletes are not permitted in production.
    assert need["quorum"] == 3 and "operations" in need["extra"][0]
    for person in ("owner1", "owner2"):
        assert t.cli(person, "approve", ex).code == 0
    r = t.cli("oncall1", "runbook", "next", ex)
    assert r.code == 4 and "approval.quorum" in r.err and "2 of 3" in r.err
    assert t.cli("ic1", "approve", ex).code == 0
    assert t.cli("oncall1", "runbook", "next", ex).code == 0
    t.cli("oncall1", "runbook", "abort", ex, "--comment", "next case")

    # Two hours later the run is past its 1h rollback window: one approval more again.
    later = {"BACKOUT_CLOCK": "+2h"}
    ex = _approve_first(t, env=later)
    need = t.cli("owner1", "approvals", "--pending", "--json", env=later).json()[0]["requirement"]
    assert need["quorum"] == 4 and "rollback_window" in need["extra"][1]
    for person in ("owner1", "owner2", "ic1"):
        assert t.cli(person, "approve", ex, env=later).code == 0
    r = t.cli("oncall1", "runbook", "next", ex, env=later)
    assert r.code == 4 and "3 of 4" in r.err
    assert t.refusals()[-1]["rule"] == "approval.quorum"


def test_decide_step_reads_the_previous_result(sqlite_team: Team) -> None:
    t = sqlite_team
    t.write_runbook(
        "rb-decide",
        """
runbook: rb-decide
version: 1
steps:
  - id: count
    check: sql
    sql: "SELECT COUNT(*) FROM items WHERE note = 'v2'"
  - id: choose
    decide:
      - when: "result.value >= 10 and run.status == 'completed'"
        goto: many
      - goto: few
  - id: many
    action: notify
    with: {message: many}
    next: end
  - id: few
    action: notify
    with: {message: few}
""",
    )
    ex = _start(t, "rb-decide")
    assert t.cli("oncall1", "runbook", "next", ex).code == 0
    r = t.cli("oncall1", "runbook", "next", ex, "--json")
    assert r.code == 0 and r.json()["next_step"] == "many"
    # Pressing next for a step that is no longer current does nothing.
    r = t.cli("oncall1", "runbook", "next", ex, "--step", "choose")
    assert r.code == 0 and "Nothing done" in r.out
    assert t.cli("oncall1", "runbook", "next", ex).code == 0
    status = _status(t, ex)
    assert status["status"] == "completed"
    states = {s["id"]: s["state"] for s in status["steps"]}  # type: ignore[attr-defined]
    assert states == {"count": "done", "choose": "done", "many": "done", "few": "pending"}
    text = t.cli("oncall1", "runbook", "status", ex)
    assert text.code == 0 and "completed" in text.out
    assert ex in t.cli("oncall1", "runbook", "status").out


def test_a_sql_check_that_writes_fails_and_writes_nothing(sqlite_team: Team) -> None:
    """A runbook's sql check runs as an invariant does: read-only, one statement, rolled
    back. One that tries to write fails the step, and the table is untouched."""
    t = sqlite_team
    t.write_runbook(
        "rb-write",
        """
runbook: rb-write
version: 1
steps:
  - id: sneaky
    check: sql
    sql: "DELETE FROM items"
""",
    )
    before = dump(t.target)
    ex = _start(t, "rb-write")
    r = t.cli("oncall1", "runbook", "next", ex)
    assert r.code != 0 and "sql check failed" in r.err and "\n" not in r.err.strip()
    assert dump(t.target) == before and before


def test_a_forged_runbook_claim_does_not_pass_the_gate(sqlite_team: Team) -> None:
    t = sqlite_team
    settings = load_settings(t.config)
    j = Journal(t.url, actor=t.who("oncall1"))
    try:
        ex = _start(t, "runbooks/rb-walk.yaml")
        # The execution exists but is not running a rollback step: no runbook clearance.
        for claim in (ex, "no-such-exec"):
            with pytest.raises(Blocked, match=r"policy\.rollback\.require_runbook"):
                gate.check(settings, gate.GateRequest("rollback", t.run_id, "x", claim), j)
        rules = [r["rule"] for r in t.refusals()]
        assert rules.count("policy.rollback.require_runbook") == 2
    finally:
        j.close()
