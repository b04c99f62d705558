"""Fixing what a reconciliation found, as a journaled run of kind ``fix``.

The plan comes from the core (``fixes.plan_fixes``) per table. Executing it goes through the
one gate and then the engine's write-ahead segment executor, like a rollback: each fix's
precondition is the operation's ``before``, so a row changed since the plan becomes a
conflict left for review (never "source wins"). Afterwards every touched key and the
aggregates are checked again and the outcome journaled (``fix.verified`` / ``fix.failed``).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from console.canonical import digest, jsonable
from console.config import Settings
from console.engine import lease
from console.engine.lease import Holder
from console.engine.report import RunReport
from console.engine.segments import (
    IN_DOUBT,
    JournalOp,
    SegmentPlan,
    SegmentRunner,
    Watch,
    in_doubt_plan,
    matches,
    segment_failure,
)
from console.errors import Blocked, Exit
from console.journal import Journal, new_id
from console.journal.models import Run
from console.journal.store import EngineQueries
from console.reconcile.fingerprint import key_text
from console.reconcile.fixes import FixOp, FixPlan, plan_fixes
from console.reconcile.report import Mode
from console.reconcile.service import ReconcileResult, Targets, compute
from console.runbook import gate
from console.status import RESUMABLE
from console.targets.types import Row, TransientError
from console.targets.values import key_tuple

SEGMENT = 100


@dataclass
class TablePlan:
    table: str
    key_columns: tuple[str, ...]
    target_ref: str
    plan: FixPlan

    @property
    def ops(self) -> tuple[FixOp, ...]:
        return self.plan.ops

    @property
    def review(self) -> tuple[dict[str, Any], ...]:
        return self.plan.review


@dataclass
class RunFixPlan:
    """The fix plan of one run over all its tables; ``digest`` is what an approver signs."""

    run_id: str
    against: Mode
    plans: list[TablePlan]
    digest: str
    counts: dict[str, int] = field(default_factory=dict)  # the reconciliation it fixes

    @property
    def ops(self) -> list[FixOp]:
        return [op for t in self.plans for op in t.ops]

    @property
    def total(self) -> int:
        return len(self.ops)

    @property
    def review_count(self) -> int:
        return sum(len(t.review) for t in self.plans)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "against": self.against,
            "tables": [t.plan.as_dict() for t in self.plans],
            "ops": [{"table": t.table, **op.as_dict()} for t in self.plans for op in t.ops],
            "review": [{"table": t.table, **r} for t in self.plans for r in t.review],
            "digest": self.digest,
        }


def plan_from(result: ReconcileResult, classes: Collection[str] | None = None) -> RunFixPlan:
    plans = [
        TablePlan(
            t.table,
            t.key_columns,
            t.target_ref,
            plan_fixes(
                t.report.findings,
                t.info,
                key_columns=t.key_columns,
                reference=result.against,
                classes=classes,
            ),
        )
        for t in result.tables
    ]
    body = {
        "run": result.run_id,
        "against": result.against,
        "tables": [t.plan.canonical() for t in plans],
    }
    return RunFixPlan(result.run_id, result.against, plans, digest(body), result.counts)


def fix_plan(
    journal: Journal,
    settings: Settings,
    run_id: str,
    *,
    against: str | None = None,
    classes: Collection[str] | None = None,
    target: str | None = None,
    normalisers: Mapping[str, Any] | None = None,
) -> RunFixPlan:
    """The fix plan as of now; writes nothing."""
    result = compute(journal, settings, run_id, against, target=target, normalisers=normalisers)
    return plan_from(result, classes)


@dataclass
class FixReport:
    run_id: str
    fix_run: str | None
    plan_digest: str
    exit_code: Exit
    message: str
    applied: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0
    review: int = 0
    verified: bool | None = None
    verification: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "fix_run": self.fix_run,
            "plan_digest": self.plan_digest,
            "exit_code": int(self.exit_code),
            "message": self.message,
            "applied": self.applied,
            "conflicts": jsonable(self.conflicts),
            "failed": self.failed,
            "review": self.review,
            "verified": self.verified,
            "verification": jsonable(self.verification),
        }


def _journal_op(op: FixOp, op_no: int, fix_id: str, table: str) -> JournalOp:
    """A FixOp as the engine journals it: the precondition is ``before`` (re-checked under
    lock at the moment of writing), the inverse makes the fix reversible like any run."""
    key = dict(jsonable(op.key))
    pre = jsonable(op.precondition)
    idem = f"fix:{fix_id}:{op_no}"
    if op.kind == "update":
        assert isinstance(pre, dict) and op.set is not None
        new = dict(jsonable(op.set))
        return JournalOp(
            op_no, table, "update", key, {**key, **pre}, {**key, **pre, **new},
            {"op": "update", "set": pre}, idem,
        )  # fmt: skip
    if op.kind == "insert":
        row = dict(jsonable(op.row))
        return JournalOp(op_no, table, "insert", key, None, row, {"op": "delete"}, idem)
    assert isinstance(pre, dict)
    return JournalOp(op_no, table, "delete", key, pre, None, {"op": "insert", "row": pre}, idem)


class FixRun:
    def __init__(self, journal: Journal, settings: Settings, target: str | None) -> None:
        self.journal = journal
        self.settings = settings
        self.targets = Targets(settings, target)
        self.holder = Holder.me()
        self.refs: dict[str, str] = {}

    def start(self, parent: Run, plan: RunFixPlan) -> str:
        fix_id = new_id()
        with self.journal.write() as w:
            lease.acquire(w.conn, self.journal, fix_id, self.holder)
            w.append(
                "run.created",
                {
                    "kind": "fix",
                    "parent_run": parent.id,
                    "changeset": parent.changeset,
                    "version": parent.version,
                    "digest": parent.digest,
                    "automation": parent.automation,
                    "description": f"fix of run {parent.id} against {plan.against}",
                    "target": parent.target,
                    "drill": parent.drill,
                    "dry_run": False,
                    "rows_total": plan.total,
                    "options": {"against": plan.against, "plan_digest": plan.digest},
                    "target_override": self.targets.override,
                    "steps": [
                        {
                            "step_no": n,
                            "name": f"fix {t.table}",
                            "table": t.table,
                            "key": list(t.key_columns),
                            "operations": len(t.ops),
                            "target": parent.target,
                            "target_ref": t.target_ref,
                        }
                        for n, t in enumerate(plan.plans, start=1)
                    ],
                },
                run_id=fix_id,
                corr=parent.corr,
            )
            w.append(
                "run.started",
                {"pid": os.getpid(), "host": socket.gethostname()},
                run_id=fix_id,
                corr=parent.corr,
            )
        return fix_id

    def segments(self, parent: Run, fix_id: str, plan: RunFixPlan) -> Iterator[SegmentPlan]:
        op_no = seg_no = 1
        for step_no, t in enumerate(plan.plans, start=1):
            for i in range(0, len(t.ops), SEGMENT):
                ops = []
                for op in t.ops[i : i + SEGMENT]:
                    ops.append(_journal_op(op, op_no, fix_id, t.table))
                    op_no += 1
                yield SegmentPlan(fix_id, parent.corr, seg_no, step_no, t.table, t.key_columns, ops)
                seg_no += 1

    def execute(self, parent: Run, plan: RunFixPlan) -> tuple[str, dict[str, Any]]:
        fix_id = self.start(parent, plan)
        started = time.monotonic()
        refs = self.refs = {t.table: t.target_ref for t in plan.plans}
        written: list[tuple[SegmentPlan, JournalOp]] = []
        error: str | None = None
        paused: str | None = None
        watch, queries = Watch(), EngineQueries(self.journal)
        try:
            for seg in self.segments(parent, fix_id, plan):
                target = self.targets.get(refs[seg.table])
                runner = SegmentRunner(self.journal, target, self.holder, watch=watch)
                # A pause request (`backout pause`, the console's P) stops the fix here, as
                # it stops an apply: looked for in the transaction that would journal the intent.
                with self.journal.write() as w:
                    watch.begin(w)
                    paused = watch.pause_requested(w, queries, fix_id)
                    if paused is None:
                        runner.write_intent(w, seg)
                watch.end(w)
                if paused is not None:
                    break
                result = runner.execute(seg)
                done = set(result.applied)
                written.extend((seg, o) for o in seg.ops if o.op_no in done)
                if result.error:
                    error = f"segment {seg.seg_no} failed: {result.error}"
                    break
        except TransientError as exc:  # the fix stops; verification reports what was written
            error = f"target unavailable: {exc}"
        self.close_run(fix_id, parent.corr, error, started, paused=paused)
        return fix_id, {"written": written, "error": error, "paused": paused}

    def close_run(
        self,
        fix_id: str,
        corr: str,
        error: str | None,
        started: float,
        *,
        paused: str | None = None,
    ) -> None:
        """Journal the fix run's end (paused by ``paused``, failed with ``error``, else
        completed) and let it go."""
        run = self.journal.get_run(fix_id)
        elapsed = time.monotonic() - started
        with self.journal.write() as w:
            if paused:
                w.append(
                    "run.paused",
                    {"reason": f"paused by {paused}", "by": self.journal.actor},
                    run_id=fix_id,
                    corr=corr,
                )
            elif error:
                w.append("run.failed", {"reason": error}, run_id=fix_id, corr=corr)
            else:
                w.append(
                    "run.completed",
                    {
                        "applied": run.rows_applied,
                        "failed": run.rows_failed,
                        "conflicts": run.rows_conflict,
                        "elapsed_s": round(elapsed, 3),
                        "rows_per_s": round(run.rows_applied / elapsed, 1) if elapsed else 0,
                    },
                    run_id=fix_id,
                    corr=corr,
                )
            lease.release(w.conn, fix_id, self.holder)

    def verify_keys(self, written: list[tuple[SegmentPlan, JournalOp]]) -> list[dict[str, Any]]:
        """Every key a fix wrote, read back: it must equal the fix's after-image."""
        bad: list[dict[str, Any]] = []
        by_table: dict[str, list[tuple[SegmentPlan, JournalOp]]] = {}
        for seg, op in written:
            by_table.setdefault(seg.table, []).append((seg, op))
        for table, items in by_table.items():
            seg0 = items[0][0]
            target = self.targets.get(self.refs[table])
            info = target.table(table)
            rows = target.read_rows(table, seg0.key_columns, [op.key for _s, op in items])
            for _s, op in items:
                now: Row | None = rows.get(key_tuple(info, seg0.key_columns, op.key))
                if not matches(info, now, op.after):
                    bad.append({"table": table, "key": op.key, "want": op.after, "now": now})
        return bad

    def close(self) -> None:
        self.targets.close()


