"""``GET /metrics``: Prometheus text exposition from the journal's projections (drills are
kept out, as everywhere in real metrics)."""

from __future__ import annotations

from sqlalchemy import func, select

from console.journal import Journal, parse_ts
from console.journal.models import Operation, Run, RunbookStep, table_of

T_RUNS = table_of(Run)
T_OPS = table_of(Operation)
T_STEPS = table_of(RunbookStep)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(journal: Journal) -> str:
    real = T_RUNS.c.drill == False  # noqa: E712  (SQL expression)
    with journal.read() as conn:
        by_status = conn.execute(
            select(T_RUNS.c.status, func.count()).where(real).group_by(T_RUNS.c.status)
        ).all()
        sums = conn.execute(
            select(
                func.coalesce(func.sum(T_RUNS.c.rows_applied), 0),
                func.coalesce(func.sum(T_RUNS.c.rows_failed), 0),
                func.coalesce(func.sum(T_RUNS.c.rows_reverted), 0),
                func.coalesce(func.sum(T_RUNS.c.rows_conflict), 0),
            ).where(real)
        ).one()
        conflicts = conn.execute(
            select(func.count())
            .select_from(T_OPS.join(T_RUNS, T_OPS.c.run_id == T_RUNS.c.id))
            .where(real, T_OPS.c.status == "conflict")
        ).scalar_one()
        waiting = conn.execute(
            select(T_STEPS.c.requested_at).where(T_STEPS.c.state == "awaiting_approval")
        ).all()
    now = journal.clock()
    ages = [(now - parse_ts(r[0])).total_seconds() for r in waiting if r[0]]
    out = [
        "# HELP backout_runs Runs by status.",
        "# TYPE backout_runs gauge",
        *(f'backout_runs{{status="{_esc(str(s))}"}} {int(n)}' for s, n in by_status),
        "# HELP backout_rows Rows by outcome, summed over runs.",
        "# TYPE backout_rows gauge",
    ]
    for label, value in zip(("applied", "failed", "reverted", "conflict"), sums, strict=True):
        out.append(f'backout_rows{{outcome="{label}"}} {int(value)}')
    out += [
        "# HELP backout_open_conflicts Operations in conflict, waiting for review.",
        "# TYPE backout_open_conflicts gauge",
        f"backout_open_conflicts {int(conflicts)}",
        "# HELP backout_approvals_waiting Runbook approval steps waiting for a decision.",
        "# TYPE backout_approvals_waiting gauge",
        f"backout_approvals_waiting {len(waiting)}",
        "# HELP backout_approval_oldest_wait_seconds Age of the oldest waiting approval.",
        "# TYPE backout_approval_oldest_wait_seconds gauge",
        f"backout_approval_oldest_wait_seconds {max(ages, default=0.0):.3f}",
    ]
    return "\n".join(out) + "\n"
