"""Can this run still be rolled back? Checked before the worst moment, not during it.

Target reachable; table and columns still as the journal recorded them (schema drift since
the batch is the usual reason a rollback fails at 2 a.m.); locks obtainable and the first
inverse segment executable (a dry run of it); rows already changed by others; the policy's
rollback window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from console.canonical import loads
from console.config import parse_duration
from console.errors import BackoutError
from console.journal import parse_ts
from console.journal.models import Run
from console.rollback.execute import Options, Rollback
from console.rollback.plan import build_plan


@dataclass
class Readiness:
    run_id: str
    ready: bool = True
    reasons: list[str] = field(default_factory=list)
    inverses: int = 0
    conflicts: int = 0
    plan_digest: str | None = None

    def fail(self, reason: str) -> None:
        self.ready = False
        self.reasons.append(reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ready": self.ready,
            "reasons": self.reasons,
            "inverses": self.inverses,
            "conflicts": self.conflicts,
            "plan_digest": self.plan_digest,
        }


def check(rollback: Rollback, run: Run, options: Options) -> Readiness:
    result = Readiness(run.id)
    journal, settings = rollback.journal, rollback.settings
    window = parse_duration(settings.policy.rollback.window)
    age = journal.clock() - parse_ts(run.created_at)
    if age > window:
        result.fail(
            f"the run is {age.days} days old, beyond the policy's rollback window "
            f"({settings.policy.rollback.window}); it needs an approved runbook"
        )
    target_for = rollback.target_for(run, options.target)
    try:
        for step in journal.steps(run.id):
            try:
                target = target_for(step.step_no)
                info = target.table(step.tbl)
            except BackoutError as exc:
                result.fail(f"step {step.name}: {exc.message}")
                continue
            recorded = _recorded_columns(rollback, run, step.step_no)
            missing = sorted(recorded - set(info.columns))
            if missing:
                result.fail(
                    f"table {step.tbl} no longer has column(s) {', '.join(missing)} "
                    "that the run wrote (schema drift)"
                )
        if not result.ready:
            return result
        plan = build_plan(journal, run, options.scope, target_for)
        result.inverses = len(plan.items) - len(plan.conflicts)
        result.conflicts = len(plan.conflicts)
        result.plan_digest = plan.digest
        if plan.conflicts:
            result.fail(
                f"{len(plan.conflicts)} row(s) were changed by others since the run; "
                "they will be conflicts for review"
            )
        probe = [i for i in plan.items if not i.conflict][:100]
        if probe:
            _probe_first_segment(rollback, run, probe, target_for, result)
    finally:
        rollback.close()
    return result


def _recorded_columns(rollback: Rollback, run: Run, step_no: int) -> set[str]:
    cols: set[str] = set()
    for op in rollback.journal.operations(run.id, limit=50):
        if op.step_no != step_no:
            continue
        for image in (loads(op.before), loads(op.after)):
            if image:
                cols.update(image)
    return cols


def _probe_first_segment(
    rollback: Rollback, run: Run, items: list[Any], target_for: Any, result: Readiness
) -> None:
    """Execute the first inverse segment inside a transaction that is rolled back."""
    from console.targets.types import SegmentError, TransientError

    first = items[0]
    same = [i for i in items if i.table == first.table and i.step_no == first.step_no]
    step = next(s for s in rollback.journal.steps(run.id) if s.step_no == first.step_no)
    key_cols = tuple(loads(step.key_columns))
    writes = [i.journal_op(n, "probe").row_write() for n, i in enumerate(same, start=1)]
    try:
        target_for(first.step_no).write_segment(first.table, key_cols, writes, dry_run=True)
    except TransientError as exc:
        result.fail(f"locks on {first.table} could not be obtained: {exc}")
    except SegmentError as exc:
        result.fail(f"the first inverse segment would fail on {first.table}: {exc.message}")
