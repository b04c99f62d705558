"""The gate: the one function that decides whether an action may execute now.

Every entry point (runbook steps, ``backout rollback``, ``backout fix --apply``, approvals, the
console) asks ``evaluate``/``check`` before it acts. The caller gathers the facts (the plan's
digest, the approvals given, who asks); the gate applies the policy and the runbook's
approval requirement to them and answers with a ``Decision`` that names the rule and the
policy version that refused. ``check`` records a refusal in the journal (``gate.refused``)
and raises ``Blocked`` (exit 4).

Approval rules, in the order they are applied:
- a denial (still standing) blocks; denied is its own outcome;
- an approval counts only for the exact plan digest and runbook digest it was given for;
- an approval older than ``expires_after`` never counts (fail closed), nor does any approval
  once the request itself expired;
- approvals by an excluded person (the requester, an executor, the automation's owner) and a
  second approval by the same person never count;
- then the quorum, and at least one approver from each required role.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from console.config import ApprovalPolicy, Settings, parse_duration
from console.errors import Blocked

if TYPE_CHECKING:
    from console.journal import Journal
    from console.journal.store import Writer
    from console.runbook.schema import ApprovalSpec

WRITE_ACTIONS = ("rollback", "fix", "resume")
ACTION_OF = {"rollback": "rollback", "fix": "fix", "resume_run": "resume"}  # runbook action
INVERSE = {"insert": "delete", "delete": "insert", "update": "update", "upsert": "update"}

State = Literal["allowed", "pending", "denied", "expired", "stale", "refused"]
Verdict = Callable[..., "Decision"]


@dataclass(frozen=True)
class Requirement:
    """The approval an action needs: the policy's defaults raised by the runbook step and by
    governance (one more approval per ``extra`` rule)."""

    quorum: int
    require_roles: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    expires_after: str = "30m"
    extra: tuple[str, ...] = ()  # rules that each added one approval

    @property
    def ttl(self) -> dt.timedelta:
        return parse_duration(self.expires_after)

    def as_dict(self) -> dict[str, Any]:
        return {
            "quorum": self.quorum,
            "require_roles": list(self.require_roles),
            "exclude": list(self.exclude),
            "expires_after": self.expires_after,
            "extra": list(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Requirement:
        return cls(
            int(data["quorum"]),
            tuple(data.get("require_roles", ())),
            tuple(data.get("exclude", ())),
            str(data.get("expires_after", "30m")),
            tuple(data.get("extra", ())),
        )

    def describe(self) -> str:
        roles = f", one from each of {', '.join(self.require_roles)}" if self.require_roles else ""
        return f"{self.quorum} approval(s){roles}, valid {self.expires_after}"


def requirement(
    policy: ApprovalPolicy, spec: ApprovalSpec | None, extra: Sequence[str] = ()
) -> Requirement:
    """Effective requirement: a step may ask for more than the policy, never less (higher
    quorum, union of roles and exclusions, the shorter expiry)."""
    quorum = max(policy.quorum, (spec.quorum or 0) if spec else 0)
    roles = list(policy.require_roles)
    exclude: list[str] = list(policy.exclude)
    expires = policy.expires_after
    if spec is not None:
        roles += [r for r in spec.require_roles if r not in roles]
        exclude += [e for e in spec.exclude if e not in exclude]
        if spec.expires_after and parse_duration(spec.expires_after) < parse_duration(expires):
            expires = spec.expires_after
    return Requirement(quorum + len(extra), tuple(roles), tuple(exclude), expires, tuple(extra))


@dataclass(frozen=True)
class Given:
    """An approval or denial as recorded (``approvals`` projection row)."""

    seq: int
    approver: str
    roles: tuple[str, ...]
    decision: str  # approved | denied
    state: str  # given | void | expired
    plan_digest: str
    runbook_digest: str
    ts: dt.datetime
    comment: str | None = None


@dataclass(frozen=True)
class GateRequest:
    """What is asked, by whom, with every fact the decision needs (all but the first three
    have defaults, so a bare request asks only the policy-level questions)."""

    action: str  # rollback | fix | resume | apply | approve | deny | approval (a step's gate)
    run_id: str
    actor: str
    via_runbook: str | None = None  # the runbook execution asking, if any
    target: str | None = None
    step: str | None = None
    environment: str | None = None
    run_created_at: dt.datetime | None = None
    operations: tuple[str, ...] = ()  # kinds of write the action performs
    requirement: Requirement | None = None  # None: no approval step guards the action
    approvals: tuple[Given, ...] = ()
    plan_digest: str | None = None
    runbook_digest: str | None = None
    requester: str | None = None
    executors: tuple[str, ...] = ()  # who executed steps of this execution
    owner: str | None = None
    expires_at: dt.datetime | None = None  # the approval request's deadline
    request_state: str | None = None  # the approval step's state (approve/deny)
    locked_by: tuple[str, ...] = ()  # executions holding a lock on the target (apply)
    missing: tuple[str, ...] = ()  # runbook prerequisites not met (start)
    active: tuple[str, ...] = ()  # unfinished executions of the same runbook for the run
    claimed: str | None = None  # the identity asked for (--as) when ``actor`` is proven
    # The runbook step asking is running: this gate cleared it when it was claimed (so a
    # service it calls, such as Rollback.execute, is not asked for approvals again).
    cleared: bool = False
    now: dt.datetime | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    state: State
    rule: str | None
    message: str
    policy_version: int
    policy_digest: str
    counted: tuple[str, ...] = ()  # approvers whose approval counts
    stale: tuple[int, ...] = ()  # approvals given for another plan (seq)
    expired: tuple[int, ...] = ()  # approvals past their expiry (seq)
    notes: tuple[str, ...] = field(default=())

    def event(self, request: GateRequest) -> dict[str, Any]:
        return {
            "action": request.action,
            "rule": self.rule,
            "state": self.state,
            "message": self.message,
            "policy_version": self.policy_version,
            "policy_digest": self.policy_digest,
            "exec": request.via_runbook,
            "step": request.step,
            "actor": request.actor,
            "plan_digest": request.plan_digest,
        }

    def blocked(self) -> Blocked:
        return Blocked(self.message)


# --- governance -------------------------------------------------------------------------


def governance(settings: Settings, request: GateRequest) -> tuple[list[str], str | None]:
    """(extra approvals needed, refusal) from the environment's rules for a write action."""
    if request.action not in WRITE_ACTIONS:
        return [], None
    policy = settings.policy
    env_name = request.environment
    env = policy.environment(env_name)
    extra: list[str] = []
    where = f"policy.environments.{env_name}"
    if env is not None:
        banned = sorted({op for op in request.operations if op not in env.operations})
        if banned:
            extra.append(f"{where}.operations ({', '.join(banned)} not permitted in {env_name})")
        if env.require_approval:
            extra.append(f"{where}.require_approval")
    if (
        request.run_created_at is not None
        and request.now is not None
        and request.action == "rollback"
    ):
        window = policy.rollback_window(env_name)
        age = request.now - request.run_created_at
        if age > window:
            rule = (
                f"{where}.rollback_window"
                if env and env.rollback_window
                else "policy.rollback.window"
            )
            if env is not None and env.past_window == "refuse":
                return extra, (
                    f"{rule}: the run is {_days(age)} old, past the "
                    f"{_days(window)} rollback window; it cannot be rolled back "
                    "automatically"
                )
            extra.append(f"{rule} (run {_days(age)} old, window {_days(window)})")
    return extra, None


