"""``on_error: rollback``: a failed batch reverses what it applied, through the one rollback
code path (``console.rollback.execute.Rollback``) and the one gate it asks.

The apply run is paused first (its lease released, every outcome journaled), so whatever
happens next it is in a state an operator can act on. Then ``rollback.triggered`` records
which step and segment failed and why, and the rollback starts as a normal rollback run whose
``parent_run`` is the apply run: a crash during it is resumed with ``backout resume``.

When the policy refuses a direct rollback of that target or environment (a runbook or
approvals required), the gate journals ``gate.refused`` and nothing is reverted: the run stays
paused and the report exits 4, like ``backout rollback`` would under the same policy, because
the action the operator must take next is the runbook, not a resume.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from console.config import Settings
from console.engine.report import ProgressFn, RunReport
from console.errors import Blocked, Exit
from console.journal import Journal

TRIGGERED = "rollback.triggered"  # {on_error, reason, seg_no, step_no, step, cause}


def roll_back(
    journal: Journal,
    settings: Settings,
    paused: RunReport,
    trigger: dict[str, Any],
    *,
    target: str | None,
    progress: ProgressFn | None = None,
) -> RunReport:
    """Roll back the paused run ``paused.run_id`` because of ``trigger``; the report says
    what the batch did and what the rollback did (exit 1), or why it was refused (exit 4)."""
    from console.rollback.execute import Options, Rollback

    run = journal.get_run(paused.run_id or "")
    journal.append(
        TRIGGERED,
        {"on_error": "rollback", "reason": paused.reason, **trigger},
        run_id=run.id,
        corr=run.corr,
    )
    base = {"on_error": "rollback", "trigger": trigger}
    try:
        outcome = Rollback(journal, settings, progress=progress).execute(
            run.id, Options(target=target)
        )
    except Blocked as exc:
        refusal = journal.events(run.id, kinds=["gate.refused"], limit=1, newest_first=True)
        found = refusal[0].payload if refusal else {}
        return replace(
            paused,
            exit_code=Exit.BLOCKED,
            message=f"{paused.message}. on_error: rollback was refused by the gate, nothing "
            f"was reverted: {exc.message}",
            extra={
                **paused.extra,
                **base,
                "rollback": {
                    "refused": True,
                    "rule": found.get("rule"),
                    "policy_version": found.get("policy_version"),
                    "message": exc.message,
                },
            },
        )
    rb_id = outcome.extra.get("rollback_run")
    status = journal.get_run(run.id).status
    return replace(
        paused,
        status=status,
        exit_code=Exit.FAILED,
        message=f"run {run.id} failed: {paused.reason}. on_error: rollback: {outcome.message}",
        extra={
            **paused.extra,
            **base,
            "rollback_run": rb_id,
            "rollback": {"refused": False, **outcome.as_dict()},
        },
    )