def resume_fix(journal: Journal, settings: Settings, run: Run) -> RunReport:
    """Close a fix run whose process stopped without its outcome (killed, or its target
    went away): its segments in doubt are resolved from the target, as an apply's are.

    What the fix had not journaled yet is not written: its plan came from findings that may
    have changed since, so the rest is a new ``backout fix --apply``, planned, shown and gated
    afresh. Nothing is written that was not in the journaled, approved plan."""
    started = time.monotonic()
    parent = run.parent_run or "?"
    segments = journal.segments(run.id)
    doubt = [s.seg_no for s in segments if s.status in IN_DOUBT]
    if run.status not in RESUMABLE or (run.status == "failed" and not doubt):
        return RunReport.nothing_to_resume(run, f" ({run.reason})" if run.reason else "")
    created = journal.events(run.id, kinds=["run.created"], limit=1)[0].payload
    steps = {int(s["step_no"]): s for s in created["steps"]}
    fr = FixRun(journal, settings, created.get("target_override"))
    queries = EngineQueries(journal)
    error: str | None = None
    try:
        with journal.write() as w:
            lease.acquire(w.conn, journal, run.id, fr.holder)
            w.append(
                "run.resumed",
                {"by": journal.actor, "in_doubt": doubt},
                run_id=run.id,
                corr=run.corr,
            )
        for seg in segments:
            if seg.status not in IN_DOUBT:
                continue
            step = steps[seg.step_no]
            plan = in_doubt_plan(
                journal, queries, run, seg, step["table"], tuple(step["key"]),
                retry=segment_failure,
            )  # fmt: skip
            runner = SegmentRunner(journal, fr.targets.get(step["target_ref"]), fr.holder)
            result = runner.execute(plan, in_doubt=True)
            if result.error:
                error = f"segment {seg.seg_no} failed again: {result.error}"
                break
        journaled = max((s.last_op for s in segments), default=0)
        if error is None and journaled < run.rows_total:
            error = (
                f"interrupted after {journaled} of {run.rows_total} fixes were journaled; "
                "the rest were never written"
            )
    except TransientError as exc:
        error = f"target unavailable: {exc}"
    finally:
        fr.close()
    fr.close_run(run.id, run.corr, error, started)
    done = journal.get_run(run.id)
    if error is None:
        code = Exit.REVIEW if done.rows_conflict else Exit.DONE
        message = (
            f"fix {run.id} of run {parent} completed on resume: {done.rows_applied} written, "
            f"{done.rows_conflict} conflict(s); `backout reconcile {parent}` checks the result."
        )
    else:
        code = Exit.FAILED
        message = (
            f"fix {run.id} of run {parent} closed: {error}. {done.rows_applied} written, "
            f"{done.rows_conflict} conflict(s); `backout fix {parent} --plan` shows what is "
            "still wrong, and `--apply` fixes it as a new run."
        )
    return RunReport.of_run(
        done, run_id=run.id, status=done.status, exit_code=code, dry_run=False,
        started=started, message=message, reason=None if error is None else error,
    )  # fmt: skip