def _days(delta: dt.timedelta) -> str:
    if delta >= dt.timedelta(days=1):
        return f"{delta.days}d"
    return f"{int(delta.total_seconds() // 3600)}h"


def _requires_runbook(settings: Settings, request: GateRequest) -> str | None:
    if request.action not in ("rollback", "fix") or request.via_runbook is not None:
        return None
    policy = settings.policy
    env = policy.environment(request.environment)
    if request.action == "rollback" and policy.rollback.require_runbook:
        return "policy.rollback.require_runbook"
    if env is not None and env.require_runbook:
        return f"policy.environments.{request.environment}.require_runbook"
    return None


# --- the gate ---------------------------------------------------------------------------


def evaluate(settings: Settings, request: GateRequest) -> Decision:
    """Decide ``request`` (pure: no I/O). See the module docstring for the rules."""
    policy = settings.policy
    version, pdigest = policy.version, settings.policy_digest()

    def refuse(rule: str, message: str, state: State = "refused", **kw: Any) -> Decision:
        return Decision(
            False,
            state,
            rule,
            f"policy v{version} ({rule}) refuses: {message}",
            version,
            pdigest,
            **kw,
        )

    def allow(message: str, **kw: Any) -> Decision:
        return Decision(True, "allowed", None, message, version, pdigest, **kw)

    if request.claimed is not None and request.claimed != request.actor:
        return refuse(
            "identity",
            f"this journal authenticates you as {request.actor}, not "
            f"{request.claimed}; nobody acts as someone else (drop --as or connect "
            f"as {request.claimed}).",
        )
    rule = _requires_runbook(settings, request)
    if rule is not None:
        return Decision(
            False,
            "refused",
            rule,
            f"policy v{version} ({rule}) refuses a direct {request.action} of run "
            f"{request.run_id}; start the runbook with `backout runbook start "
            f"{policy.rollback.runbook} --run {request.run_id}`.",
            version,
            pdigest,
        )
    if request.action == "apply" and request.locked_by:
        return refuse(
            "runbook.lock_target",
            f"target {request.target} is locked by runbook "
            f"execution {', '.join(request.locked_by)}; wait until it finishes.",
        )
    if request.action == "start":
        if request.missing:
            what = request.missing[0]
            return refuse(
                f"runbook.prerequisites.{what}",
                f"the runbook needs {what} before it starts; {_PREREQ.get(what, 'provide it')}.",
            )
        if request.active:
            return refuse(
                "runbook.single_execution",
                f"execution {request.active[0]} of this "
                f"runbook is still open for run {request.run_id}; continue it with "
                f"`backout runbook next {request.active[0]}`.",
            )
        return allow(f"the runbook may start for run {request.run_id}.")
    if request.action in ("approve", "deny"):
        return _approver(settings, request, refuse, allow)

    if request.cleared and request.via_runbook is not None:
        return allow(f"step of execution {request.via_runbook} was cleared when it started.")
    extra, refusal = governance(settings, request)
    if refusal is not None:
        return refuse(refusal.split(":", 1)[0], refusal.split(": ", 1)[1] + ".")
    req = request.requirement
    if req is None:
        if extra and request.via_runbook is None:
            return refuse(
                extra[0].split(" ")[0],
                f"{request.action} of run {request.run_id} "
                f"needs an approval ({extra[0]}); run it through a runbook with an "
                "approval step.",
            )
        if extra:
            return refuse(
                extra[0].split(" ")[0],
                f"step '{request.step}' needs an approval "
                f"({extra[0]}) but no approval step guards it in this runbook.",
            )
        return allow(f"{request.action} of run {request.run_id} may run.")
    if extra and not req.extra:
        req = replace(req, quorum=req.quorum + len(extra), extra=tuple(extra))
    return _approvals(request, req, refuse, allow)


