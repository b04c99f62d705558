"""Plan providers: what an approval binds to, per action.

A provider computes the exact plan of an action now (its sha256, a summary for approvers,
the kinds of write it performs) and executes it. The gate recomputes the plan when the step
runs; a different digest voids the approvals. ``register`` lets another service plug in its
own (reconciliation registers ``fix``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from console.canonical import digest
from console.config import Settings
from console.errors import BadInput, Exit
from console.journal import Journal
from console.journal.models import Run
from console.runbook.schema import Step


@dataclass
class StepContext:
    """What a step sees while it runs."""

    journal: Journal
    settings: Settings
    exec_id: str
    run: Run
    runbook_digest: str
    renew: Callable[[], None] = lambda: None  # keeps the execution's lease alive


@dataclass
class StepResult:
    """A step's outcome; ``result`` is the evidence journaled with it."""

    outcome: str = "done"  # done | review | expectation | failed
    result: dict[str, Any] = field(default_factory=dict)
    exit_code: Exit = Exit.DONE
    message: str = ""
    goto: str | None = None  # a branch the step chose (decide, on_fail)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class PlanView:
    digest: str
    summary: dict[str, Any]
    operations: tuple[str, ...] = ()  # kinds of write the action performs


class Provider(Protocol):
    def plan(self, ctx: StepContext, step: Step) -> PlanView: ...

    def execute(self, ctx: StepContext, step: Step, plan: PlanView) -> StepResult: ...


PROVIDERS: dict[str, Provider] = {}


def register(action: str, provider: Provider) -> None:
    PROVIDERS[action] = provider


def plan_for(ctx: StepContext, step: Step | None, approval_step: str) -> PlanView:
    """The plan an approval at ``approval_step`` binds to (its guarded action's plan)."""
    if step is not None and step.action in PROVIDERS:
        return PROVIDERS[step.action].plan(ctx, step)
    summary = {
        "action": step.action if step else None,
        "run": ctx.run.id,
        "approval": approval_step,
    }
    return PlanView(digest({**summary, "exec": ctx.exec_id}), summary)


# --- rollback ---------------------------------------------------------------------------


def _rollback_options(ctx: StepContext, step: Step) -> Any:
    from console.rollback.execute import Options
    from console.rollback.plan import Scope

    scope = step.with_.get("scope")
    if isinstance(scope, dict):
        sc = Scope(tuple(scope.get("steps", ())), tuple(scope.get("keys", ())))
    else:
        sc = Scope()
    return Options(
        scope=sc, on_conflict=step.with_.get("on_conflict", "review"), via_runbook=ctx.exec_id
    )


class RollbackProvider:
    def plan(self, ctx: StepContext, step: Step) -> PlanView:
        from console.rollback.execute import Rollback

        plan = Rollback(ctx.journal, ctx.settings).plan(ctx.run.id, _rollback_options(ctx, step))
        conflicts = plan.conflicts
        summary = {
            "action": "rollback",
            "run": ctx.run.id,
            "inverses": len(plan.items) - len(conflicts),
            "conflicts": len(conflicts),
            "tables": sorted({i.table for i in plan.items}),
            "operations": [i.as_dict() for i in plan.items[:20]],
            "more": max(len(plan.items) - 20, 0),
            "conflict_rows": [
                {"table": c.table, "key": c.key, "ours": c.expect, "now": c.now}
                for c in conflicts[:20]
            ],
        }
        kinds = tuple(sorted({i.kind for i in plan.items}))
        return PlanView(plan.digest, summary, kinds)

    def execute(self, ctx: StepContext, step: Step, plan: PlanView) -> StepResult:
        from console.rollback.execute import Rollback

        def progress(_done: int, _total: int) -> None:
            ctx.renew()

        report = Rollback(ctx.journal, ctx.settings, progress=progress).execute(
            ctx.run.id, _rollback_options(ctx, step)
        )
        result = {
            "rollback_run": report.extra.get("rollback_run"),
            "plan_digest": report.extra.get("plan_digest"),
            "approved_plan_digest": plan.digest,
            "exit_code": int(report.exit_code),
            "reverted": report.applied,
            "conflicts": report.conflicts,
            "skipped": report.skipped,
            "message": report.message,
        }
        if report.exit_code == Exit.DONE:
            return StepResult("done", result, Exit.DONE, report.message)
        if report.exit_code == Exit.REVIEW:
            return StepResult("review", result, Exit.REVIEW, report.message)
        return StepResult("failed", result, report.exit_code, report.message)


