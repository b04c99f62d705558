"""The runbook model: what a YAML runbook means once loaded (``loader.py`` builds it).

A runbook is an ordered list of steps. A step runs, records its result, then goes to its
``next`` (default: the following step; ``end`` stops), unless a ``decide`` criterion, an
``on_fail`` or an ``on_denied`` branch sends it elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from console.runbook.expr import Expr

StepKind = Literal["check", "verify", "decide", "approval", "action", "manual", "escalate"]
STEP_KINDS: tuple[StepKind, ...] = (
    "check",
    "verify",
    "decide",
    "approval",
    "action",
    "manual",
    "escalate",
)
CHECKS = ("reconcile", "sql", "run_status")
ACTIONS = (
    "pause_run",
    "resume_run",
    "rollback",
    "fix",
    "notify",
    "lock_target",
    "unlock_target",
)
# Actions whose plan an approval binds to (the plan provider computes its digest).
PLANNED_ACTIONS = ("rollback", "fix", "resume_run")
PREREQUISITES = ("lock_target", "backup_reference")
END = "end"


@dataclass(frozen=True)
class Where:
    """1-based line and column in the runbook file."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


@dataclass(frozen=True)
class Criterion:
    when: Expr | None  # None: the default branch
    goto: str
    where: Where


@dataclass(frozen=True)
class ApprovalSpec:
    quorum: int | None = None
    require_roles: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    expires_after: str | None = None
    guards: str | None = None  # the step whose plan this approval binds to (``for:``)


@dataclass(frozen=True)
class AnswerSpec:
    prompt: str
    required: bool = True
    pattern: str | None = None


@dataclass(frozen=True)
class Step:
    id: str
    kind: StepKind
    index: int
    where: Where
    title: str | None = None
    check: str | None = None  # check/verify: reconcile | sql | run_status
    against: str | None = None  # reconcile: expected | baseline
    sql: str | None = None
    target: str | None = None
    expect: Any = None
    decide: tuple[Criterion, ...] = ()
    approval: ApprovalSpec | None = None
    action: str | None = None
    with_: dict[str, Any] = field(default_factory=dict)
    manual: str | None = None
    answer: AnswerSpec | None = None
    page: tuple[str, ...] = ()  # escalate: who to page
    message: str | None = None  # escalate / notify text
    next: str | None = None  # None: the following step; END: stop
    on_fail: str | None = None
    on_denied: str | None = None

    def spec(self) -> dict[str, Any]:
        """What the step runs, as recorded in the evidence."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind}
        for name in ("check", "against", "sql", "target", "expect", "action", "manual", "message"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.with_:
            out["with"] = self.with_
        if self.page:
            out["page"] = list(self.page)
        if self.decide:
            out["decide"] = [
                {"when": c.when.text if c.when else None, "goto": c.goto} for c in self.decide
            ]
        return out


@dataclass(frozen=True)
class Prerequisites:
    lock_target: bool = False
    backup_reference: bool = False  # `runbook start --backup-ref REF` is required


@dataclass(frozen=True)
class Runbook:
    name: str
    version: int
    title: str
    description: str
    prerequisites: Prerequisites
    steps: tuple[Step, ...]
    digest: str  # sha256 of the file's bytes: pinned when an execution starts
    source: str

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def after(self, step: Step) -> str | None:
        """Where a step goes when nothing branches: its ``next``, else the following step."""
        if step.next is not None:
            return None if step.next == END else step.next
        return self.steps[step.index + 1].id if step.index + 1 < len(self.steps) else None

    def guarded_action(self, approval: Step) -> Step | None:
        """The action an approval step binds to: ``for:``, else the next planned action."""
        if approval.approval and approval.approval.guards:
            return self.step(approval.approval.guards)
        for s in self.steps[approval.index + 1 :]:
            if s.kind == "action" and s.action in PLANNED_ACTIONS:
                return s
        return None

    def guarding_approval(self, action: Step) -> Step | None:
        """The approval step that guards ``action`` (the nearest one before it binds)."""
        for s in reversed(self.steps[: action.index]):
            if s.kind == "approval" and self.guarded_action(s) == action:
                return s
        for s in self.steps:
            if s.kind == "approval" and s.approval and s.approval.guards == action.id:
                return s
        return None
