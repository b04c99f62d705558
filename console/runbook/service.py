"""The runbook service both front ends call: the CLI (``runbook_cmds``) and the console's
wizard. It prepares the acting session, lists runbooks, says what an action will journal and
execute before it runs (the exact plan and its sha256), and runs it.

It decides nothing itself: starting, running a step, approving and denying go through the
executor and ``gate.py``, the one gate for every entry point.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from console.canonical import loads
from console.config import Settings
from console.errors import BadInput
from console.journal import Journal
from console.runbook import gate, loader, state
from console.runbook.approvals import Approvals
from console.runbook.executor import Executor, Outcome
from console.runbook.identity import clock_from_env, database_user
from console.runbook.plans import PROVIDERS, plan_for
from console.runbook.schema import PLANNED_ACTIONS, AnswerSpec, Step


def prepare(journal: Journal, settings: Settings, claimed: str | None) -> Journal:
    """Act as the proven identity with the configured clock (``BACKOUT_CLOCK``).

    On PostgreSQL the authenticated role is the actor; a different ``claimed`` user is refused
    by the gate (exit 4, journaled)."""
    clock = clock_from_env()
    if clock is not None:
        journal.clock = clock
    proven = database_user(journal)
    if proven is not None:
        journal.actor = proven
        gate.check(settings, gate.GateRequest("identity", "", proven, claimed=claimed), journal)
    return journal


# --- runbook files ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunbookEntry:
    name: str
    path: str
    valid: bool
    title: str | None
    version: int | None
    digest: str | None
    problems: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def runbooks() -> list[RunbookEntry]:
    """Runbooks in ./runbooks and the shipped ones, each checked."""
    out: list[RunbookEntry] = []
    for name, path in loader.available():
        book, problems = loader.check_text(loader.read_file(path), str(path))
        out.append(
            RunbookEntry(
                name,
                str(path),
                book is not None,
                book.title if book else None,
                book.version if book else None,
                book.digest if book else None,
                len(problems),
            )
        )
    return out


# --- what an action will do -----------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """What an action will journal and execute, shown before it runs."""

    action: str  # start | next | approve | deny
    exec_id: str | None
    run_id: str
    step_id: str
    kind: str
    lines: list[str]
    plan_digest: str | None = None
    answer: AnswerSpec | None = None  # a manual step's required text
    needs: dict[str, Any] = field(default_factory=dict)  # an approval's requirement
    runbook: str = ""  # the name (or file) to start


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """A plan summary as approvers read it (the rows of a rollback, its conflicts)."""
    if plan.get("action") != "rollback":
        return [f"plan: {plan}"] if plan else []
    lines = [
        f"rollback of run {plan['run']}: {plan['inverses']} inverse(s), "
        f"{plan['conflicts']} conflict(s) on {', '.join(plan['tables']) or '-'}"
    ]
    for op in plan.get("operations", []):
        mark = "CONFLICT" if op.get("conflict") else "        "
        lines.append(f"  {mark} {op['op']:<6} {op['table']} {op['key']}")
    if plan.get("more"):
        lines.append(f"  ... {plan['more']} more (`backout rollback {plan['run']} --plan`)")
    return lines


def start_preview(name: str, run_id: str, backup_ref: str | None = None) -> Preview:
    book = loader.parse_text(loader.read_file(loader.find(name)), name)
    lines = [
        f"journal runbook.started: {book.name} v{book.version} for run {run_id}",
        f"runbook sha256 {book.digest} (pinned: editing the file later changes nothing)",
        f"steps: {' → '.join(s.id for s in book.steps)}",
    ]
    if book.prerequisites.lock_target:
        lines.append("journal target.locked: no new run may write to the run's targets")
    if book.steps[0].kind == "approval":
        lines.append(f"journal approval.requested for step '{book.steps[0].id}'")
    answer = (
        AnswerSpec("backup or snapshot reference") if book.prerequisites.backup_reference else None
    )
    if backup_ref:
        lines.append(f"backup reference: {backup_ref}")
    return Preview(
        "start", None, run_id, book.steps[0].id, "start", lines, answer=answer, runbook=name
    )


def _step_lines(step: Step) -> list[str]:
    spec = step.spec()
    return [f"{k}: {v}" for k, v in spec.items() if k not in ("id", "kind")]


def step_preview(journal: Journal, settings: Settings, exec_ref: str) -> Preview:
    """What ``next`` will do to the current step (a planned action's exact plan included)."""
    executor = Executor(journal, settings)
    ex, book = executor.load(exec_ref)
    if ex.current_step is None:
        return Preview("next", ex.id, ex.run_id, "-", "-", [f"execution {ex.id} is {ex.status}"])
    step = book.step(ex.current_step)
    title = f"step '{step.id}' ({step.kind}){': ' + step.title if step.title else ''}"
    lines = [title, *_step_lines(step)]
    digest: str | None = None
    if step.kind == "approval":
        plan = plan_for(executor.context(ex), book.guarded_action(step), step.id)
        digest = plan.digest
        lines += [
            "the gate counts the approvals given for this plan:",
            f"plan sha256 {plan.digest}",
            *plan_lines(plan.summary),
        ]
    elif step.kind == "action" and step.action in PLANNED_ACTIONS:
        plan = PROVIDERS[step.action].plan(executor.context(ex), step)
        digest = plan.digest
        lines += [f"plan sha256 {plan.digest}", *plan_lines(plan.summary)]
    lines.append(
        f"journal runbook.step.started / runbook.step.finished for execution {ex.id} "
        "(or gate.refused, with the rule, if the gate refuses)"
    )
    return Preview("next", ex.id, ex.run_id, step.id, step.kind, lines, digest, step.answer)


def approval_preview(
    journal: Journal, settings: Settings, exec_ref: str, *, approve: bool
) -> Preview:
    """The exact plan (and sha256) an approver signs, and what the request needs."""
    executor = Executor(journal, settings)
    ex, book = executor.load(exec_ref)
    step = book.step(ex.current_step) if ex.current_step else None
    verb = "approve" if approve else "deny"
    if step is None or step.kind != "approval":
        where = f"step '{ex.current_step}'" if ex.current_step else ex.status
        return Preview(verb, ex.id, ex.run_id, ex.current_step or "-", "-", [f"at {where}"])
    plan = plan_for(executor.context(ex), book.guarded_action(step), step.id)
    with journal.read() as conn:
        row = state.exec_step(conn, ex.id, step.id)
    needs = loads(row.requirement) if row.requirement else {}
    lines = [
        f"journal approval.{'granted' if approve else 'denied'} by {journal.actor} for step "
        f"'{step.id}' of execution {ex.id} (runbook {book.name} v{book.version})",
        f"plan sha256 {plan.digest}",
        *plan_lines(plan.summary),
    ]
    if needs:
        roles = ", ".join(needs.get("require_roles", [])) or "-"
        lines.append(
            f"needs {needs.get('quorum')} approval(s), roles {roles}, "
            f"expires {row.expires_at or '-'}"
        )
    return Preview(verb, ex.id, ex.run_id, step.id, "approval", lines, plan.digest, needs=needs)


# --- actions ------------------------------------------------------------------------------


def start(
    journal: Journal, settings: Settings, name: str, run: str, backup_ref: str | None = None
) -> Outcome:
    return Executor(journal, settings).start(name, run, backup_ref=backup_ref)


def run_step(
    journal: Journal,
    settings: Settings,
    exec_ref: str,
    *,
    confirm: bool = False,
    answer: str | None = None,
    expect_step: str | None = None,
) -> Outcome:
    """Execute the current step if the gate allows it (``expect_step``: only that one)."""
    return Executor(journal, settings).next(
        exec_ref, confirm=confirm, answer=answer, expect_step=expect_step
    )


def decide(
    journal: Journal,
    settings: Settings,
    exec_ref: str,
    *,
    approve: bool,
    comment: str | None,
    expect_digest: str | None = None,
) -> Outcome:
    """Approve or deny the pending step, bound to the plan with ``expect_digest``."""
    return Approvals(journal, settings).decide(
        exec_ref, approve=approve, comment=comment, expect_digest=expect_digest
    )


def perform(journal: Journal, settings: Settings, preview: Preview, text: str) -> Outcome:
    """The action a confirmed preview describes; ``text``: its answer, comment or reference.

    Bound to what was shown: ``next`` only runs the previewed step, an approval only counts
    for the previewed plan's digest (else the gate refuses: ``approval.plan_digest``)."""
    answer = text or None
    if preview.action == "start":
        return start(journal, settings, preview.runbook, preview.run_id, answer)
    if preview.exec_id is None:
        raise BadInput(f"nothing to {preview.action}: no execution.")
    if preview.action == "next":
        return run_step(
            journal,
            settings,
            preview.exec_id,
            confirm=preview.kind == "manual",
            answer=answer,
            expect_step=preview.step_id,
        )
    return decide(
        journal,
        settings,
        preview.exec_id,
        approve=preview.action == "approve",
        comment=answer,
        expect_digest=preview.plan_digest,
    )
