"""``backout apply``, ``resume`` and ``pause``: a change set executed through the journal.

Order of work: validate everything (nothing written on bad input) while the same read of the
change set captures the baseline snapshot of every key in scope (its rows go to the snapshot
table under the new run's id, and are deleted again if the change set is refused) plus
aggregates → identity check (same name+version+digest applied before is a no-op; same
name+version, other digest is refused) → run.created with the baseline's snapshot.taken →
segments through the write-ahead protocol (``segments.py``) → guards and circuit breaker
after each → done.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from hashlib import blake2b
from pathlib import Path
from typing import Any

from console.canonical import canonical_json, loads, mask_url
from console.changes import (
    ChangeSet,
    ChangeSetInvalid,
    Operation,
    PlannedOp,
    PlannedSegment,
    Problem,
    coerced_operations,
    load_changeset,
    plan_segments,
    validate,
)
from console.changes.model import Step
from console.changes.planner import key_json, scalar_json
from console.config import Settings
from console.engine import lease
from console.engine.guards import breaker, check_invariants, judge_probed
from console.engine.lanes import InFlight, KeySet, Lanes, check_workers
from console.engine.lease import Holder
from console.engine.report import ProgressFn, RunReport
from console.engine.segments import (
    IN_DOUBT,
    JournalOp,
    Precheck,
    SegmentPlan,
    SegmentResult,
    SegmentRunner,
    Watch,
    in_doubt_plan,
    segment_failure,
)
from console.errors import BadInput, Exit, TargetUnavailable
from console.gcpause import gc_paused
from console.journal import Journal, Writer, new_id
from console.journal.models import Run, Segment
from console.journal.projections import Encoded
from console.journal.store import EngineQueries
from console.status import PAUSABLE, RESUMABLE
from console.targets.resolve import open_target
from console.targets.sql import SqlTarget
from console.targets.types import Row, TableInfo, TransientError
from console.targets.values import key_tuple


def key_text(key_columns: tuple[str, ...], key: Any) -> str:
    """The journal's text form of a row key (snapshots are looked up by it):
    ``canonical_json([key[c] for c in key_columns])``."""
    return "[" + ",".join([scalar_json(key[c]) for c in key_columns]) + "]"


def fingerprint(row: Row | None) -> str:
    return "-" if row is None else _fingerprint_text(canonical_json(row))


def _fingerprint_text(row_json: str) -> str:
    return blake2b(row_json.encode(), digest_size=16).hexdigest()


def _encoded(value: dict[str, Any]) -> Encoded:
    return Encoded(value, canonical_json(value))


@dataclass
class Targets:
    """The targets a change set writes, opened once, by reference."""

    settings: Settings
    override: str | None
    opened: dict[str, SqlTarget] = field(default_factory=dict)

    def ref(self, cs: ChangeSet, step: Step) -> str:
        ref = self.override or step.target or cs.target
        if not ref:
            raise BadInput(
                f"{cs.source}: no target for step '{step.name}'; add `target:` to the change "
                "set or pass --target."
            )
        return ref

    def get(self, ref: str) -> SqlTarget:
        if ref not in self.opened:
            self.opened[ref] = open_target(ref, self.settings)
        return self.opened[ref]

    def for_step(self, cs: ChangeSet, step: Step) -> SqlTarget:
        return self.get(self.ref(cs, step))

    def table(self, cs: ChangeSet, step: Step) -> TableInfo:
        return self.for_step(cs, step).table(step.table)

    def lookup(self, cs: ChangeSet) -> Any:
        """``(step target, table) -> TableInfo``, as validation and planning take it."""

        def tables(step_target: str | None, table: str) -> TableInfo:
            ref = self.override or step_target or cs.target
            try:
                if not ref:
                    raise TargetUnavailable("no target; add `target:` or pass --target.")
                return self.get(ref).table(table)
            except TargetUnavailable as exc:
                exc.field = "--target" if self.override else None  # else the change set's
                raise

        return tables

    def close(self) -> None:
        for t in self.opened.values():
            t.close()


class Baseline:
    """The baseline snapshot of a change set: every key in scope as it is now (absent keys
    too) and per-table aggregates, captured from ops fed in order, one step after another
    (``validate``'s sink, or ``coerced_operations``). Snapshot rows are written under the run
    id as they come (outside the hash chain); ``taken`` holds each step's ``snapshot.taken``
    payload for the caller to journal. With ``check``, it also finds what validation against
    the target needs to read it for: inserts of keys that exist (policy ``refuse``) and rows
    changed by two steps.
    """

    CHUNK = 1000  # keys read from the target at once
    BATCH = 5000  # snapshot rows per journal transaction
    # Coerced operations kept for planning, up to about this many bytes (measured: some 400
    # an operation and 100 a value); beyond, the planner reads the change set again (streams).
    KEEP_BYTES = 100 * 2**20

    def __init__(
        self,
        journal: Journal,
        cs: ChangeSet,
        targets: Targets,
        run_id: str,
        *,
        check: bool,
        holder: Holder | None = None,
    ) -> None:
        # ``holder``: a run not created yet, leased to it while its rows are written, so
        # that rows left by a killed capture are told from a live one (``sweep_abandoned``).
        self.holder = holder
        self._leased: Holder | None = None
        self.journal = journal
        self.cs = cs
        self.targets = targets
        self.run_id = run_id
        self.check = check
        self.problems: list[Problem] = []
        self.taken: list[dict[str, Any]] = []
        self.written = 0
        self._rows: list[dict[str, Any]] = []
        self._ops: list[Operation] = []
        self._index: int | None = None
        self._shared: set[tuple[str, str]] | None = None
        # (target ref, table) shared by several steps -> key_text -> first step index
        self._seen: dict[tuple[str, str], dict[str, int]] = {}
        # The operations as validation coerced them, by step index, for the planner: the
        # change set is not read and coerced twice (None: too many to hold, or not kept).
        self.kept: dict[int, list[Operation]] | None = {}
        self._kept = 0

    def __call__(self, index: int, op: Operation | None) -> None:
        if index != self._index:
            self._start(index)
        if op is None:
            self._end_step()
            return
        self._ops.append(op)
        if self.kept is not None:
            self._kept += 400 + 100 * (len(op.key) + len(op.values))
            if self._kept > self.KEEP_BYTES:
                self.kept = None
            else:
                self.kept.setdefault(index, []).append(op)
        if len(self._ops) >= self.CHUNK:
            self._read()

    def _start(self, index: int) -> None:
        if self.holder is not None and self._leased is None:
            with self.journal.write() as w:
                lease.sweep_abandoned(w.conn, self.journal)
                lease.acquire(w.conn, self.journal, self.run_id, self.holder)
            self._leased = self.holder
        cs, targets = self.cs, self.targets
        self._index = index
        self.step = step = cs.steps[index]
        ref = targets.ref(cs, step)
        self.target = targets.get(ref)
        self.info = self.target.table(step.table)
        self._hash = blake2b(digest_size=32)
        self._count = 0
        if self._shared is None:
            refs: list[tuple[str, str]] = []
            for s in cs.steps:
                with contextlib.suppress(BadInput):
                    refs.append((targets.ref(cs, s), s.table))
            self._shared = {r for r in refs if refs.count(r) > 1}
        place = (ref, step.table)
        self._overlap = self._seen.setdefault(place, {}) if place in self._shared else None

    def _read(self) -> None:
        chunk, self._ops = self._ops, []
        step, info, key = self.step, self.info, self.step.key
        found = self.target.read_rows(step.table, key, [o.key for o in chunk])
        refuse = self.check and self.cs.options.on_existing_insert == "refuse"
        h, rows, problems = self._hash, self._rows, self.problems
        for o in chunk:
            row = found.get(key_tuple(info, key, o.key))
            kt = key_text(key, o.key)
            if row is None:
                text, fp = None, "-"
            else:
                text = canonical_json(row)
                fp = _fingerprint_text(text)
            h.update(f"{kt}\x00{fp}\x00".encode())
            rows.append(
                {
                    "run_id": self.run_id,
                    "phase": "baseline",
                    "tbl": step.table,
                    "key_text": kt,
                    "row": text,
                    "fingerprint": fp,
                }
            )
            if len(problems) >= 100:
                continue
            if self._overlap is not None and self.check:
                first = self._overlap.setdefault(kt, self._index or 0)
                if first != self._index:
                    problems.append(
                        Problem(
                            self.cs.source,
                            o.line,
                            f"{step.name}.key",
                            f"row {kt} of {step.table} is changed by an earlier step too; "
                            "merge the two steps",
                        )
                    )
            if refuse and o.op == "insert" and row is not None:
                problems.append(
                    Problem(
                        self.cs.source,
                        o.line,
                        f"{step.name}.row",
                        f"insert of key {kt} but that row exists in {step.table}; use update "
                        "or upsert",
                    )
                )
        self._count += len(chunk)
        if len(rows) >= self.BATCH:
            self._write()

    def _write(self) -> None:
        if not self._rows:
            return
        if not self.problems:  # a refused change set's rows are deleted anyway
            with self.journal.write() as w:
                if self._leased is not None:
                    lease.renew(w.reader, self.journal, self.run_id, self._leased)
                w.add_snapshot_rows(self._rows)
            self.written += len(self._rows)
        self._rows = []

    def _end_step(self) -> None:
        if self._ops:
            self._read()
        self._write()
        info = self.info
        numeric = [c.name for c in info.columns.values() if c.kind in ("int", "decimal", "float")]
        aggregates = self.target.aggregates(self.step.table, numeric).as_dict()
        taken = {
            "phase": "baseline",
            "table": self.step.table,
            "rows": self._count,
            "digest": self._hash.hexdigest(),
            "aggregates": aggregates,
        }
        if not self.problems:  # the table outside the change set, declared checks
            from console.reconcile import tablestate

            taken.update(
                tablestate.capture(
                    self.journal, self.targets.settings, self.target, self.run_id, self.step
                )
            )
        self.taken.append(taken)
        self._index = None

    def discard(self) -> None:
        """Delete the snapshot rows written so far (the change set was not run)."""
        if self._leased is not None:
            with self.journal.write() as w:
                lease.release(w.conn, self.run_id, self._leased)
            self._leased = None
        if self.written:
            EngineQueries(self.journal).drop_snapshot(self.run_id, "baseline")
            self.written = 0
            from console.reconcile import tablestate

            tablestate.discard(self.journal, self.run_id)


class Engine:
    """Applies and resumes runs. One instance per command invocation."""

    def __init__(
        self,
        journal: Journal,
        settings: Settings,
        *,
        progress: ProgressFn | None = None,
        drill: bool = False,
    ) -> None:
        self.journal = journal
        self.settings = settings
        self.queries = EngineQueries(journal)
        self.progress = progress
        self.drill = drill
        self.holder = Holder.me()
        self._lanes = Lanes(1, _no_runner)  # the segment writes of the run executing

    # --- validation -----------------------------------------------------------------

    def _reject(self, cs: ChangeSet, problems: list[Problem]) -> ChangeSetInvalid:
        self.journal.append(
            "changeset.rejected",
            {
                "changeset": cs.name,
                "version": cs.version,
                "digest": cs.digest,
                "file": cs.source,
                "problems": [p.as_dict() for p in problems[:100]],
            },
        )
        return ChangeSetInvalid(problems)

    def _validate(self, cs: ChangeSet, targets: Targets, baseline: Baseline) -> None:
        """Everything that can be known before writing; raises with all the problems.

        The same read of the change set captures the baseline (``baseline``), which also
        finds inserts of existing keys and rows changed by two steps.
        """
        try:
            problems = validate(cs, targets.lookup(cs), sink=baseline)
        except BadInput as exc:
            baseline.discard()
            raise self._reject(cs, [Problem(cs.source, None, "target", exc.message)]) from None
        if not problems:
            problems = baseline.problems or _invariant_problems(cs, targets)
        if problems:
            baseline.discard()
            raise self._reject(cs, problems)
        self._gate(cs, targets)

    def _gate(self, cs: ChangeSet, targets: Targets) -> None:
        """A target locked by a runbook execution takes no new run (the one gate decides)."""
        from console.runbook import gate

        for display in sorted({targets.for_step(cs, s).display_url for s in cs.steps}):
            gate.check(
                self.settings,
                gate.GateRequest("apply", "", self.journal.actor, target=display),
                self.journal,
            )

    def _identity(self, cs: ChangeSet) -> RunReport | None:
        """Same name+version: no-op when the digest matches and it completed; else refuse."""
        previous = [
            r
            for r in self.queries.runs_for_changeset(cs.name, cs.version)
            if not r.dry_run and r.drill == self.drill
        ]
        for r in previous:
            if r.digest != cs.digest:
                raise self._reject(
                    cs,
                    [
                        Problem(
                            cs.source,
                            None,
                            "version",
                            f"{cs.name} v{cs.version} was applied before with different content "
                            f"(run {r.id}); give the change set a new version",
                        )
                    ],
                )
        live = [r for r in previous if r.status in RESUMABLE]
        if live:
            r = live[-1]
            raise BadInput(
                f"{cs.name} v{cs.version} already has run {r.id} ({r.status}); continue it "
                f"with `backout resume {r.id}` or roll it back first."
            )
        done = [r for r in previous if r.status == "completed"]
        if done:
            r = done[-1]
            self.journal.append(
                "changeset.duplicate",
                {
                    "changeset": cs.name,
                    "version": cs.version,
                    "digest": cs.digest,
                    "previous_run": r.id,
                },
            )
            return RunReport(
                run_id=r.id,
                status="completed",
                exit_code=Exit.DONE,
                total=r.rows_total,
                applied=r.rows_applied,
                message=f"{cs.name} v{cs.version} was already applied by run {r.id} with the "
                "same content; nothing to do.",
                extra={"duplicate": True},
            )
        return None

    # --- apply ----------------------------------------------------------------------

    @gc_paused()
    def apply(
        self,
        cs: ChangeSet,
        *,
        target: str | None = None,
        dry_run: bool = False,
        segment_size: int | None = None,
        source_args: dict[str, Any] | None = None,
        kind: str = "apply",
        parent_run: str | None = None,
        reapply_scope: dict[str, Any] | None = None,
        workers: int = 1,
    ) -> RunReport:
        targets = Targets(self.settings, target)
        run_id = new_id()
        baseline = Baseline(self.journal, cs, targets, run_id, check=True, holder=self.holder)
        try:
            if workers > 1:
                opened = [targets.for_step(cs, s) for s in cs.steps]
                check_workers(workers, {t.display_url: t.dialect for t in opened})
            try:
                # Identity first: a change set applied before is a no-op, even though its
                # inserts now "exist" (validation would refuse them).
                duplicate = self._identity(cs) if not dry_run and kind == "apply" else None
                if duplicate is None:
                    self._validate(cs, targets, baseline)
            except BaseException:
                with contextlib.suppress(Exception):
                    baseline.discard()
                raise
            if duplicate is not None:
                baseline.discard()
                return duplicate
            size = segment_size or cs.options.segment_size
            corr = new_id()
            steps = [
                {
                    "step_no": n,
                    "name": s.name,
                    "table": s.table,
                    "key": list(s.key),
                    "operations": s.count,
                    "target": targets.get(targets.ref(cs, s)).display_url,
                    # What rollback reconnects with: a name from backout.toml or a URL
                    # (a password is never journaled; pass --target then).
                    "target_ref": mask_url(targets.ref(cs, s)),
                }
                for n, s in enumerate(cs.steps, start=1)
            ]
            first_target = targets.for_step(cs, cs.steps[0]) if cs.steps else None
            with self.journal.write() as w:
                lease.acquire(w.conn, self.journal, run_id, self.holder)
                w.append(
                    "run.created",
                    {
                        "kind": kind,
                        "parent_run": parent_run,
                        "changeset": cs.name,
                        "version": cs.version,
                        "digest": cs.digest,
                        "automation": cs.automation,
                        "description": cs.description,
                        "target": first_target.display_url if first_target else "",
                        "target_override": target,
                        "drill": self.drill,
                        "dry_run": dry_run,
                        "rows_total": cs.rows,
                        "options": {
                            "segment_size": size,
                            "on_error": cs.options.on_error,
                            "max_failed_ratio": cs.options.max_failed_ratio,
                            "on_existing_insert": cs.options.on_existing_insert,
                            "workers": workers,
                        },
                        "touchpoints": cs.touchpoints.as_dict(),
                        "source_file": str(Path(cs.source).resolve()) if cs.source else None,
                        "source_args": source_args or {},
                        "reapply_scope": reapply_scope,
                        "steps": steps,
                    },
                    run_id=run_id,
                    corr=corr,
                )
                for taken in baseline.taken:
                    w.append("snapshot.taken", taken, run_id=run_id, corr=corr)
            with self.journal.write() as w:
                lease.renew(w.reader, self.journal, run_id, self.holder)
                w.append(
                    "run.started",
                    {"pid": os.getpid(), "host": socket.gethostname()},
                    run_id=run_id,
                    corr=corr,
                )
            coerced, baseline.kept = baseline.kept, None
            return self._execute(
                cs,
                targets,
                run_id,
                corr,
                size,
                dry_run,
                after_seg=0,
                workers=workers,
                coerced=coerced,
            )
        finally:
            targets.close()

    def _baseline(self, cs: ChangeSet, targets: Targets, run_id: str, corr: str) -> None:
        """Every key in scope as it is now (absent keys too), and per-table aggregates."""
        baseline = Baseline(self.journal, cs, targets, run_id, check=False)
        for index, step in enumerate(cs.steps):
            for op in coerced_operations(step, targets.table(cs, step)):
                baseline(index, op)
            baseline(index, None)
        with self.journal.write() as w:
            lease.renew(w.reader, self.journal, run_id, self.holder)
            for taken in baseline.taken:
                w.append("snapshot.taken", taken, run_id=run_id, corr=corr)

    # --- the segment loop -----------------------------------------------------------

    def _build(
        self,
        cs: ChangeSet,
        seg: PlannedSegment,
        run_id: str,
        corr: str,
        info: TableInfo,
        conn: Any = None,
    ) -> SegmentPlan:
        """The segment's journal operations, before-images from the baseline snapshot (read
        in ``conn``: the transaction that journals the intent)."""
        step = seg.step
        texts = [key_text(step.key, p.key) for p in seg.ops]
        baseline = self.queries.baseline_rows(run_id, step.table, texts, conn=conn)
        plan = SegmentPlan(run_id, corr, seg.seg_no, seg.step_no, step.table, step.key, [])
        on_existing = cs.options.on_existing_insert
        for p, kt in zip(seg.ops, texts, strict=True):
            text = baseline.get(kt)
            before = None if text is None else Encoded(loads(text), text)
            op, pre = build_op(p, before, step.key, on_existing)
            if pre is None:
                plan.ops.append(op)
            else:
                plan.prechecks.append(Precheck(op, pre[0], pre[1]))
        return plan

    def _execute(
        self,
        cs: ChangeSet,
        targets: Targets,
        run_id: str,
        corr: str,
        size: int,
        dry_run: bool,
        *,
        after_seg: int,
        start_counts: tuple[int, int, int, int] = (0, 0, 0, 0),
        workers: int = 1,
        coerced: dict[int, list[Operation]] | None = None,
    ) -> RunReport:
        started = time.monotonic()
        tally = Tally(*start_counts)
        steps = list(cs.steps)
        infos = {n: targets.table(cs, s) for n, s in enumerate(steps, start=1)}
        watch = Watch()  # what others append between our transactions (a pause request)

        def make_runner(ref: str, own_connection: bool) -> SegmentRunner:
            target = open_target(ref, self.settings) if own_connection else targets.get(ref)
            return SegmentRunner(self.journal, target, self.holder, dry_run=dry_run, watch=watch)

        lanes = self._lanes = Lanes(workers, make_runner)
        # Intents are journaled here, in segment order, whichever lane writes the segment.
        journalers: dict[str, SegmentRunner] = {}
        stop: Stop | None = None
        try:
            for seg in plan_segments(cs, targets.lookup(cs), size, coerced):
                if seg.seg_no <= after_seg:
                    continue
                step = steps[seg.step_no - 1]
                ref = targets.ref(cs, step)
                keys: KeySet = (
                    frozenset((ref, step.table, key_text(step.key, p.key)) for p in seg.ops)
                    if lanes.parallel
                    else frozenset()
                )
                for done in lanes.make_room(seg.step_no, keys):
                    stop = self._after_segment(cs, targets, done, tally, dry_run)
                    if stop:
                        break
                if stop:
                    break
                # One journal transaction: the outcomes collected since the last one, the
                # pause check (``Watch.pause_requested``), this segment's baseline rows and
                # its intent.
                plan = None
                with self.journal.write() as w:
                    watch.begin(w)
                    self._write_pending(w)
                    paused = watch.pause_requested(w, self.queries, run_id)
                    if paused is None:
                        plan = self._build(cs, seg, run_id, corr, infos[seg.step_no], w.reader)
                        if dry_run:
                            plan.probes = tuple(inv.sql for inv in step.invariants)
                        if ref not in journalers:
                            journalers[ref] = make_runner(ref, False)
                        journalers[ref].write_intent(w, plan)
                watch.end(w)
                if paused or plan is None:
                    stop = Stop(f"paused by {paused}")
                    break
                lanes.submit(ref, seg, plan, keys)
            if stop is None:
                for done in lanes.drain():
                    stop = self._after_segment(cs, targets, done, tally, dry_run)
                    if stop:
                        break
            if stop is not None:
                lanes.settle()  # what is still in flight is journaled with the pause
                return self._stop(cs, targets, run_id, corr, stop, started, tally, dry_run)
            elapsed = time.monotonic() - started
            with self.journal.write() as w:
                self._write_pending(w)
                w.append(
                    "run.completed",
                    {
                        "applied": tally.applied,
                        "failed": tally.failed,
                        "conflicts": tally.conflicts,
                        "skipped": tally.skipped,
                        "elapsed_s": round(elapsed, 3),
                        "rows_per_s": round(tally.applied / elapsed, 1) if elapsed else 0.0,
                    },
                    run_id=run_id,
                    corr=corr,
                )
                lease.release(w.conn, run_id, self.holder)
            return self._report(
                run_id, "completed", None, started, tally.counts, dry_run, Exit.DONE
            )
        except TransientError as exc:
            lanes.settle()
            return self._pause(
                cs, run_id, corr, f"target unavailable: {exc}", started, tally.counts, dry_run
            )
        except KeyboardInterrupt:
            lanes.settle()
            self._pause(cs, run_id, corr, "interrupted", started, tally.counts, dry_run)
            raise
        except lease.LeaseLost:
            lanes.settle()  # the new holder resolves what this one left in doubt
            raise
        except BaseException:
            lanes.settle()
            # Keep what was applied out of doubt, if the journal still takes it.
            with contextlib.suppress(Exception), self.journal.write() as w:
                self._write_pending(w)
            raise
        finally:
            lanes.close()

    def _after_segment(
        self, cs: ChangeSet, targets: Targets, done: InFlight, tally: Tally, dry_run: bool
    ) -> Stop | None:
        """Count a collected segment, then decide whether the run goes on: ``on_error``,
        the circuit breaker, the step's invariants."""
        seg, plan, result = done.seg, done.plan, done.future.result()
        step = cs.steps[seg.step_no - 1]
        pre = {"op.failed": 0, "op.conflict": 0, "op.skipped": 0}
        for p in plan.prechecks:
            pre[p.kind] += 1
        tally.applied += len(result.applied)
        tally.failed += len(result.failed) + pre["op.failed"]
        tally.conflicts += len(result.conflicts) + pre["op.conflict"]
        tally.skipped += pre["op.skipped"]
        tally.done += len(seg.ops)
        if self.progress:
            self.progress(tally.done, cs.rows)
        bad_now = len(result.failed) + len(result.conflicts) + pre["op.failed"]
        bad_now += pre["op.conflict"]
        on_error = step.on_error or cs.options.on_error
        where: dict[str, Any] = {"seg_no": seg.seg_no, "step_no": seg.step_no, "step": step.name}
        cause: dict[str, Any]
        if bad_now and on_error != "continue":
            if result.error:
                reason = f"segment {seg.seg_no} failed: {result.error}"
                cause = {"cause": "segment.failed", "error": result.error}
            else:
                reason = f"segment {seg.seg_no}: {bad_now} row(s) failed or conflicted"
                cause = {"cause": "rows", "failed": tally.failed, "conflicts": tally.conflicts}
            return Stop(reason, on_error, {**where, **cause})
        if on_error == "continue":
            # ``continue`` goes past bad rows; the breaker is what stops it, by pausing.
            tripped = breaker(
                tally.done - tally.skipped,
                tally.failed + tally.conflicts,
                cs.options.max_failed_ratio,
            )
            if tripped:
                return Stop(tripped)
        if step.invariants:
            invariants = list(step.invariants)
            trip = (
                judge_probed(invariants, result.probed, seg.seg_no)
                if dry_run  # each dry-run segment is rolled back: judged inside it, before
                else check_invariants(targets.for_step(cs, step), invariants, seg.seg_no)
            )
            if trip:
                return Stop(
                    trip.reason,
                    on_error,
                    {**where, "cause": "guard.tripped", "invariant": trip.payload["invariant"]},
                    ("guard.tripped", {"reason": trip.reason, **trip.payload}),
                )
        return None

    def _stop(
        self,
        cs: ChangeSet,
        targets: Targets,
        run_id: str,
        corr: str,
        stop: Stop,
        started: float,
        tally: Tally,
        dry_run: bool,
    ) -> RunReport:
        """Pause the run; with ``on_error: rollback`` then roll back what it applied."""
        paused = self._pause(
            cs, run_id, corr, stop.reason, started, tally.counts, dry_run, event=stop.event
        )
        if stop.on_error != "rollback" or dry_run:
            return paused
        from console.engine.on_error import roll_back

        return roll_back(
            self.journal,
            self.settings,
            paused,
            stop.trigger,
            target=targets.override,
            progress=self.progress,
        )

    def _write_pending(self, w: Writer) -> None:
        for runner in self._lanes.idle_runners():
            if runner.pending:
                runner.write_pending(w)

    def _pause(
        self,
        cs: ChangeSet,
        run_id: str,
        corr: str,
        reason: str,
        started: float,
        counts: tuple[int, int, int, int],
        dry_run: bool,
        *,
        event: tuple[str, dict[str, Any]] | None = None,
    ) -> RunReport:
        """Journal the pause (``event``: the event that pauses, e.g. ``guard.tripped``;
        else ``run.paused``) with every pending outcome, and release the lease."""
        kind, payload = event or ("run.paused", {"reason": reason, "by": self.journal.actor})
        with self.journal.write() as w:
            self._write_pending(w)
            w.append(kind, payload, run_id=run_id, corr=corr)
            lease.release(w.conn, run_id, self.holder)
        return self._report(run_id, "paused", reason, started, counts, dry_run, Exit.FAILED)

    def _report(
        self,
        run_id: str,
        status: str,
        reason: str | None,
        started: float,
        counts: tuple[int, int, int, int],
        dry_run: bool,
        code: Exit,
    ) -> RunReport:
        run = self.journal.get_run(run_id)
        if status == "completed":
            message = (
                f"run {run_id} {'dry run ' if dry_run else ''}completed: "
                f"{run.rows_applied} of {run.rows_total} rows "
                f"{'would be applied' if dry_run else 'applied'}"
            )
        else:
            message = f"run {run_id} paused: {reason}; `backout resume {run_id}` continues it"
        if run.rows_conflict or run.rows_failed:
            message += f" ({run.rows_failed} failed, {run.rows_conflict} conflicts)"
        return RunReport.of_run(
            run,
            run_id=run_id,
            status=status,
            message=message,
            exit_code=code,
            dry_run=dry_run,
            started=started,
            reason=reason,
        )

    # --- resume and pause -----------------------------------------------------------

    @gc_paused()
    def resume(self, run_ref: str, *, changeset_path: str | None = None) -> RunReport:
        run = self.journal.get_run(run_ref)
        if run.kind not in ("apply", "reapply"):
            raise BadInput(f"run {run.id} is a {run.kind}; resume it with its own command.")
        if run.status not in RESUMABLE:
            return RunReport.nothing_to_resume(run)
        created = self.journal.events(run.id, kinds=["run.created"], limit=1)[0].payload
        cs = self.reload(run, created, changeset_path)
        targets = Targets(self.settings, created.get("target_override"))
        try:
            with self.journal.write() as w:
                lease.acquire(w.conn, self.journal, run.id, self.holder)
                segments = self.journal.segments(run.id)
                doubt = [s.seg_no for s in segments if s.status in IN_DOUBT]
                w.append(
                    "run.resumed",
                    {"by": self.journal.actor, "in_doubt": doubt},
                    run_id=run.id,
                    corr=run.corr,
                )
            if not segments:
                # Killed before the first write: the baseline may be partial, so capture it
                # again (nothing was written, so the target still is the baseline).
                self.queries.drop_snapshot(run.id, "baseline")
                self._baseline(cs, targets, run.id, run.corr)
            dry = run.dry_run
            started = time.monotonic()
            for seg in segments:
                if seg.status not in IN_DOUBT:
                    continue
                result = self._finish_in_doubt(cs, targets, run, seg, dry)
                step = cs.steps[seg.step_no - 1]
                on_error = step.on_error or cs.options.on_error
                if (result.error or result.conflicts) and on_error != "continue":
                    now = self.journal.get_run(run.id)
                    where: dict[str, Any] = {
                        "seg_no": seg.seg_no,
                        "step_no": seg.step_no,
                        "step": step.name,
                    }
                    cause: dict[str, Any]
                    if result.error:
                        reason = f"segment {seg.seg_no} failed again: {result.error}"
                        cause = {"cause": "segment.failed", "error": result.error}
                    else:
                        reason = (
                            f"segment {seg.seg_no}: {len(result.conflicts)} row(s) changed by "
                            "someone else while the run was interrupted"
                        )
                        cause = {"cause": "rows", "conflicts": len(result.conflicts)}
                    counts = Tally(
                        now.rows_applied, now.rows_failed, now.rows_conflict, now.rows_skipped
                    )
                    stop = Stop(reason, on_error, {**where, **cause})
                    return self._stop(cs, targets, run.id, run.corr, stop, started, counts, dry)
            run = self.journal.get_run(run.id)
            after = max((s.seg_no for s in self.journal.segments(run.id)), default=0)
            size = int(created.get("options", {}).get("segment_size", cs.options.segment_size))
            return self._execute(
                cs,
                targets,
                run.id,
                run.corr,
                size,
                dry,
                after_seg=after,
                start_counts=(
                    run.rows_applied,
                    run.rows_failed,
                    run.rows_conflict,
                    run.rows_skipped,
                ),
                workers=int(created.get("options", {}).get("workers", 1)),
            )
        finally:
            targets.close()

    def _finish_in_doubt(
        self, cs: ChangeSet, targets: Targets, run: Run, seg: Segment, dry_run: bool
    ) -> SegmentResult:
        step = cs.steps[seg.step_no - 1]
        plan = in_doubt_plan(
            self.journal, self.queries, run, seg, step.table, step.key, retry=segment_failure
        )
        runner = SegmentRunner(
            self.journal, targets.for_step(cs, step), self.holder, dry_run=dry_run
        )
        return runner.execute(plan, in_doubt=True)

    def reload(self, run: Run, created: dict[str, Any], path: str | None) -> ChangeSet:
        """The run's change set from its file, checked against the journaled digest (and
        limited to the reapply scope for a reapply run)."""
        source = path or created.get("source_file")
        if not source or not Path(source).exists():
            raise BadInput(
                f"run {run.id}: its change set file {source or '(unknown)'} is gone; pass it "
                f"with `backout resume {run.id} --changeset FILE`."
            )
        args = created.get("source_args") or {}
        cs = load_changeset(source, **args)
        if cs.digest != run.digest:
            raise BadInput(
                f"{source}: the change set changed since run {run.id} started (digest "
                f"{cs.digest[:12]} ≠ {run.digest[:12]}); restore the original file to resume."
            )
        scope = created.get("reapply_scope")
        if scope:
            from console.engine.reapply import filter_changeset

            cs = filter_changeset(cs, scope.get("steps", []), scope.get("keys", []))
        return cs

    def request_pause(self, run_ref: str) -> RunReport:
        run = self.journal.get_run(run_ref)
        if run.status not in PAUSABLE:
            return RunReport(
                run.id,
                run.status,
                f"run {run.id} is {run.status}, not running; nothing to pause.",
                Exit.DONE,
            )
        self.journal.append(
            "run.pause_requested", {"by": self.journal.actor}, run_id=run.id, corr=run.corr
        )
        return RunReport(
            run.id,
            run.status,
            f"pause requested for run {run.id}; it stops at the next segment boundary.",
            Exit.DONE,
        )