def _excluded(request: GateRequest, req: Requirement, who: str) -> str | None:
    if "requester" in req.exclude and who == request.requester:
        return "requester"
    if "executor" in req.exclude and (
        who in request.executors
        or (request.action not in ("approve", "deny") and who == request.actor)
    ):
        return "executor"
    if "owner" in req.exclude and request.owner is not None and who == request.owner:
        return "owner"
    return None


_PREREQ = {"backup_reference": "record one with `--backup-ref REF`"}

_WHY = {
    "requester": "started this runbook execution; nobody approves their own request",
    "executor": "executes steps of this execution; an executor does not approve their own work",
    "owner": "owns the automation that made this run; the owner cannot approve its rollback",
}


def _approver(
    settings: Settings, request: GateRequest, refuse: Verdict, allow: Verdict
) -> Decision:
    """May ``request.actor`` approve (or deny) the pending request now?"""
    who, verb = request.actor, request.action
    req = request.requirement or Requirement(1)
    if request.request_state not in ("awaiting_approval",):
        state = request.request_state or "not requested"
        return refuse(
            "approval.pending",
            f"no approval is pending for step '{request.step}' "
            f"of execution {request.via_runbook} (it is {state}).",
        )
    if (
        request.expires_at is not None
        and request.now is not None
        and request.now >= request.expires_at
    ):
        return refuse(
            "approval.expires_after",
            f"the approval request for step "
            f"'{request.step}' expired at {request.expires_at:%Y-%m-%d %H:%M:%S}Z; "
            "the operator must request it again with `backout runbook next`.",
            state="expired",
        )
    roles = settings.policy.roles_of(who)
    if settings.policy.roles and not roles:
        return refuse(
            "policy.roles",
            f"{who} has no role in the policy; only people listed "
            "in [policy.roles] may approve or deny.",
        )
    if verb == "approve":
        why = _excluded(request, req, who)
        if why is not None:
            return refuse(f"approval.exclude.{why}", f"{who} {_WHY[why]}.")
    for g in request.approvals:
        if g.approver == who and g.state == "given":
            done = "approved" if g.decision == "approved" else "denied"
            return refuse(
                "approval.duplicate",
                f"{who} already {done} step '{request.step}' "
                f"(event {g.seq}); one decision per person.",
            )
    return allow(f"{who} may {verb} step '{request.step}'.")


