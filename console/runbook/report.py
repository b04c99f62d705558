"""What ``runbook status`` shows: an execution, its steps and the evidence each produced."""

from __future__ import annotations

from typing import Any

from console.canonical import loads
from console.config import Settings
from console.journal import Journal
from console.runbook import state


def listing(journal: Journal, limit: int = 100) -> list[dict[str, Any]]:
    with journal.read() as conn:
        return [
            {
                "id": e.id,
                "runbook": e.runbook,
                "version": e.version,
                "run": e.run_id,
                "status": e.status,
                "current_step": e.current_step,
                "requested_by": e.requested_by,
                "started_at": e.started_at,
                "finished_at": e.finished_at,
            }
            for e in state.list_execs(conn, limit=limit)
        ]


def describe(journal: Journal, settings: Settings, exec_ref: str) -> dict[str, Any]:
    with journal.read() as conn:
        ex = state.get_exec(conn, exec_ref)
        steps = state.exec_steps(conn, ex.id)
        decisions = state.approval_rows(conn, ex.id)
    return {
        "id": ex.id,
        "runbook": ex.runbook,
        "version": ex.version,
        "title": ex.title,
        "digest": ex.digest,
        "run": ex.run_id,
        "status": ex.status,
        "current_step": ex.current_step,
        "reason": ex.reason,
        "requested_by": ex.requested_by,
        "owner": ex.owner,
        "backup_ref": ex.backup_ref,
        "started_at": ex.started_at,
        "updated_at": ex.updated_at,
        "finished_at": ex.finished_at,
        "policy_version": settings.policy.version,
        "steps": [
            {
                "id": s.step_id,
                "kind": s.kind,
                "state": s.state,
                "attempts": s.attempts,
                "by": s.by,
                "started_at": s.started_at,
                "finished_at": s.finished_at,
                "outcome": s.outcome,
                "output_digest": s.output_digest,
                "result": loads(s.result) if s.result else None,
                "request": s.request_no or None,
                "plan_digest": s.plan_digest,
                "expires_at": s.expires_at,
                "requirement": loads(s.requirement) if s.requirement else None,
            }
            for s in steps
        ],
        "approvals": [
            {
                "seq": a["seq"],
                "step": a["step_id"],
                "approver": a["approver"],
                "roles": loads(a["roles"]),
                "decision": a["decision"],
                "state": a["state"],
                "comment": a["comment"],
                "plan_digest": a["plan_digest"],
                "runbook_digest": a["runbook_digest"],
                "head_seq": a["head_seq"],
                "ts": a["ts"],
            }
            for a in decisions
        ],
    }