def _invariant_problems(cs: ChangeSet, targets: Targets) -> list[Problem]:
    """Each invariant run once before anything is written: one that cannot run (a typo, a
    write, a table that is not there) would otherwise pause the run after its first segment."""
    found = []
    for i, step in enumerate(cs.steps):
        for n, inv in enumerate(step.invariants):
            try:
                targets.for_step(cs, step).scalar(inv.sql)
            except BadInput as exc:
                found.append(
                    Problem(
                        cs.source,
                        step.line,
                        f"steps[{i}].invariants[{n}].sql",
                        f"invariant '{inv.name}' cannot run: {exc.message}",
                    )
                )
    return found


@dataclass
class Tally:
    """A run's row counters as segments are collected."""

    applied: int = 0
    failed: int = 0
    conflicts: int = 0
    skipped: int = 0
    done: int = -1  # rows processed (journaled outcome or precheck); -1: from the counters

    def __post_init__(self) -> None:
        if self.done < 0:
            self.done = self.applied + self.failed + self.conflicts + self.skipped

    @property
    def counts(self) -> tuple[int, int, int, int]:
        return (self.applied, self.failed, self.conflicts, self.skipped)


@dataclass(frozen=True)
class Stop:
    """Why a run stops before its end. ``on_error`` and ``trigger`` (which step, segment and
    error) decide whether it is rolled back; ``event`` is the event that pauses it."""

    reason: str
    on_error: str = "pause"
    trigger: dict[str, Any] = field(default_factory=dict)
    event: tuple[str, dict[str, Any]] | None = None


