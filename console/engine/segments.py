"""The write-ahead protocol for one segment, shared by apply, resume and rollback.

(1) journal ``segment.intent`` with every row's before, after, inverse and idempotency key,
committed; (2) one target transaction that re-reads the rows under lock and writes only rows
still equal to ``before``; (3) journal the outcome. A transient error or a crash leaves the
segment in doubt; it is resolved by reading the target: row equals ``after`` → applied,
equals ``before`` → not applied (write it), anything else → conflict. So nothing is lost and
nothing is applied twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from json.encoder import encode_basestring
from typing import Any

from console.canonical import canonical_json, loads
from console.engine import lease
from console.engine.lease import Holder
from console.journal import Journal, Writer
from console.journal.models import OperationRow, Run, Segment
from console.journal.projections import Encoded
from console.journal.store import EngineQueries
from console.targets.sql import SqlTarget
from console.targets.types import OpKind, Row, RowWrite, SegmentError, TableInfo, TransientError
from console.targets.values import key_tuple, same

MAX_ATTEMPTS = 6


def owned(image: Row | None, columns: Sequence[str]) -> Row | None:
    """What of ``image`` an update answers for: the ``columns`` it sets (its set columns), not
    the rest of the row, which the database may change on its own (a trigger's updated_at, a
    generated column, MariaDB's ON UPDATE) and the inverse leaves alone. The whole image when
    ``columns`` is empty (inserts, deletes)."""
    if image is None or not columns:
        return image
    return {c: image[c] for c in columns if c in image}


@dataclass(frozen=True)
class JournalOp:
    """One row of a segment, as journaled. ``before`` is what the row must be now; ``after``
    what it will be (for an update, the whole row afterwards)."""

    op_no: int
    table: str
    op: OpKind
    key: Row
    before: Row | None
    after: Row | None
    inverse: Mapping[str, Any]
    idem: str
    parent_op: int | None = None  # rollback: the operation of the parent run it reverses

    @property
    def set_columns(self) -> tuple[str, ...]:
        """For an update, the columns written (the inverse restores exactly these)."""
        return tuple(self.inverse.get("set", {})) if self.op == "update" else ()

    def intent(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "op_no": self.op_no,
            "table": self.table,
            "op": self.op,
            "key": self.key,
            "before": self.before,
            "after": self.after,
            "inverse": self.inverse if type(self.inverse) is Encoded else dict(self.inverse),
            "idem": self.idem,
        }
        if self.parent_op is not None:
            entry["parent_op"] = self.parent_op
        return entry

    def row_write(self) -> RowWrite:
        compare: tuple[str, ...] | None = None
        if self.op == "update":
            assert self.after is not None
            write: Row | None = {c: self.after[c] for c in self.set_columns}
            if self.parent_op is not None:
                # A rollback's update restores the columns the run set, so those are what must
                # still be as the run left them; an apply checks its whole baseline.
                compare = self.set_columns
        else:
            write = self.after
        return RowWrite(self.op_no, self.op, dict(self.key), self.before, write, compare)

    @classmethod
    def from_operation(cls, op: OperationRow, parent_op: int | None = None) -> JournalOp:
        return cls(
            op_no=op.op_no,
            table=op.tbl,
            op=op.op,  # type: ignore[arg-type]
            key=loads(op.key),
            before=loads(op.before),
            after=loads(op.after),
            inverse=loads(op.inverse),
            idem=op.idem_key,
            parent_op=parent_op,
        )


_IMAGES = ("key", "before", "after", "inverse")


def image_text(value: Any) -> str:
    """Canonical JSON of an image, from its stored text if it carries one (``Encoded``)."""
    return value.text if type(value) is Encoded else canonical_json(value)


def _entry_text(entry: Mapping[str, Any]) -> str | None:
    """Canonical JSON of one ``JournalOp.intent()`` entry, put together from its parts (keys
    in sorted order; images encoded once, see ``Encoded``); None if a scalar is not of the
    type this spelling assumes."""
    op_no, parent, idem, kind, table = (
        entry["op_no"],
        entry.get("parent_op"),
        entry["idem"],
        entry["op"],
        entry["table"],
    )
    if (
        type(op_no) is not int
        or (parent is not None and type(parent) is not int)
        or type(idem) is not str
        or type(kind) is not str
        or type(table) is not str
    ):
        return None
    before, after = entry["before"], entry["after"]
    return "".join(
        [
            '{"after":',
            "null" if after is None else image_text(after),
            ',"before":',
            "null" if before is None else image_text(before),
            ',"idem":',
            encode_basestring(idem),
            ',"inverse":',
            image_text(entry["inverse"]),
            ',"key":',
            image_text(entry["key"]),
            ',"op":',
            encode_basestring(kind),
            ',"op_no":',
            str(op_no),
            "" if parent is None else f',"parent_op":{parent}',
            ',"table":',
            encode_basestring(table),
            "}",
        ]
    )


def _native(value: Any) -> bool:
    """Is ``value`` exactly what ``json.loads`` of its canonical JSON would give back?"""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return True
    if t is float:
        return math.isfinite(value)
    if t is list:
        return all(_native(v) for v in value)
    if t is dict:
        return all(type(k) is str and _native(v) for k, v in value.items())
    return False


class Watch:
    """Notices journal events that another writer appended between our own transactions
    (a pause request, say): ``seen`` is the head after our last commit.

    It leaves the chain head alone (``Writer.peek_seq``), so that on a shared PostgreSQL
    journal a segment's transaction takes the head only to chain its events: another
    writer's events may then land between the look and our own, which ``end`` notices from
    where our events were chained (``Writer.base_seq``)."""

    def __init__(self) -> None:
        self.seen: int | None = None
        self.foreign = True  # another writer appended since the flag was last cleared
        self._peeked: int | None = None

    def begin(self, w: Writer) -> None:
        self._peeked = w.peek_seq()
        if self._peeked != self.seen:
            self.foreign = True

    def pause_requested(self, w: Writer, queries: EngineQueries, run_id: str) -> str | None:
        """Who asked the run to pause, looked for (in ``w``, without the head) only if another
        writer appended since our last transaction: else there can be no request we have not
        seen. Call between ``begin`` and ``end``."""
        if not self.foreign:
            return None
        self.foreign = False
        return queries.pause_requested(run_id, w.reader)

    def end(self, w: Writer) -> None:
        """After the commit."""
        if w.base_seq is None:  # nothing chained: the head as we saw it
            self.seen = self._peeked
            return
        if w.base_seq != self._peeked:  # someone chained between our look and our events
            self.foreign = True
        self.seen = w.seq  # the head after our commit


@dataclass(frozen=True)
class Precheck:
    """An operation decided before any write (e.g. update of a row that does not exist)."""

    op: JournalOp  # journaled with the intent, never written
    kind: str  # op.failed | op.skipped | op.conflict
    detail: Mapping[str, Any]


@dataclass
class SegmentPlan:
    run_id: str
    corr: str
    seg_no: int
    step_no: int
    table: str
    key_columns: tuple[str, ...]
    ops: list[JournalOp]
    prechecks: list[Precheck] = field(default_factory=list)
    # Extra payload for the outcome event (rollback: parent_run, counter, op_status).
    outcome_extra: Mapping[str, Any] = field(default_factory=dict)
    # A dry run's invariants, run in the segment's transaction before it is rolled back.
    probes: tuple[str, ...] = ()

    def intent_payload(self) -> dict[str, Any]:
        return self.intent_event()[0]

    def intent_event(self) -> tuple[dict[str, Any], str | None]:
        """The ``segment.intent`` payload and, when it can be put together from its parts,
        its canonical JSON (else None: the journal encodes it)."""
        every = sorted([*self.ops, *(p.op for p in self.prechecks)], key=lambda o: o.op_no)
        ops = [o.intent() for o in every]
        for entry in ops:  # images not encoded yet (rollback's): encode each once, here
            for name in _IMAGES:
                value = entry[name]
                if type(value) is dict:
                    entry[name] = Encoded(value, canonical_json(value))
        payload = {"seg_no": self.seg_no, "step_no": self.step_no, "ops": ops}
        if type(self.seg_no) is not int or type(self.step_no) is not int:
            return payload, None
        texts: list[str] = []
        for o in ops:
            t = _entry_text(o)
            if t is None:
                return payload, None
            texts.append(t)
        parts = ",".join(texts)
        return payload, f'{{"ops":[{parts}],"seg_no":{self.seg_no},"step_no":{self.step_no}}}'


@dataclass
class SegmentResult:
    seg_no: int
    applied: list[int] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    error: str | None = None
    attempts: int = 1
    probed: list[Any] = field(default_factory=list)  # a dry run's ``SegmentPlan.probes``

    @property
    def processed(self) -> int:
        return len(self.applied) + len(self.conflicts) + len(self.failed) + len(self.skipped)


IN_DOUBT = ("intent", "failed")  # segment statuses a resume resolves from the target


def in_doubt_plan(
    journal: Journal,
    queries: EngineQueries,
    run: Run,
    seg: Segment,
    table: str,
    key_columns: tuple[str, ...],
    *,
    retry: Callable[[OperationRow], bool],
    outcome_extra: Mapping[str, Any] | None = None,
) -> SegmentPlan:
    """A segment left in doubt (an intent with no outcome after a crash, or failed as a whole)
    as the plan of its pending operations, for ``SegmentRunner.execute(plan, in_doubt=True)``.
    A failed segment's failed operations that ``retry`` accepts are journaled pending again
    first (``segment.retry``), so the resolution is in the journal before any write."""
    ops = queries.operations_in(run.id, seg.first_op, seg.last_op)
    if seg.status == "failed":
        again = [o.op_no for o in ops if o.status == "failed" and retry(o)]
        journal.append(
            "segment.retry", {"seg_no": seg.seg_no, "ops": again}, run_id=run.id, corr=run.corr
        )
        ops = queries.operations_in(run.id, seg.first_op, seg.last_op)
    pending = [JournalOp.from_operation(o, o.parent_op) for o in ops if o.status == "pending"]
    return SegmentPlan(
        run.id,
        run.corr,
        seg.seg_no,
        seg.step_no,
        table,
        key_columns,
        pending,
        outcome_extra=dict(outcome_extra or {}),
    )


def segment_failure(op: OperationRow) -> bool:
    """Did ``op`` fail with its whole segment (retried on resume), not on its own (a row the
    target refused: final)?"""
    return bool(op.detail and loads(op.detail).get("segment"))


def matches(info: TableInfo, row: Row | None, image: Row | None) -> bool:
    """Does the row equal the image on the image's columns (NULL-safe, by meaning)?"""
    if image is None or row is None:
        return image is None and row is None
    cols = info.columns
    for c, v in image.items():
        if c not in row:
            return False
        now = row[c]
        # Equal text or integers mean the same in every column kind: skip normalising.
        t = type(v)
        if (t is str or t is int) and type(now) is t and now == v:
            continue
        if not same(cols.get(c), now, v):
            return False
    return True


class SegmentRunner:
    """Executes segments of one run on one target through the write-ahead protocol."""

    def __init__(
        self,
        journal: Journal,
        target: SqlTarget,
        holder: Holder,
        *,
        dry_run: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        watch: Watch | None = None,
    ) -> None:
        self.journal = journal
        self.target = target
        self.holder = holder
        self.dry_run = dry_run
        self.sleep = sleep
        self.watch = watch or Watch()
        # Deferred journal writes (outcomes, failures; see ``write_pending``): a runner used
        # with ``defer`` never touches the journal itself, so it may run in a worker thread.
        self.pending: list[Callable[[Writer], None]] = []

    # --- journal writes -------------------------------------------------------------

    def _renew(self, w: Writer, run_id: str) -> None:
        lease.renew(w.reader, self.journal, run_id, self.holder)

    def journal_intent(self, plan: SegmentPlan) -> None:
        with self.journal.write() as w:
            self.watch.begin(w)
            self.write_intent(w, plan)
        self.watch.end(w)

    def write_intent(self, w: Writer, plan: SegmentPlan) -> None:
        """Step (1) inside the caller's journal transaction (it commits it)."""
        self._renew(w, plan.run_id)
        payload, text = plan.intent_event()
        w.append("segment.intent", payload, run_id=plan.run_id, corr=plan.corr, text=text)
        for pre in plan.prechecks:
            w.append(
                pre.kind,
                {"op_no": pre.op.op_no, "detail": dict(pre.detail)},
                run_id=plan.run_id,
                corr=plan.corr,
            )

    def _journal_outcome(
        self,
        plan: SegmentPlan,
        result: SegmentResult,
        conflicts: Sequence[tuple[JournalOp, Row | None]],
        started: float,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        with self.journal.write() as w:
            self.watch.begin(w)
            self.write_pending(w)
            self._write_outcome(w, plan, result, conflicts, duration_ms, extra)
        self.watch.end(w)

    def write_pending(self, w: Writer) -> None:
        """Journal the deferred outcomes (``execute(defer=True)``) in the caller's transaction:
        the engine folds a segment's outcome into the next segment's intent transaction."""
        pending, self.pending = self.pending, []
        for write in pending:
            write(w)

    def _write_outcome(
        self,
        w: Writer,
        plan: SegmentPlan,
        result: SegmentResult,
        conflicts: Sequence[tuple[JournalOp, Row | None]],
        duration_ms: float,
        extra: Mapping[str, Any] | None,
    ) -> None:
        self._renew(w, plan.run_id)
        for op, now in conflicts:
            w.append(
                "op.conflict",
                {
                    "op_no": op.op_no,
                    "detail": {
                        "table": op.table,
                        "key": op.key,
                        "before": op.before,
                        "ours": op.after,
                        "now": now,
                    },
                },
                run_id=plan.run_id,
                corr=plan.corr,
            )
        payload: dict[str, Any] = {
            "seg_no": plan.seg_no,
            "applied": result.applied,
            "attempt": result.attempts,
            "duration_ms": duration_ms,
        }
        payload.update(plan.outcome_extra)
        payload.update(extra or {})
        if "reverted_ops" in plan.outcome_extra and not self.dry_run:
            applied = set(result.applied)
            payload["reverted_ops"] = [
                o.parent_op for o in plan.ops if o.op_no in applied and o.parent_op
            ]
        kind = "segment.dry_run" if self.dry_run else "segment.applied"
        w.append(kind, payload, run_id=plan.run_id, corr=plan.corr, native=_native(payload))
        checkpoint = {"seg_no": plan.seg_no, "op_no": plan.ops[-1].op_no if plan.ops else 0}
        w.append(
            "checkpoint",
            checkpoint,
            run_id=plan.run_id,
            corr=plan.corr,
            native=_native(checkpoint),
        )

    def _journal_failure(self, plan: SegmentPlan, error: SegmentError, ops: list[int]) -> None:
        with self.journal.write() as w:
            self.watch.begin(w)
            self.write_pending(w)
            self._write_failure(w, plan, error, ops)
        self.watch.end(w)

    def _write_failure(
        self, w: Writer, plan: SegmentPlan, error: SegmentError, ops: list[int]
    ) -> None:
        self._renew(w, plan.run_id)
        w.append(
            "segment.failed",
            {"seg_no": plan.seg_no, "error": error.message, "op_no": error.op_no, "ops": ops},
            run_id=plan.run_id,
            corr=plan.corr,
        )

    # --- execution ------------------------------------------------------------------

    def resolve(
        self, plan: SegmentPlan, ops: Sequence[JournalOp]
    ) -> tuple[list[JournalOp], list[JournalOp], list[tuple[JournalOp, Row | None]]]:
        """Read the target: (already applied, not applied, conflicts with the row found)."""
        info = self.target.table(plan.table)
        rows = self.target.read_rows(plan.table, plan.key_columns, [o.key for o in ops])
        applied: list[JournalOp] = []
        pending: list[JournalOp] = []
        conflicts: list[tuple[JournalOp, Row | None]] = []
        for op in ops:
            now = rows.get(key_tuple(info, plan.key_columns, op.key))
            cols = op.set_columns
            if matches(info, now, owned(op.after, cols)):
                applied.append(op)
            elif matches(info, now, owned(op.before, cols)):
                pending.append(op)  # the write re-checks the whole before-image
            else:
                conflicts.append((op, now))
        return applied, pending, conflicts

    def execute(
        self, plan: SegmentPlan, *, in_doubt: bool = False, defer: bool = False
    ) -> SegmentResult:
        """Write the (already journaled) segment and journal its outcome.

        ``in_doubt``: the intent may have been written to the target already (crash, lost
        connection): resolve by reading the target before writing anything. ``defer``: the
        outcome (or failure) is journaled later by ``write_pending``, in the caller's next
        journal transaction.
        """
        started = time.monotonic()
        result = SegmentResult(plan.seg_no, attempts=0)
        todo = list(plan.ops)
        conflicts: list[tuple[JournalOp, Row | None]] = []
        if in_doubt and not self.dry_run:
            done, todo, found = self.resolve(plan, todo)
            result.applied.extend(o.op_no for o in done)
            conflicts.extend(found)
        by_no = {o.op_no: o for o in todo}
        while todo:
            result.attempts += 1
            try:
                outcomes = self.target.write_segment(
                    plan.table,
                    plan.key_columns,
                    [o.row_write() for o in todo],
                    dry_run=self.dry_run,
                    probes=plan.probes,
                    probed=result.probed,
                )
            except TransientError:
                if result.attempts >= MAX_ATTEMPTS:
                    raise
                self.sleep(min(2.0, 0.05 * 2 ** (result.attempts - 1)))
                if self.dry_run:
                    continue
                # The commit may or may not have happened: find out before writing again.
                done, todo, found = self.resolve(plan, todo)
                result.applied.extend(o.op_no for o in done)
                conflicts.extend(found)
                continue
            except SegmentError as exc:
                failed = [o.op_no for o in todo]
                if defer:
                    self.pending.append(
                        partial(self._write_failure, plan=plan, error=exc, ops=failed)
                    )
                else:
                    self._journal_failure(plan, exc, failed)
                result.failed.extend(failed)
                result.error = exc.message
                return result
            for out in outcomes:
                if out.status == "applied":
                    result.applied.append(out.op_no)
                elif out.status == "conflict":
                    conflicts.append((by_no[out.op_no], out.now))
            break
        result.applied.sort()
        result.conflicts = sorted(op.op_no for op, _ in conflicts)
        extra: dict[str, Any] | None = {"resolved": True} if in_doubt else None
        if self.dry_run:
            extra = {"op_status": "would_apply"}
        if defer:
            # Step (3) later, in the caller's next journal transaction (``write_pending``);
            # if that never commits, the segment is in doubt and resolved from the target.
            ms = round((time.monotonic() - started) * 1000, 1)
            self.pending.append(
                lambda w: self._write_outcome(w, plan, result, conflicts, ms, extra)
            )
        else:
            self._journal_outcome(plan, result, conflicts, started, extra)
        return result