def apply_fixes(
    journal: Journal,
    settings: Settings,
    run_id: str,
    *,
    plan_digest: str | None = None,
    via_runbook: str | None = None,
    against: str | None = None,
    classes: Collection[str] | None = None,
    target: str | None = None,
    plan: RunFixPlan | None = None,
    normalisers: Mapping[str, Any] | None = None,
) -> FixReport:
    """Gate, execute and verify a fix plan (``plan``: one computed earlier, as shown to the
    person who asked; otherwise computed now). ``plan_digest``: the digest that was approved;
    a plan that no longer has it is refused (exit 4)."""
    if plan is None:
        plan = fix_plan(
            journal, settings, run_id, against=against, classes=classes, target=target,
            normalisers=normalisers,
        )  # fmt: skip
    parent = journal.get_run(plan.run_id)
    if plan_digest is not None and plan_digest != plan.digest:
        raise Blocked(
            f"the fix plan for run {parent.id} changed since it was approved "
            f"({plan_digest[:12]} -> {plan.digest[:12]}); review the new plan."
        )
    kinds = tuple(sorted({op.kind for op in plan.ops}))
    gate.check(
        settings,
        gate.GateRequest(
            "fix", parent.id, journal.actor, via_runbook, operations=kinds, plan_digest=plan.digest
        ),
        journal,
    )
    review = plan.review_count
    if not plan.ops:
        code = Exit.REVIEW if review else Exit.DONE
        msg = f"run {parent.id}: nothing to fix" + (f"; {review} left for review" if review else "")
        return FixReport(parent.id, None, plan.digest, code, msg, review=review)
    fr = FixRun(journal, settings, target)
    try:
        fix_id, out = fr.execute(parent, plan)
        if out["paused"]:
            run = journal.get_run(fix_id)
            return FixReport(
                parent.id, fix_id, plan.digest, Exit.FAILED,
                f"fix {fix_id} of run {parent.id} paused by {out['paused']} after "
                f"{run.rows_applied} of {plan.total} fixes; `backout resume {fix_id}` closes it, "
                f"and `backout fix {parent.id} --plan` shows what is still wrong.",
                run.rows_applied, [], run.rows_failed, review, False, {},
            )  # fmt: skip
        written: list[tuple[SegmentPlan, JournalOp]] = out["written"]
        conflicts = [
            {"op_no": e.payload["op_no"], **e.payload["detail"]}
            for e in journal.events(fix_id, kinds=["op.conflict"], limit=10_000)
        ]
        bad = fr.verify_keys(written)
    finally:
        fr.close()
    # The aggregates and every key, as the reconciliation sees them now.
    after = compute(journal, settings, parent.id, plan.against, target=target)
    conflicted = {
        (c.get("table"), key_text(list(dict(c.get("key") or {}).values()))) for c in conflicts
    }
    fixed = {(t.table, key_text(list(op.key.values()))) for t in plan.plans for op in t.ops}
    still = [
        {"table": t.table, "key": list(f.key), "class": f.cls}
        for t in after.tables
        for f in t.report.findings
        if f.needs_review
        and f.cls != "aggregate_mismatch"
        and (t.table, key_text(f.key)) in fixed - conflicted
    ]
    agg_before = plan.counts.get("aggregate_mismatch", 0)
    agg_after = after.counts.get("aggregate_mismatch", 0)
    ok = not bad and not still and out["error"] is None and agg_after <= agg_before
    verification = {
        "keys": len(written),
        "mismatched": bad,
        "still_flagged": still,
        "aggregates": {"mismatches_before": agg_before, "mismatches_after": agg_after},
        "counts": after.counts,
        "digests": after.digests,
        "plan_digest": plan.digest,
        "parent_run": parent.id,
    }
    journal.append("fix.verified" if ok else "fix.failed", jsonable(verification), run_id=fix_id)
    run = journal.get_run(fix_id)
    if not ok:
        code, verdict = Exit.FAILED, "verification FAILED"
    elif conflicts or review:
        code, verdict = Exit.REVIEW, "verified; some left for review"
    else:
        code, verdict = Exit.DONE, "verified"
    msg = (
        f"fix {fix_id} of run {parent.id}: applied {run.rows_applied}, "
        f"{len(conflicts)} conflict(s), {review} left for review; {verdict}"
    )
    return FixReport(
        parent.id, fix_id, plan.digest, code, msg, run.rows_applied, conflicts,
        run.rows_failed, review + len(conflicts), ok, verification,
    )  # fmt: skip