def _no_runner(ref: str, own_connection: bool) -> SegmentRunner:
    raise AssertionError("no run is executing")


def build_op(
    p: PlannedOp, before: Row | None, key_columns: tuple[str, ...], on_existing: str
) -> tuple[JournalOp, tuple[str, dict[str, Any]] | None]:
    """The journaled operation for a planned row, given the row's baseline.

    Returns the op and, when it must not be written, (event kind, detail).
    """
    plain = p.key if tuple(p.key) == key_columns else {c: p.key[c] for c in key_columns}
    key = Encoded(plain, p.key_json if p.key_json is not None else key_json(plain))
    values = p.values
    if before is not None and type(before) is not Encoded:
        before = _encoded(before)

    def op(kind: Any, after: Row | None, inverse: Encoded) -> JournalOp:
        return JournalOp(p.op_no, p.table, kind, key, before, after, inverse, p.idem)

    if p.op == "update" and before is not None:  # the common case first
        changed = {c: before.get(c) for c in values}
        return op(
            "update",
            _encoded({**before, **values}),
            Encoded({"op": "update", "set": changed}, _UPDATE_INVERSE % canonical_json(changed)),
        ), None

    kind = p.op
    if kind == "upsert":
        kind = "insert" if before is None else "update"
        if kind == "update":
            values = {c: v for c, v in values.items() if c not in key_columns}
    if kind == "update":
        if before is None:
            return op("update", None, _NO_INVERSE), (
                "op.failed",
                {"error": f"no row with key {key.text} to update"},
            )
        changed = {c: before.get(c) for c in values}
        return op(
            "update",
            _encoded({**before, **values}),
            Encoded({"op": "update", "set": changed}, _UPDATE_INVERSE % canonical_json(changed)),
        ), None
    if kind == "insert":
        row = _encoded({**plain, **values})
        if before is not None:
            detail = {"table": p.table, "key": key, "before": before, "ours": row, "now": before}
            return op("insert", row, _DELETE_INVERSE), ("op.conflict", detail)
        return op("insert", row, _DELETE_INVERSE), None
    if before is None:
        return op("delete", None, _NO_INVERSE), (
            "op.skipped",
            {"reason": f"no row with key {key.text}; already absent"},
        )
    assert type(before) is Encoded
    inverse = Encoded({"op": "insert", "row": before}, _INSERT_INVERSE % before.text)
    return op("delete", None, inverse), None


# Inverses as canonical JSON (keys sorted: "op" < "row" < "set").
_NO_INVERSE = Encoded({"op": "none"}, '{"op":"none"}')
_DELETE_INVERSE = Encoded({"op": "delete"}, '{"op":"delete"}')
_UPDATE_INVERSE = '{"op":"update","set":%s}'
_INSERT_INVERSE = '{"op":"insert","row":%s}'


def _chunks(items: Any, size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk
