"""The gate's rules, one by one, on plain facts (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from console.config import Settings
from console.errors import Blocked
from console.runbook import gate
from console.runbook.schema import ApprovalSpec

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
PLAN = "p" * 64
BOOK = "b" * 64


def settings(**policy: object) -> Settings:
    base: dict[str, object] = {
        "version": 7,
        "roles": {"data-owner": ["owner1", "owner2"], "oncall": ["oncall1", "oncall2"]},
        "approval": {"quorum": 2, "require_roles": ["data-owner"]},
    }
    base.update(policy)
    return Settings.model_validate({"policy": base})


def given(
    seq: int,
    who: str,
    *,
    plan: str = PLAN,
    minutes_ago: int = 1,
    decision: str = "approved",
    state: str = "given",
    roles: tuple[str, ...] = (),
) -> gate.Given:
    s = settings()
    return gate.Given(
        seq,
        who,
        roles or tuple(s.policy.roles_of(who)),
        decision,
        state,
        plan,
        BOOK,
        NOW - dt.timedelta(minutes=minutes_ago),
    )


def ask(s: Settings, *approvals: gate.Given, **kw: object) -> gate.Decision:
    fields: dict[str, object] = {
        "via_runbook": "ex1",
        "step": "approve",
        "requirement": gate.requirement(s.policy.approval, None),
        "approvals": approvals,
        "plan_digest": PLAN,
        "runbook_digest": BOOK,
        "requester": "oncall1",
        "now": NOW,
    }
    fields.update(kw)
    return gate.evaluate(s, gate.GateRequest("rollback", "run1", "oncall2", **fields))  # type: ignore[arg-type]


def test_quorum_and_roles() -> None:
    s = settings()
    d = ask(s, given(1, "owner1"))
    assert not d.allowed and d.rule == "approval.quorum" and "1 of 2" in d.message
    d = ask(
        s,
        given(1, "oncall1", roles=("oncall",)),
        given(2, "ic1", roles=("ic",)),
        requester="someone",
    )
    assert not d.allowed and d.rule == "approval.require_roles"
    d = ask(s, given(1, "owner1"), given(2, "owner2"))
    assert d.allowed and d.counted == ("owner1", "owner2")
    assert "policy v7" in ask(s).message


def test_requirement_never_less_than_policy() -> None:
    policy = settings().policy.approval
    r = gate.requirement(policy, ApprovalSpec(quorum=1, require_roles=("ic",), expires_after="2h"))
    assert r.quorum == 2 and r.require_roles == ("data-owner", "ic")
    assert r.expires_after == "30m"  # the shorter expiry wins
    r = gate.requirement(policy, ApprovalSpec(quorum=3, expires_after="5m"), ["extra rule"])
    assert r.quorum == 4 and r.expires_after == "5m" and r.extra == ("extra rule",)


def test_exclusions_and_duplicates() -> None:
    s = settings()
    # The requester's approval never counts; neither does the executor's.
    d = ask(s, given(1, "owner1"), given(2, "owner2"), requester="owner1")
    assert not d.allowed and d.rule == "approval.exclude.requester"
    d = gate.evaluate(
        s,
        gate.GateRequest(
            "rollback",
            "run1",
            "owner2",
            via_runbook="ex1",
            step="rollback",
            requirement=gate.requirement(s.policy.approval, None),
            approvals=(given(1, "owner1"), given(2, "owner2")),
            plan_digest=PLAN,
            runbook_digest=BOOK,
            requester="oncall1",
            now=NOW,
        ),
    )
    assert not d.allowed and d.rule == "approval.exclude.executor"
    # The automation's owner.
    d = ask(s, given(1, "owner1"), given(2, "owner2"), owner="owner2")
    assert not d.allowed and d.rule == "approval.exclude.owner"
    # At approval time: self-approval and a second decision are refused.
    base = {
        "via_runbook": "ex1",
        "step": "approve",
        "request_state": "awaiting_approval",
        "requester": "owner1",
        "requirement": gate.requirement(s.policy.approval, None),
        "now": NOW,
    }
    d = gate.evaluate(s, gate.GateRequest("approve", "run1", "owner1", **base))  # type: ignore[arg-type]
    assert not d.allowed and d.rule == "approval.exclude.requester"
    d = gate.evaluate(
        s, gate.GateRequest("approve", "run1", "owner2", approvals=(given(1, "owner2"),), **base)
    )  # type: ignore[arg-type]
    assert not d.allowed and d.rule == "approval.duplicate"
    d = gate.evaluate(s, gate.GateRequest("approve", "run1", "stranger", **base))  # type: ignore[arg-type]
    assert not d.allowed and d.rule == "policy.roles"
    d = gate.evaluate(s, gate.GateRequest("deny", "run1", "owner2", **base))  # type: ignore[arg-type]
    assert d.allowed


def test_expiry_fails_closed() -> None:
    s = settings()
    d = ask(s, given(1, "owner1", minutes_ago=31), given(2, "owner2"))
    assert not d.allowed and d.state == "expired" and d.expired == (1,)
    d = ask(s, expires_at=NOW - dt.timedelta(seconds=1))
    assert not d.allowed and d.rule == "approval.expires_after"
    d = gate.evaluate(
        s,
        gate.GateRequest(
            "approve",
            "run1",
            "owner2",
            via_runbook="ex1",
            step="approve",
            request_state="awaiting_approval",
            expires_at=NOW,
            now=NOW,
        ),
    )
    assert not d.allowed and d.state == "expired"


def test_approvals_bind_to_the_plan_and_the_runbook() -> None:
    s = settings()
    d = ask(s, given(1, "owner1", plan="x" * 64), given(2, "owner2"))
    assert not d.allowed and d.state == "stale" and d.stale == (1,)
    assert d.rule == "approval.plan_digest"
    other_book = gate.Given(3, "owner1", ("data-owner",), "approved", "given", PLAN, "c" * 64, NOW)
    assert ask(s, other_book, given(2, "owner2")).state == "stale"
    # Void and expired approvals never count; a denial blocks.
    assert not ask(s, given(1, "owner1", state="void"), given(2, "owner2")).allowed
    d = ask(s, given(1, "owner1"), given(2, "owner2", decision="denied"))
    assert d.state == "denied" and d.rule == "approval.denied"


def test_policy_rules_for_direct_entry_points() -> None:
    s = settings(rollback={"require_runbook": True})
    with pytest.raises(
        Blocked,
        match=r"policy v7 \(policy.rollback.require_runbook\).*"
        r"backout runbook start rollback-batch --run run1",
    ):
        gate.check(s, gate.GateRequest("rollback", "run1", "oncall1"))
    assert gate.check(settings(), gate.GateRequest("rollback", "run1", "oncall1")).allowed
    env = settings(environments={"production": {"operations": ["update"], "require_runbook": True}})
    d = gate.evaluate(env, gate.GateRequest("fix", "run1", "oncall1", environment="production"))
    assert d.rule == "policy.environments.production.require_runbook"
    d = gate.evaluate(
        env,
        gate.GateRequest(
            "rollback",
            "run1",
            "oncall1",
            via_runbook="ex",
            environment="production",
            operations=("delete",),
        ),
    )
    assert not d.allowed and "operations" in str(d.rule)


def test_rollback_window() -> None:
    old = NOW - dt.timedelta(days=3)
    extra = settings(environments={"production": {"rollback_window": "1d"}})
    d = ask(
        extra, given(1, "owner1"), given(2, "owner2"), environment="production", run_created_at=old
    )
    assert not d.allowed and d.rule == "approval.quorum" and "rollback_window" in d.message
    assert ask(
        extra,
        given(1, "owner1"),
        given(2, "owner2"),
        given(3, "ic1", roles=("ic",)),
        environment="production",
        run_created_at=old,
    ).allowed
    refuse = settings(
        environments={"production": {"rollback_window": "1d", "past_window": "refuse"}}
    )
    d = ask(
        refuse, given(1, "owner1"), given(2, "owner2"), environment="production", run_created_at=old
    )
    assert not d.allowed and d.rule == "policy.environments.production.rollback_window"
    assert "cannot be rolled back automatically" in d.message
    # Inside the window nothing is added.
    assert ask(
        extra,
        given(1, "owner1"),
        given(2, "owner2"),
        environment="production",
        run_created_at=NOW - dt.timedelta(hours=1),
    ).allowed


def test_identity_and_prerequisites() -> None:
    s = settings()
    d = gate.evaluate(s, gate.GateRequest("identity", "", "oncall1", claimed="owner1"))
    assert not d.allowed and d.rule == "identity"
    assert gate.evaluate(s, gate.GateRequest("identity", "", "oncall1", claimed=None)).allowed
    d = gate.evaluate(s, gate.GateRequest("start", "r", "oncall1", missing=("backup_reference",)))
    assert d.rule == "runbook.prerequisites.backup_reference" and "--backup-ref" in d.message
    d = gate.evaluate(s, gate.GateRequest("apply", "", "a", target="t", locked_by=("ex9",)))
    assert d.rule == "runbook.lock_target" and "ex9" in d.message