def _approvals(request: GateRequest, req: Requirement, refuse: Verdict, allow: Verdict) -> Decision:
    """Do the recorded approvals satisfy ``req`` for this exact plan, now?"""
    now = request.now or dt.datetime.now(dt.UTC)
    for g in request.approvals:
        if g.decision == "denied" and g.state == "given":
            why = f": {g.comment}" if g.comment else ""
            return refuse(
                "approval.denied",
                f"{g.approver} denied step '{request.step}'{why}.",
                state="denied",
            )
    valid: list[Given] = []
    stale: list[int] = []
    expired: list[int] = []
    excluded: list[str] = []
    seen: set[str] = set()
    for g in request.approvals:
        if g.decision != "approved" or g.state != "given":
            continue
        if g.plan_digest != request.plan_digest or g.runbook_digest != request.runbook_digest:
            stale.append(g.seq)
            continue
        if now - g.ts >= req.ttl:
            expired.append(g.seq)
            continue
        barred = _excluded(request, req, g.approver)
        if barred is not None:
            excluded.append(f"{g.approver} ({barred})")
            continue
        if g.approver not in seen:
            seen.add(g.approver)
            valid.append(g)
    counted = tuple(g.approver for g in valid)
    missing_roles = [r for r in req.require_roles if not any(r in g.roles for g in valid)]
    if len(valid) >= req.quorum and not missing_roles:
        return allow(
            f"approved by {', '.join(counted)} for plan {request.plan_digest}.",
            counted=counted,
            stale=tuple(stale),
            expired=tuple(expired),
        )
    kw = {"counted": counted, "stale": tuple(stale), "expired": tuple(expired)}
    need = f"step '{request.step}' has {len(valid)} of {req.quorum} valid approval(s)" + (
        f" ({'; '.join(req.extra)} added {len(req.extra)})" if req.extra else ""
    )
    if stale:
        return refuse(
            "approval.plan_digest",
            f"{need}: {len(stale)} approval(s) were given "
            f"for another plan; the plan is now {request.plan_digest}; approvals "
            "are requested again.",
            state="stale",
            **kw,
        )
    expiry = request.expires_at is not None and now >= request.expires_at
    if expired or expiry:
        return refuse(
            "approval.expires_after",
            f"{need}: approvals expire after "
            f"{req.expires_after} and {len(expired) or 'the request'} expired; "
            "request them again with `backout runbook next`.",
            state="expired",
            **kw,
        )
    if excluded:
        return refuse(
            f"approval.exclude.{excluded[0].split('(')[1].rstrip(')')}",
            f"{need}: {', '.join(excluded)} may not count; someone else must approve or execute.",
            state="pending",
            **kw,
        )
    if len(valid) < req.quorum:
        return refuse(
            "approval.quorum",
            f"{need}; waiting for approvers (`backout approve {request.via_runbook}`).",
            state="pending",
            **kw,
        )
    return refuse(
        "approval.require_roles",
        f"{need} but none from role(s) "
        f"{', '.join(missing_roles)}; one approver from each is required.",
        state="pending",
        **kw,
    )


# --- recording --------------------------------------------------------------------------


def record(writer: Writer, request: GateRequest, decision: Decision) -> None:
    """Journal a refusal in the caller's write transaction."""
    writer.append("gate.refused", decision.event(request), run_id=request.run_id or None)


def check(settings: Settings, request: GateRequest, journal: Journal | None = None) -> Decision:
    """Decide; on refusal journal it (when a journal is given) and raise ``Blocked``.

    Given a journal, facts the request leaves out (the run's age and environment, the kinds
    of write a rollback performs, target locks) are read from it first.
    """
    if journal is not None:
        request = with_journal_facts(journal, settings, request)
    decision = evaluate(settings, request)
    if not decision.allowed:
        if journal is not None:
            with journal.write() as w:
                record(w, request, decision)
        raise decision.blocked()
    return decision


def with_journal_facts(journal: Journal, settings: Settings, request: GateRequest) -> GateRequest:
    """Fill the run's environment, age and write kinds, and target locks, from the journal."""
    from console.runbook import facts

    return facts.complete(journal, settings, request)
