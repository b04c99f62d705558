"""Events in words: one line per event, and the marker each kind shows on the timeline.

Headless (no Textual). Kinds the services have not defined yet (``approval.*``,
``reconcile.*``, ``runbook.*`` ...) still get a readable generic line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from console.tui import fmt


@dataclass(frozen=True, slots=True)
class MarkerStyle:
    glyph: str
    lane: str  # "problems" | "actions" | "checkpoints"
    style: str
    rank: int  # which marker wins when several share a column (higher wins)
    failure: bool = False


FAILURE = MarkerStyle("✗", "problems", "bold red", 90, failure=True)
CONFLICT = MarkerStyle("⚠", "problems", "bold yellow", 80, failure=True)
GUARD = MarkerStyle("⊘", "problems", "bold red", 85, failure=True)
FORCED = MarkerStyle("⚑", "actions", "bold red", 75)
PAUSE = MarkerStyle("‖", "actions", "bold yellow", 60)
RESUME = MarkerStyle("▶", "actions", "cyan", 40)
ROLLBACK = MarkerStyle("⟲", "actions", "bold magenta", 70)
APPROVAL = MarkerStyle("◎", "actions", "bold blue", 65)
DENIAL = MarkerStyle("⊗", "actions", "bold red", 66)
RECONCILE = MarkerStyle("≡", "actions", "bold cyan", 50)
RUNBOOK = MarkerStyle("☰", "actions", "blue", 45)
END = MarkerStyle("■", "actions", "green", 30)
CHECKPOINT = MarkerStyle("◆", "checkpoints", "dim green", 10)

# What the timeline queries; the rest of a run's events are in the Events tab.
TIMELINE_KINDS = (
    "checkpoint",
    "segment.failed",
    "op.failed",
    "op.conflict",
    "guard.tripped",
    "run.paused",
    "run.resumed",
    "run.failed",
    "run.completed",
    "run.status",
    "run.pause_requested",
    "segment.retry",
    "op.forced",
    "rollback.*",
    "approval.*",
    "reconcile.*",
    "runbook.*",
    "gate.refused",
    "fix.*",
)

FAILURE_KINDS = ("segment.failed", "op.failed", "op.conflict", "guard.tripped", "run.failed")

# Who did what: the Audit tab.
AUDIT_KINDS = (
    "run.created",
    "run.started",
    "run.paused",
    "run.resumed",
    "run.completed",
    "run.failed",
    "run.status",
    "run.pause_requested",
    "segment.retry",
    "op.forced",
    "approval.*",
    "runbook.*",
    "gate.*",
    "target.*",
    "rollback.*",
    "fix.*",
    "drill.*",
    "annotation",
)
RECONCILE_KINDS = ("reconcile.*", "snapshot.taken", "fix.*", "run.drift")
RUNBOOK_KINDS = ("runbook.*", "approval.*", "gate.*", "target.*")


def marker(kind: str, payload: Mapping[str, Any] | None = None) -> MarkerStyle | None:
    if kind in ("segment.failed", "op.failed", "run.failed"):
        return FAILURE
    if kind == "op.conflict":
        return CONFLICT
    if kind == "guard.tripped":
        return GUARD
    if kind in ("run.paused", "run.pause_requested"):
        return PAUSE
    if kind in ("run.resumed", "segment.retry"):
        return RESUME
    if kind == "op.forced":
        return FORCED
    if kind == "run.completed":
        return END
    if kind == "checkpoint":
        return CHECKPOINT
    if kind == "run.status":
        # Explicit status changes are the rollback's (rolling_back, rolled_back, ...).
        status = str((payload or {}).get("status", "roll"))
        return ROLLBACK if "roll" in status else RESUME
    if kind.startswith("rollback."):
        return ROLLBACK
    if kind == "gate.refused":
        return DENIAL
    if kind.startswith("approval."):
        return DENIAL if kind.endswith(("denied", "deny", "expired")) else APPROVAL
    if kind.startswith(("reconcile.", "fix.")):
        return RECONCILE
    if kind.startswith("runbook."):
        return RUNBOOK
    return None


def _ops(p: Mapping[str, Any]) -> str:
    ops = p.get("ops") or []
    kinds: dict[str, int] = {}
    for op in ops:
        kinds[str(op.get("op"))] = kinds.get(str(op.get("op")), 0) + 1
    detail = ", ".join(f"{k} ×{n}" for k, n in sorted(kinds.items()))
    first = ops[0].get("op_no") if ops else "?"
    last = ops[-1].get("op_no") if ops else "?"
    return f"{len(ops)} ops #{first}–{last} ({detail})"


def summary(kind: str, p: Mapping[str, Any]) -> str:
    """One line saying what the event means."""
    g = p.get
    if kind == "run.created":
        return (
            f"{g('kind', 'apply')} of {g('changeset')} v{g('version')} · "
            f"{fmt.count(int(g('rows_total') or 0))} rows → {g('target')}"
        )
    if kind == "run.started":
        return f"started on {g('host', '?')} (pid {g('pid', '?')})"
    if kind == "run.progress":
        return f"seg {g('seg_no')}: {g('done')}/{g('total')} rows, {g('elapsed_s')}s"
    if kind == "snapshot.taken":
        return f"{g('phase')} snapshot of {g('table')}: {fmt.count(int(g('rows') or 0))} rows"
    if kind == "segment.intent":
        return f"seg {g('seg_no')} step {g('step_no')}: intent, {_ops(p)}"
    if kind == "segment.applied":
        extra = " (resolved after restart)" if g("resolved") else ""
        reverted = f", reverted {len(g('reverted_ops') or [])} of {g('parent_run')}"
        return (
            f"seg {g('seg_no')}: applied {len(g('applied') or [])} ops in "
            f"{g('duration_ms')}ms (attempt {g('attempt')}){extra}"
            + (reverted if g("parent_run") else "")
        )
    if kind == "segment.failed":
        n = len(g("ops") or [])
        ops = f" ({n} ops not written)" if n else ""
        return f"seg {g('seg_no')} failed at op #{g('op_no')}: {g('error')}{ops}"
    if kind == "segment.dry_run":
        return f"seg {g('seg_no')} dry run: {len(g('applied') or [])} would apply"
    if kind == "op.conflict":
        d = g("detail") or {}
        return f"op #{g('op_no')} conflict on {d.get('table')} {fmt.compact(d.get('key'), 40)}"
    if kind == "op.failed":
        return f"op #{g('op_no')} failed: {(g('detail') or {}).get('error')}"
    if kind == "op.forced":
        d = g("detail") or {}
        return (
            f"op #{g('op_no')} conflict FORCED by {g('by')} on {d.get('table')} "
            f"{fmt.compact(d.get('key'), 40)}"
        )
    if kind == "segment.retry":
        return f"seg {g('seg_no')} retried ({len(g('ops') or [])} ops pending again)"
    if kind == "run.pause_requested":
        return f"pause requested by {g('by')}"
    if kind == "rollback.planned":
        return (
            f"rollback planned: {g('items')} items, {g('conflicts')} conflicts, "
            f"scope {fmt.compact(g('scope'), 30)}, plan {str(g('plan_digest'))[:12]}"
        )
    if kind == "op.skipped":
        return f"op #{g('op_no')} skipped: {(g('detail') or {}).get('reason')}"
    if kind == "checkpoint":
        return f"checkpoint after seg {g('seg_no')}: op #{g('op_no')}, {g('done')} done"
    if kind == "guard.tripped":
        return (
            f"guard {g('invariant')} tripped after seg {g('seg_no')}: "
            f"expected {g('expected')}, got {g('actual')}"
        )
    if kind == "guard.passed":
        return f"guard {g('invariant')} passed after seg {g('seg_no')}"
    if kind == "run.paused":
        return f"paused by {g('by')}: {g('reason')}"
    if kind == "run.resumed":
        doubt = g("in_doubt") or []
        return f"resumed by {g('by')}" + (f", in doubt: {doubt}" if doubt else "")
    if kind == "run.completed":
        return (
            f"completed: {g('applied')} applied, {g('failed')} failed, "
            f"{g('conflicts')} conflicts in {g('elapsed_s')}s"
        )
    if kind == "run.failed":
        return f"failed: {g('reason')}"
    if kind == "run.status":
        return f"status → {g('status')}" + (f": {g('reason')}" if g("reason") else "")
    if kind == "run.drift":
        return "target drifted since the run" if g("drifted", True) else "drift cleared"
    if kind == "annotation":
        return f"note: {g('text')}"
    if kind == "changeset.rejected":
        return f"{g('changeset')} v{g('version')} rejected: {len(g('problems') or [])} problems"
    if kind.startswith(("runbook.", "approval.", "gate.", "target.")):
        return _runbook_summary(kind, p)
    # Kinds from services still to come: say what we can, generically.
    bits = [f"{k}={fmt.compact(v, 30)}" for k, v in sorted(p.items())[:4]]
    return " ".join(bits) if bits else "(no payload)"


def _runbook_summary(kind: str, p: Mapping[str, Any]) -> str:
    """Runbook executions, approvals and gate refusals (console/runbook writes these)."""
    g = p.get
    step = f"step {g('step')}"
    if kind == "runbook.started":
        return f"runbook {g('runbook')} v{g('version')} started (exec {g('exec')}): {g('title')}"
    if kind == "runbook.step.started":
        return f"{step} ({g('kind')}) started, attempt {g('attempt')}"
    if kind == "runbook.step.finished":
        nxt = f" → next {g('next')}" if g("next") else " → end"
        why = f": {g('reason')}" if g("reason") else ""
        return f"{step} ({g('kind')}) {g('state')}, {g('outcome')}{why}{nxt}"
    if kind == "runbook.step.failed":
        return f"{step} ({g('kind')}) failed: {g('error')}"
    if kind == "runbook.finished":
        why = f": {g('reason')}" if g("reason") else ""
        return f"runbook exec {g('exec')} finished, {g('status')}{why}"
    plan = f"plan {str(g('plan_digest') or '')[:12]}"
    if kind == "approval.requested":
        return (
            f"approval requested for {step} (request {g('request')}), {plan}, "
            f"expires {str(g('expires_at') or '?')[:19]}"
        )
    if kind == "approval.granted":
        roles = ",".join(g("roles") or []) or "no role"
        return f"APPROVED {step} ({roles}), {plan}: {g('comment') or 'no comment'}"
    if kind == "approval.denied":
        return f"DENIED {step}, {plan}: {g('comment') or 'no comment'}"
    if kind == "approval.expired":
        return f"approval for {step} EXPIRED: {g('reason')}"
    if kind == "gate.refused":
        return f"gate refused {g('action')} ({g('rule')}, {g('state')}): {g('message')}"
    if kind in ("target.locked", "target.unlocked"):
        return f"{kind.split('.')[1]} {g('target')} for exec {g('exec')}"
    bits = [f"{k}={fmt.compact(v, 30)}" for k, v in sorted(p.items())[:4]]
    return " ".join(bits) if bits else "(no payload)"