# --- resume -----------------------------------------------------------------------------


class ResumeProvider:
    def plan(self, ctx: StepContext, step: Step) -> PlanView:
        run = ctx.journal.get_run(ctx.run.id)
        segments = [[s.seg_no, s.status] for s in ctx.journal.segments(run.id)]
        summary = {
            "action": "resume_run",
            "run": run.id,
            "status": run.status,
            "reason": run.reason,
            "rows_total": run.rows_total,
            "status_counts": ctx.journal.operation_status_counts(run.id),
            "segments": segments,
        }
        ops = tuple(sorted({o.op for o in ctx.journal.operations(run.id, limit=1000)}))
        return PlanView(digest(summary), {**summary, "segments": len(segments)}, ops)

    def execute(self, ctx: StepContext, step: Step, plan: PlanView) -> StepResult:
        from console.engine.apply import Engine

        report = Engine(ctx.journal, ctx.settings).resume(ctx.run.id)
        result = {
            "status": report.status,
            "applied": report.applied,
            "failed": report.failed,
            "conflicts": report.conflicts,
            "exit_code": int(report.exit_code),
            "message": report.message,
        }
        outcome = {Exit.DONE: "done", Exit.REVIEW: "review"}.get(report.exit_code, "failed")
        return StepResult(outcome, result, report.exit_code, report.message)


# --- fix (reconciliation plugs its provider in) -----------------------------------------


class FixProvider:
    """Delegates to ``console.reconcile.service`` (``fix_plan`` and ``apply_fixes``)."""

    def _service(self) -> Any:
        try:
            service = importlib.import_module("console.reconcile.service")
        except ImportError:
            raise BadInput(
                "fixes are not available: console.reconcile.service is missing."
            ) from None
        if not hasattr(service, "fix_plan") or not hasattr(service, "apply_fixes"):
            raise BadInput(
                "fixes are not available: console.reconcile.service has no fix_plan/apply_fixes."
            )
        return service

    def plan(self, ctx: StepContext, step: Step) -> PlanView:
        fix = self._service().fix_plan(ctx.journal, ctx.settings, ctx.run.id)
        summary = fix.as_dict() if hasattr(fix, "as_dict") else {"fixes": str(fix)}
        if isinstance(summary.get("ops"), list):  # approvers see the first rows; the digest all
            summary = {**summary, "ops": summary["ops"][:20], "total": len(summary["ops"])}
        items = getattr(fix, "ops", None) or getattr(fix, "items", None) or ()
        ops = tuple(
            sorted({str(getattr(f, "kind", None) or getattr(f, "op", "update")) for f in items})
        )
        return PlanView(
            str(fix.digest), {"action": "fix", "run": ctx.run.id, **summary}, ops or ("update",)
        )

    def execute(self, ctx: StepContext, step: Step, plan: PlanView) -> StepResult:
        report = self._service().apply_fixes(
            ctx.journal, ctx.settings, ctx.run.id, plan_digest=plan.digest, via_runbook=ctx.exec_id
        )
        code = Exit(int(getattr(report, "exit_code", 0)))
        result = report.as_dict() if hasattr(report, "as_dict") else {"exit_code": int(code)}
        outcome = {Exit.DONE: "done", Exit.REVIEW: "review"}.get(code, "failed")
        return StepResult(
            outcome,
            {**result, "approved_plan_digest": plan.digest},
            code,
            str(getattr(report, "message", f"fixes applied (exit {int(code)})")),
        )


register("rollback", RollbackProvider())
register("resume_run", ResumeProvider())
register("fix", FixProvider())
