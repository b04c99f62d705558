"""Executing a rollback: its own journaled run (segments, write-ahead intents, checkpoints,
lease, resume), through the same segment executor as a forward apply."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.engine import Connection

from console.config import Settings
from console.engine import lease
from console.engine.lease import Holder
from console.engine.report import ProgressFn, RunReport
from console.engine.segments import (
    IN_DOUBT,
    Precheck,
    SegmentPlan,
    SegmentRunner,
    Watch,
    in_doubt_plan,
)
from console.errors import BadInput, Exit
from console.gcpause import gc_paused
from console.journal import Journal, new_id
from console.journal.models import Run
from console.journal.store import T_RUNS, EngineQueries
from console.rollback.plan import Inverse, RollbackPlan, Scope, build_plan, conflict_dict
from console.runbook import gate
from console.status import RESUMABLE
from console.targets.resolve import open_target
from console.targets.sql import SqlTarget
from console.targets.types import TransientError

OnConflict = Literal["review", "skip"]
MAX_OP = 2**31 - 1  # op numbers are INTEGER columns


def _refuse_if_executing(conn: Connection, journal: Journal, parent: Run) -> None:
    """A run another process is still applying would go on writing behind the rollback (and
    its segment in flight is not in doubt, merely unfinished): it must be paused first."""
    holder = lease.live_holder(conn, journal, parent.id)
    if holder is not None and (holder.host, holder.pid) != (socket.gethostname(), os.getpid()):
        raise lease.RunHeld(
            f"run {parent.id} is still being applied by process {holder.pid} on "
            f"{holder.host}; pause it first with `backout pause {parent.id}`, then roll back."
        )


def _refuse_if_started_meanwhile(conn: Connection, parent: Run) -> None:
    """Two executors can plan the same rollback at once; the journal's write transaction
    serialises their starts, and only the first finds the parent as both planned it."""
    now = conn.execute(select(T_RUNS.c.status).where(T_RUNS.c.id == parent.id)).scalar_one()
    if now != parent.status:
        raise lease.RunHeld(
            f"run {parent.id} went from {parent.status} to {now} while this rollback was "
            f"planned: another executor started first; see `backout show {parent.id}`."
        )


@dataclass
class Options:
    scope: Scope = field(default_factory=Scope)
    on_conflict: OnConflict = "review"
    force: bool = False
    dry_run: bool = False
    target: str | None = None  # override the journaled target reference
    via_runbook: str | None = None


class Rollback:
    def __init__(
        self, journal: Journal, settings: Settings, *, progress: ProgressFn | None = None
    ) -> None:
        self.journal = journal
        self.settings = settings
        self.progress = progress
        self.queries = EngineQueries(journal)
        self.holder = Holder.me()
        self._targets: dict[str, SqlTarget] = {}

    # --- targets --------------------------------------------------------------------

    def _target_refs(self, run: Run) -> dict[int, str]:
        created = self.journal.events(run.id, kinds=["run.created"], limit=1)[0].payload
        return {
            int(s["step_no"]): str(s.get("target_ref") or s.get("target", ""))
            for s in created.get("steps", [])
        }

    def target_for(self, run: Run, override: str | None) -> Any:
        refs = self._target_refs(run)

        def get(step_no: int) -> SqlTarget:
            ref = override or refs.get(step_no) or run.target
            if ref not in self._targets:
                self._targets[ref] = open_target(ref, self.settings)
            return self._targets[ref]

        return get

    def close(self) -> None:
        for t in self._targets.values():
            t.close()
        self._targets.clear()

    # --- planning -------------------------------------------------------------------

    def _parent(self, run_ref: str) -> Run:
        run = self.journal.get_run(run_ref)
        if run.dry_run:
            raise BadInput(f"run {run.id} was a dry run; it wrote nothing to roll back.")
        return run

    def plan(self, run_ref: str, options: Options) -> RollbackPlan:
        run = self._parent(run_ref)
        self._check_scope(run, options.scope)
        try:
            return build_plan(
                self.journal,
                run,
                options.scope,
                self.target_for(run, options.target),
                exclude=self._handled_by_unfinished(run),
            )
        finally:
            self.close()

    def _check_scope(self, run: Run, scope: Scope) -> None:
        names = {s.name for s in self.journal.steps(run.id)}
        unknown = [s for s in scope.steps if s not in names]
        if unknown:
            raise BadInput(
                f"--step {unknown[0]}: run {run.id} has no such step; its steps "
                f"are {', '.join(sorted(names)) or 'none'}."
            )

    def _unfinished(self, parent: Run) -> Run | None:
        for r in self.journal.runs(
            kind="rollback", drills=None, limit=1000, status=list(RESUMABLE)
        ):
            if r.parent_run == parent.id and not r.dry_run:
                return r
        return None

    def _handled_by_unfinished(self, parent: Run) -> list[int]:
        """Parent operations an unfinished rollback already decided (never twice)."""
        rb = self._unfinished(parent)
        if rb is None:
            return []
        return [
            o.parent_op
            for o in self.queries.operations_in(rb.id, 1, MAX_OP)
            if o.parent_op is not None
        ]

    # --- execution ------------------------------------------------------------------

    @gc_paused()
    def execute(self, run_ref: str, options: Options) -> RunReport:
        parent = self._parent(run_ref)
        if not options.dry_run:
            gate.check(
                self.settings,
                gate.GateRequest("rollback", parent.id, self.journal.actor, options.via_runbook),
                self.journal,
            )
        unfinished = self._unfinished(parent)
        if unfinished is not None and not options.dry_run:
            return self.resume(unfinished.id, options)
        self._check_scope(parent, options.scope)
        try:
            plan = build_plan(
                self.journal, parent, options.scope, self.target_for(parent, options.target)
            )
            if not plan.items:
                return RunReport(
                    parent.id,
                    parent.status,
                    f"run {parent.id}: nothing left to roll back in this scope.",
                    Exit.DONE,
                    extra={"plan_digest": plan.digest, "conflicts": []},
                )
            rb_id = self._start(parent, plan, options)
            return self._run(parent, rb_id, plan.items, options, next_op=1, next_seg=1)
        finally:
            self.close()

    def _start(self, parent: Run, plan: RollbackPlan, options: Options) -> str:
        rb_id, corr = new_id(), parent.corr
        steps = self.journal.steps(parent.id)
        created = self.journal.events(parent.id, kinds=["run.created"], limit=1)[0].payload
        with self.journal.write() as w:
            if not options.dry_run:
                _refuse_if_started_meanwhile(w.conn, parent)
                _refuse_if_executing(w.conn, self.journal, parent)
            lease.acquire(w.conn, self.journal, rb_id, self.holder)
            w.append(
                "run.created",
                {
                    "kind": "rollback",
                    "parent_run": parent.id,
                    "changeset": parent.changeset,
                    "version": parent.version,
                    "digest": parent.digest,
                    "automation": parent.automation,
                    "description": f"rollback of run {parent.id}",
                    "target": parent.target,
                    "drill": parent.drill,
                    "dry_run": options.dry_run,
                    "rows_total": len(plan.items),
                    "options": {
                        **created.get("options", {}),
                        "on_conflict": options.on_conflict,
                        "force": options.force,
                    },
                    "target_override": options.target,
                    "scope": options.scope.as_dict(),
                    "steps": [
                        {
                            "step_no": s.step_no,
                            "name": s.name,
                            "table": s.tbl,
                            "key": loads_list(s.key_columns),
                            "operations": s.operations,
                            "target": s.target,
                            "target_ref": (
                                created.get("steps", [{}] * s.step_no)[s.step_no - 1].get(
                                    "target_ref"
                                )
                            ),
                        }
                        for s in steps
                    ],
                },
                run_id=rb_id,
                corr=corr,
            )
            w.append(
                "rollback.planned",
                {
                    "plan_digest": plan.digest,
                    "scope": options.scope.as_dict(),
                    "items": len(plan.items),
                    "conflicts": len(plan.conflicts),
                },
                run_id=rb_id,
                corr=corr,
            )
            if not options.dry_run:
                w.append(
                    "run.status",
                    {
                        "status": "rolling_back",
                        "reason": f"rollback {rb_id}",
                        "final": False,
                        "rollback_run": rb_id,
                    },
                    run_id=parent.id,
                    corr=corr,
                )
            w.append(
                "run.started",
                {"pid": os.getpid(), "host": socket.gethostname()},
                run_id=rb_id,
                corr=corr,
            )
        return rb_id

    def _segments(
        self,
        parent: Run,
        rb_id: str,
        items: list[Inverse],
        options: Options,
        next_op: int,
        next_seg: int,
        size: int,
    ) -> Iterator[SegmentPlan]:
        key_cols = {
            s.step_no: tuple(loads_list(s.key_columns)) for s in self.journal.steps(parent.id)
        }
        op_no, seg_no = next_op, next_seg
        start = 0
        while start < len(items):
            first = items[start]
            chunk = [first]
            while (
                start + len(chunk) < len(items)
                and len(chunk) < size
                and items[start + len(chunk)].table == first.table
                and items[start + len(chunk)].step_no == first.step_no
            ):
                chunk.append(items[start + len(chunk)])
            start += len(chunk)
            plan = SegmentPlan(
                rb_id,
                parent.corr,
                seg_no,
                first.step_no,
                first.table,
                key_cols[first.step_no],
                [],
                outcome_extra={"parent_run": parent.id, "reverted_ops": []},
            )
            for inv in chunk:
                idem = f"rb:{parent.id}:{inv.parent_op}"
                if inv.conflict and not options.force:
                    op = inv.journal_op(op_no, idem)
                    if options.on_conflict == "skip":
                        detail: dict[str, Any] = {
                            "reason": "conflict skipped",
                            **conflict_dict(inv),
                        }
                        plan.prechecks.append(Precheck(op, "op.skipped", detail))
                    else:
                        plan.prechecks.append(Precheck(op, "op.conflict", conflict_dict(inv)))
                else:
                    plan.ops.append(inv.journal_op(op_no, idem, force=inv.conflict))
                op_no += 1
            seg_no += 1
            yield plan

    def _run(
        self,
        parent: Run,
        rb_id: str,
        items: list[Inverse],
        options: Options,
        *,
        next_op: int,
        next_seg: int,
    ) -> RunReport:
        started = time.monotonic()
        created = self.journal.events(parent.id, kinds=["run.created"], limit=1)[0].payload
        size = int(created.get("options", {}).get("segment_size", 100))
        target_for = self.target_for(parent, options.target)
        runners: dict[int, SegmentRunner] = {}
        watch = Watch()  # one for the run: a step's runner's writes are not another's news
        done = 0
        forced = {i.parent_op for i in items if i.conflict and options.force}
        try:
            for plan in self._segments(parent, rb_id, items, options, next_op, next_seg, size):
                runner = runners.get(plan.step_no)
                if runner is None:
                    runner = runners[plan.step_no] = SegmentRunner(
                        self.journal,
                        target_for(plan.step_no),
                        self.holder,
                        dry_run=options.dry_run,
                        watch=watch,
                    )
                # A pause request (`backout pause`) stops the rollback at this boundary, as it
                # stops an apply: looked for in the transaction that would journal the intent.
                with self.journal.write() as w:
                    watch.begin(w)
                    paused = watch.pause_requested(w, self.queries, rb_id)
                    if paused is None:
                        runner.write_intent(w, plan)
                watch.end(w)
                if paused is not None:
                    return self._pause(parent, rb_id, f"paused by {paused}", started, options)
                if forced:
                    self._journal_forced(plan, forced)
                result = runner.execute(plan)
                done += len(plan.ops) + len(plan.prechecks)
                if self.progress:
                    self.progress(done, len(items))
                if result.error:
                    return self._pause(
                        parent,
                        rb_id,
                        f"segment {plan.seg_no} failed: {result.error}",
                        started,
                        options,
                    )
        except TransientError as exc:
            return self._pause(parent, rb_id, f"target unavailable: {exc}", started, options)
        return self._finish(parent, rb_id, started, options)

    def _journal_forced(self, plan: SegmentPlan, forced: set[int]) -> None:
        with self.journal.write() as w:
            for op in plan.ops:
                if op.parent_op in forced:
                    w.append(
                        "op.forced",
                        {
                            "op_no": op.op_no,
                            "by": self.journal.actor,
                            "detail": {
                                "table": op.table,
                                "key": op.key,
                                "now": op.before,
                                "restore": op.after,
                            },
                        },
                        run_id=plan.run_id,
                        corr=plan.corr,
                    )

    def _pause(
        self, parent: Run, rb_id: str, reason: str, started: float, options: Options
    ) -> RunReport:
        with self.journal.write() as w:
            w.append(
                "run.paused",
                {"reason": reason, "by": self.journal.actor},
                run_id=rb_id,
                corr=parent.corr,
            )
            lease.release(w.conn, rb_id, self.holder)
        return self._report(parent, rb_id, started, options, paused=reason)

    def _finish(self, parent: Run, rb_id: str, started: float, options: Options) -> RunReport:
        rb = self.journal.get_run(rb_id)
        elapsed = time.monotonic() - started
        with self.journal.write() as w:
            w.append(
                "run.completed",
                {
                    "applied": rb.rows_applied,
                    "failed": rb.rows_failed,
                    "conflicts": rb.rows_conflict,
                    "skipped": rb.rows_skipped,
                    "elapsed_s": round(elapsed, 3),
                    "rows_per_s": round(rb.rows_applied / elapsed, 1) if elapsed else 0.0,
                },
                run_id=rb_id,
                corr=parent.corr,
            )
            if not options.dry_run:
                left = self.journal.count_operations(parent.id, ["applied"])
                status = "rolled_back" if left == 0 else "rollback_partial"
                reason = (
                    None
                    if left == 0
                    else (
                        f"{left} row(s) not reverted ({rb.rows_conflict} conflicts, "
                        f"{rb.rows_skipped} skipped)"
                    )
                )
                w.append(
                    "run.status",
                    {"status": status, "reason": reason, "final": True, "rollback_run": rb_id},
                    run_id=parent.id,
                    corr=parent.corr,
                )
            lease.release(w.conn, rb_id, self.holder)
        return self._report(parent, rb_id, started, options)

    def _report(
        self, parent: Run, rb_id: str, started: float, options: Options, paused: str | None = None
    ) -> RunReport:
        rb = self.journal.get_run(rb_id)
        parent = self.journal.get_run(parent.id)
        conflicts = [
            {"op_no": e.payload["op_no"], **e.payload["detail"]}
            for e in self.journal.events(rb_id, kinds=["op.conflict"], limit=10_000)
        ]
        plan_event = self.journal.events(rb_id, kinds=["rollback.planned"], limit=1)
        digest = plan_event[0].payload["plan_digest"] if plan_event else None
        verb = "would revert" if options.dry_run else "reverted"
        if paused:
            status, code = "paused", Exit.FAILED
            message = (
                f"rollback {rb_id} of run {parent.id} paused: {paused}; "
                f"`backout resume {rb_id}` continues it"
            )
        elif rb.rows_conflict:
            status, code = parent.status, Exit.REVIEW
            message = (
                f"rollback {rb_id} of run {parent.id}: {verb} {rb.rows_applied} rows; "
                f"{rb.rows_conflict} conflict(s) left for review (rows changed by "
                "someone else since the run)"
            )
        else:
            status, code = ("dry_run" if options.dry_run else parent.status), Exit.DONE
            message = f"rollback {rb_id} of run {parent.id}: {verb} {rb.rows_applied} rows"
            if rb.rows_skipped:
                message += f", skipped {rb.rows_skipped} conflict(s)"
        return RunReport.of_run(
            rb,
            run_id=parent.id,
            status=status,
            message=message,
            exit_code=code,
            dry_run=options.dry_run,
            started=started,
            reason=paused,
            extra={
                "rollback_run": rb_id,
                "plan_digest": digest,
                "conflicts": conflicts,
                "counts": {
                    "reverted": rb.rows_applied,
                    "conflicts": rb.rows_conflict,
                    "skipped": rb.rows_skipped,
                },
            },
        )

    # --- resume ---------------------------------------------------------------------

    def resume(self, rb_ref: str, options: Options | None = None) -> RunReport:
        rb = self.journal.get_run(rb_ref)
        if rb.kind != "rollback" or rb.parent_run is None:
            raise BadInput(f"run {rb.id} is not a rollback.")
        parent = self.journal.get_run(rb.parent_run)
        created = self.journal.events(rb.id, kinds=["run.created"], limit=1)[0].payload
        opts = options or Options(
            scope=Scope.from_dict(created.get("scope", {})),
            on_conflict=created.get("options", {}).get("on_conflict", "review"),
            force=bool(created.get("options", {}).get("force", False)),
            target=created.get("target_override"),
        )
        if rb.status not in RESUMABLE:
            return self._report(parent, rb.id, time.monotonic(), opts)
        started = time.monotonic()
        target_for = self.target_for(parent, opts.target)
        try:
            with self.journal.write() as w:
                lease.acquire(w.conn, self.journal, rb.id, self.holder)
                segs = self.journal.segments(rb.id)
                doubt = [s.seg_no for s in segs if s.status in IN_DOUBT]
                w.append(
                    "run.resumed",
                    {"by": self.journal.actor, "in_doubt": doubt},
                    run_id=rb.id,
                    corr=rb.corr,
                )
            steps = {
                s.step_no: (s.tbl, tuple(loads_list(s.key_columns)))
                for s in self.journal.steps(parent.id)
            }
            for seg in segs:
                if seg.status not in IN_DOUBT:
                    continue
                plan = in_doubt_plan(
                    self.journal,
                    self.queries,
                    rb,
                    seg,
                    *steps[seg.step_no],
                    retry=lambda _op: True,  # every inverse that failed is attempted again
                    outcome_extra={"parent_run": parent.id, "reverted_ops": []},
                )
                runner = SegmentRunner(self.journal, target_for(seg.step_no), self.holder)
                result = runner.execute(plan, in_doubt=True)
                if result.error:
                    return self._pause(
                        parent, rb.id, f"segment {seg.seg_no} failed: {result.error}", started, opts
                    )
            handled = [
                o.parent_op
                for o in self.queries.operations_in(rb.id, 1, MAX_OP)
                if o.parent_op is not None
            ]
            plan_rest = build_plan(self.journal, parent, opts.scope, target_for, exclude=handled)
            segs = self.journal.segments(rb.id)
            next_seg = max((s.seg_no for s in segs), default=0) + 1
            next_op = max((s.last_op for s in segs), default=0) + 1
            return self._run(
                parent, rb.id, plan_rest.items, opts, next_op=next_op, next_seg=next_seg
            )
        except TransientError as exc:
            return self._pause(parent, rb.id, f"target unavailable: {exc}", started, opts)
        finally:
            self.close()


def loads_list(text: str) -> list[str]:
    from console.canonical import loads

    value = loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []
