"""Build real journals for the console's tests and benchmark.

Every event goes through ``Journal.write()`` in the payload shapes of
``console/journal/kinds.py``, so projections, the hash chain and ``verify`` are the real ones.
This stands in for the apply/rollback engine until it lands; the scenarios are what the engine
will produce (one ``segment.intent`` before each target transaction, then its outcome).

Timestamps come from a fixed clock, so snapshots are deterministic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from console.journal import Journal, Writer

T0 = dt.datetime(2026, 11, 27, 1, 0, 0, tzinfo=dt.UTC)
CRM = "sqlite:///srv/crm/crm.db"


class FixedClock:
    """Deterministic time: every reading advances by ``step``; ``at``/``advance`` jump."""

    def __init__(self, start: dt.datetime = T0, step_ms: int = 10) -> None:
        self.now = start
        self.step = dt.timedelta(milliseconds=step_ms)

    def __call__(self) -> dt.datetime:
        moment = self.now
        self.now += self.step
        return moment

    def at(self, moment: dt.datetime) -> None:
        self.now = moment

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def product(i: int, price: Decimal | None = None) -> dict[str, Any]:
    base = Decimal(1000 + (i * 37) % 9000) / 100
    return {
        "sku": f"SKU-{i:06d}",
        "name": f"Product {i}",
        "region": ["EU", "US", "APAC"][i % 3],
        "price": str(price if price is not None else base),
        "stock": None if i % 17 == 0 else (i * 7) % 500,
        "attributes": '{"color":"red","tags":["promo","eu"],"dims":{"w":10,"h":4}}'
        if i % 5 == 0
        else None,
        "updated_at": "2026-11-20T09:00:00",
    }


def price_op(op_no: int, i: int, run_id: str, table: str = "products") -> dict[str, Any]:
    """An update raising one product's price by 5 % (before, after and inverse images)."""
    before = product(i)
    new_price = (Decimal(before["price"]) * Decimal("1.05")).quantize(Decimal("0.01"))
    after = {**before, "price": str(new_price), "updated_at": "2026-11-27T01:00:00"}
    return {
        "op_no": op_no,
        "table": table,
        "op": "update",
        "key": {"sku": before["sku"]},
        "before": before,
        "after": after,
        "inverse": {
            "op": "update",
            "set": {"price": before["price"], "updated_at": before["updated_at"]},
        },
        "idem": hashlib.sha256(f"{run_id}:{op_no}".encode()).hexdigest()[:32],
    }


def insert_op(op_no: int, i: int, run_id: str, table: str = "products") -> dict[str, Any]:
    row = product(i)
    return {
        "op_no": op_no,
        "table": table,
        "op": "insert",
        "key": {"sku": row["sku"]},
        "before": None,
        "after": row,
        "inverse": {"op": "delete"},
        "idem": hashlib.sha256(f"{run_id}:{op_no}".encode()).hexdigest()[:32],
    }


def delete_op(op_no: int, i: int, run_id: str, table: str = "products") -> dict[str, Any]:
    row = product(i)
    return {
        "op_no": op_no,
        "table": table,
        "op": "delete",
        "key": {"sku": row["sku"]},
        "before": row,
        "after": None,
        "inverse": {"op": "insert", "row": row},
        "idem": hashlib.sha256(f"{run_id}:{op_no}".encode()).hexdigest()[:32],
    }


@dataclass
class StepSpec:
    name: str
    table: str
    ops: list[dict[str, Any]]
    key: list[str] = field(default_factory=lambda: ["sku"])
    count: int | None = None  # declared size when ``ops`` are generated lazily

    @property
    def size(self) -> int:
        return len(self.ops) if self.count is None else self.count


@dataclass
class RunScript:
    """One run, written as the engine would: events per segment, in order."""

    journal: Journal
    clock: FixedClock
    run_id: str
    corr: str
    changeset: str = "eu-price-uplift"
    version: int = 3
    automation: str | None = "n8n:workflow/42"
    target: str = CRM
    description: str = "Raise EU list prices by 5 %"
    kind: str = "apply"
    parent_run: str | None = None
    drill: bool = False
    segment_size: int = 100
    steps: list[StepSpec] = field(default_factory=list)
    seg_no: int = 0

    def _append(self, w: Writer, kind: str, payload: dict[str, Any]) -> None:
        w.append(kind, payload, run_id=self.run_id, corr=self.corr)

    def create(self, w: Writer) -> None:
        rows = sum(s.size for s in self.steps)
        self._append(
            w,
            "run.created",
            {
                "kind": self.kind,
                "parent_run": self.parent_run,
                "changeset": self.changeset,
                "version": self.version,
                "digest": hashlib.sha256(f"{self.changeset}:{self.version}".encode()).hexdigest(),
                "automation": self.automation,
                "description": self.description,
                "target": self.target,
                "drill": self.drill,
                "dry_run": False,
                "rows_total": rows,
                "options": {"segment_size": self.segment_size, "on_error": "pause"},
                "touchpoints": {
                    "source": self.automation or "manual",
                    "writes": [self.target],
                    "readers": ["reporting-etl", "storefront-cache"],
                },
                "source_file": f"changesets/{self.changeset}.yaml",
                "steps": [
                    {
                        "step_no": n,
                        "name": s.name,
                        "table": s.table,
                        "key": s.key,
                        "operations": s.size,
                        "target": self.target,
                    }
                    for n, s in enumerate(self.steps, start=1)
                ],
            },
        )

    def start(self, w: Writer) -> None:
        self._append(w, "run.started", {"pid": 4242, "host": "batch-01"})

    def snapshot(self, w: Writer, phase: str, table: str = "products", rows: int = 50_000) -> None:
        self._append(
            w,
            "snapshot.taken",
            {
                "phase": phase,
                "table": table,
                "rows": rows,
                "digest": hashlib.sha256(f"{self.run_id}:{phase}".encode()).hexdigest(),
                "aggregates": {"count": rows, "sums": {"price": "2750412.35"}},
            },
        )

    def segments_of(self, step_no: int) -> Iterable[list[dict[str, Any]]]:
        ops = self.steps[step_no - 1].ops
        for start in range(0, len(ops), self.segment_size):
            yield ops[start : start + self.segment_size]

    def intent(self, w: Writer, step_no: int, ops: Sequence[dict[str, Any]]) -> int:
        self.seg_no += 1
        self._append(
            w, "segment.intent", {"seg_no": self.seg_no, "step_no": step_no, "ops": list(ops)}
        )
        return self.seg_no

    def applied(
        self, w: Writer, seg_no: int, op_nos: Sequence[int], *, duration_ms: int = 180
    ) -> None:
        payload: dict[str, Any] = {
            "seg_no": seg_no,
            "applied": list(op_nos),
            "attempt": 1,
            "duration_ms": duration_ms,
        }
        if self.kind == "rollback" and self.parent_run:
            payload["parent_run"] = self.parent_run
            payload["reverted_ops"] = list(op_nos)
        self._append(w, "segment.applied", payload)

    def checkpoint(self, w: Writer, seg_no: int, op_no: int, done: int) -> None:
        self._append(w, "checkpoint", {"seg_no": seg_no, "op_no": op_no, "done": done})

    def guard_passed(self, w: Writer, seg_no: int) -> None:
        self._append(w, "guard.passed", {"invariant": "no-negative-prices", "seg_no": seg_no})

    def clean_segment(self, w: Writer, step_no: int, ops: Sequence[dict[str, Any]]) -> int:
        """intent → applied → checkpoint → guard.passed, the common case."""
        seg = self.intent(w, step_no, ops)
        self.clock.advance(0.15)
        self.applied(w, seg, [o["op_no"] for o in ops])
        self.checkpoint(w, seg, ops[-1]["op_no"], ops[-1]["op_no"])
        self.guard_passed(w, seg)
        self.clock.advance(0.3)
        return seg

    def conflict(self, w: Writer, op: dict[str, Any], now: dict[str, Any]) -> None:
        self._append(
            w,
            "op.conflict",
            {
                "op_no": op["op_no"],
                "detail": {
                    "table": op["table"],
                    "key": op["key"],
                    "before": op["before"],
                    "ours": op["after"],
                    "now": now,
                },
            },
        )

    def complete(self, w: Writer, applied: int, failed: int = 0, conflicts: int = 0) -> None:
        self._append(
            w,
            "run.completed",
            {
                "applied": applied,
                "failed": failed,
                "conflicts": conflicts,
                "elapsed_s": 42.5,
                "rows_per_s": round(applied / 42.5, 1),
            },
        )


def _script(j: Journal, clock: FixedClock, run_id: str, **kw: Any) -> RunScript:
    return RunScript(j, clock, run_id, corr=f"corr-{run_id}", **kw)


def completed_run(j: Journal, clock: FixedClock, run_id: str, n_ops: int = 250) -> RunScript:
    """A clean run: two steps, several segments, baseline and post snapshots."""
    price = [price_op(k, k, run_id) for k in range(1, n_ops + 1)]
    new = [insert_op(n_ops + k, 90_000 + k, run_id) for k in range(1, 21)]
    s = _script(
        j,
        clock,
        run_id,
        steps=[StepSpec("raise-prices", "products", price), StepSpec("add-sku", "products", new)],
    )
    with j.write() as w:
        s.create(w)
        s.start(w)
        s.snapshot(w, "baseline")
    for step_no in (1, 2):
        for ops in s.segments_of(step_no):
            with j.write() as w:
                s.clean_segment(w, step_no, ops)
    with j.write() as w:
        s.snapshot(w, "post")
        s.complete(w, applied=n_ops + 20)
    return s


def paused_conflict_run(j: Journal, clock: FixedClock, run_id: str) -> RunScript:
    """Segment 2 meets a row someone changed (op.conflict); segment 3 fails; the run pauses."""
    ops = [price_op(k, 200 + k, run_id) for k in range(1, 301)]
    s = _script(
        j,
        clock,
        run_id,
        changeset="apac-restock",
        version=7,
        automation="zapier:zap/981",
        description="Restock APAC prices after supplier change",
        steps=[StepSpec("reprice-apac", "products", ops)],
    )
    segs = list(s.segments_of(1))
    with j.write() as w:
        s.create(w)
        s.start(w)
        s.snapshot(w, "baseline")
    with j.write() as w:
        s.clean_segment(w, 1, segs[0])
    with j.write() as w:
        seg = s.intent(w, 1, segs[1])
        clash = segs[1][4]
        now = {
            **clash["before"],
            "price": "99.99",
            "stock": 3,
            "attributes": '{"color":"blue","tags":["manual-fix"],"dims":{"w":10,"h":4}}',
            "updated_at": "2026-11-27T01:20:11",
        }
        s.conflict(w, clash, now)
        s.applied(w, seg, [o["op_no"] for o in segs[1] if o is not clash])
        s.checkpoint(w, seg, segs[1][-1]["op_no"], segs[1][-1]["op_no"] - 1)
    clock.advance(0.4)
    with j.write() as w:
        seg = s.intent(w, 1, segs[2])
        bad = segs[2][17]
        error = "CHECK constraint failed: price >= 0"
        s._append(
            w,
            "segment.failed",
            {
                "seg_no": seg,
                "error": error,
                "op_no": bad["op_no"],
                "ops": [o["op_no"] for o in segs[2]],
            },
        )
        s._append(w, "run.paused", {"reason": "segment 3 failed (on_error: pause)", "by": "engine"})
    return s


def guard_run(j: Journal, clock: FixedClock, run_id: str) -> RunScript:
    """An invariant is violated after segment 2: guard.tripped pauses the run."""
    ops = [price_op(k, 700 + k, run_id) for k in range(1, 201)]
    s = _script(
        j,
        clock,
        run_id,
        changeset="us-discount",
        version=2,
        automation="make:scenario/77",
        description="US holiday discount",
        steps=[StepSpec("discount-us", "products", ops)],
    )
    segs = list(s.segments_of(1))
    with j.write() as w:
        s.create(w)
        s.start(w)
        seg = s.clean_segment(w, 1, segs[0])
        seg = s.intent(w, 1, segs[1])
        s.applied(w, seg, [o["op_no"] for o in segs[1]])
        s.checkpoint(w, seg, segs[1][-1]["op_no"], segs[1][-1]["op_no"])
        s._append(
            w,
            "guard.tripped",
            {
                "reason": "invariant no-negative-prices violated",
                "invariant": "no-negative-prices",
                "sql": "SELECT COUNT(*) FROM products WHERE price < 0",
                "expected": 0,
                "actual": 4,
                "seg_no": seg,
            },
        )
    return s


def large_run(
    j: Journal,
    clock: FixedClock,
    run_id: str,
    n_ops: int = 20_000,
    *,
    segment_size: int = 100,
    progress_per_segment: int = 0,
    conflict_every: int = 97,
    fail_every: int = 0,
    batch_segments: int = 50,
) -> RunScript:
    """A big run: ``n_ops`` operations; optionally padded with run.progress events."""
    s = _script(
        j,
        clock,
        run_id,
        changeset="global-catalog-sync",
        version=12,
        automation="airflow:dag/catalog_sync",
        description="Nightly catalog sync from the PIM",
        segment_size=segment_size,
    )
    # Operations are generated per segment, so the step only declares its size.
    s.steps = [StepSpec("sync-prices", "products", [], count=n_ops)]
    with j.write() as w:
        s.create(w)
        s.start(w)
        s.snapshot(w, "baseline", rows=n_ops)
    n_segments = (n_ops + segment_size - 1) // segment_size
    conflicts = failed = 0
    seg_index = 0
    while seg_index < n_segments:
        with j.write() as w:
            for _ in range(min(batch_segments, n_segments - seg_index)):
                first = seg_index * segment_size + 1
                last = min(n_ops, first + segment_size - 1)
                ops = [price_op(k, k, run_id) for k in range(first, last + 1)]
                seg = s.intent(w, 1, ops)
                applied = [o["op_no"] for o in ops]
                if conflict_every and seg_index % conflict_every == 5:
                    clash = ops[len(ops) // 2]
                    s.conflict(w, clash, {**clash["before"], "price": "1.00"})
                    applied.remove(clash["op_no"])
                    conflicts += 1
                if fail_every and seg_index % fail_every == fail_every - 1:
                    bad = ops[0]
                    s._append(
                        w, "op.failed", {"op_no": bad["op_no"], "detail": {"error": "deadlock"}}
                    )
                    applied.remove(bad["op_no"])
                    failed += 1
                for done in range(progress_per_segment):
                    s._append(
                        w,
                        "run.progress",
                        {
                            "seg_no": seg,
                            "done": first + done,
                            "total": n_ops,
                            "elapsed_s": seg_index,
                        },
                    )
                clock.advance(0.05)
                s.applied(w, seg, applied, duration_ms=50)
                s.checkpoint(w, seg, last, last)
                seg_index += 1
    with j.write() as w:
        s.complete(w, applied=n_ops - conflicts - failed, failed=failed, conflicts=conflicts)
    return s


def running_run(j: Journal, clock: FixedClock, run_id: str) -> RunScript:
    ops = [price_op(k, 3000 + k, run_id) for k in range(1, 501)]
    s = _script(
        j,
        clock,
        run_id,
        changeset="crm-dedupe",
        version=1,
        automation="retool:workflow/dedupe",
        target="postgresql+psycopg://crm@db.internal/crm",
        description="Merge duplicate customer rows",
        steps=[StepSpec("dedupe", "customers", ops, key=["id"])],
    )
    with j.write() as w:
        s.create(w)
        s.start(w)
        for ops_ in list(s.segments_of(1))[:2]:
            s.clean_segment(w, 1, ops_)
    return s


def failed_run(j: Journal, clock: FixedClock, run_id: str) -> RunScript:
    ops = [delete_op(k, 5000 + k, run_id) for k in range(1, 41)]
    s = _script(
        j,
        clock,
        run_id,
        changeset="purge-discontinued",
        version=4,
        automation="powerautomate:flow/purge",
        description="Remove discontinued SKUs",
        steps=[StepSpec("purge", "products", ops)],
    )
    with j.write() as w:
        s.create(w)
        s.start(w)
        seg = s.intent(w, 1, ops)
        error = "FOREIGN KEY constraint failed"
        s._append(
            w,
            "segment.failed",
            {"seg_no": seg, "error": error, "op_no": 1, "ops": [o["op_no"] for o in ops]},
        )
        s._append(w, "run.failed", {"reason": f"segment {seg} failed: {error}"})
    return s


def rolled_back_pair(
    j: Journal, clock: FixedClock, run_id: str, rollback_id: str
) -> tuple[RunScript, RunScript]:
    """A forward run, then its rollback (newest first), drift flagged on the parent."""
    ops = [price_op(k, 8000 + k, run_id) for k in range(1, 121)]
    fwd = _script(
        j,
        clock,
        run_id,
        changeset="eu-price-uplift",
        version=2,
        steps=[StepSpec("raise-prices", "products", ops)],
        segment_size=60,
    )
    with j.write() as w:
        fwd.create(w)
        fwd.start(w)
        for part in fwd.segments_of(1):
            fwd.clean_segment(w, 1, part)
        fwd.complete(w, applied=len(ops))
        w.append("run.drift", {"drifted": True}, run_id=run_id, corr=fwd.corr)
    clock.advance(600)
    inverse_ops = [
        {
            **o,
            "before": o["after"],
            "after": o["before"],
            "inverse": {"op": "update", "set": {"price": o["after"]["price"]}},
        }
        for o in reversed(ops)
    ]
    back = _script(
        j,
        clock,
        rollback_id,
        kind="rollback",
        parent_run=run_id,
        changeset="eu-price-uplift",
        version=2,
        automation=None,
        description=f"Rollback of {run_id}",
        steps=[StepSpec("raise-prices", "products", inverse_ops)],
        segment_size=60,
    )
    runbook_approvals(j, clock, fwd, rollback_id)
    with j.write() as w:
        w.append(
            "run.status",
            {
                "status": "rolling_back",
                "reason": f"rollback {rollback_id}",
                "final": False,
                "rollback_run": rollback_id,
            },
            run_id=run_id,
            corr=fwd.corr,
        )
        back.create(w)
        back.start(w)
        for part in back.segments_of(1):
            seg = back.intent(w, 1, part)
            back.applied(w, seg, [o["op_no"] for o in part])
            back.checkpoint(w, seg, part[-1]["op_no"], part[-1]["op_no"])
        back.complete(w, applied=len(ops))
        w.append(
            "run.status",
            {
                "status": "rolled_back",
                "reason": f"rolled back by {rollback_id}",
                "final": True,
                "rollback_run": rollback_id,
            },
            run_id=run_id,
            corr=fwd.corr,
        )
    return fwd, back


def runbook_approvals(j: Journal, clock: FixedClock, run: RunScript, rollback_id: str) -> None:
    """The rollback-batch runbook as console/runbook journals it: a first execution denied by
    the data owner, a second one approved by a quorum of two, then its rollback step."""
    plan = hashlib.sha256(f"plan:{rollback_id}".encode()).hexdigest()
    book = hashlib.sha256(b"rollback-batch:2").hexdigest()
    steps = [{"id": "approve", "kind": "approval"}, {"id": "rollback", "kind": "action"}]

    def emit(actor: str, kind: str, payload: dict[str, Any]) -> None:
        j.actor = actor
        with j.write() as w:
            if kind in ("approval.granted", "approval.denied"):
                payload = {**payload, "head": {"seq": w.seq, "hash": w.hash}}
            w.append(kind, payload, run_id=run.run_id, corr=run.corr)
        clock.advance(20)

    def started(ex: str) -> None:
        emit(
            "oncall1",
            "runbook.started",
            {
                "exec": ex,
                "runbook": "rollback-batch",
                "version": 2,
                "title": "Roll back a batch update",
                "digest": book,
                "owner": "oncall1",
                "backup_ref": None,
                "steps": steps,
            },
        )
        emit(
            "oncall1",
            "approval.requested",
            {
                "exec": ex,
                "step": "approve",
                "guards": "rollback",
                "request": 1,
                "plan_digest": plan,
                "runbook_digest": book,
                "requirement": {"quorum": 2, "require_roles": ["data-owner"]},
                "expires_at": "2026-11-27T01:50:00.000000Z",
                "reason": None,
                "void": [],
                "plan": {"items": 120, "conflicts": 0},
            },
        )

    def given(ex: str) -> dict[str, Any]:
        return {
            "exec": ex,
            "step": "approve",
            "request": 1,
            "plan_digest": plan,
            "runbook_digest": book,
            "guards": "rollback",
        }

    first, second = "rbx000000001", "rbx000000002"
    started(first)
    reason = "wait for the ERP export"
    denial = {"roles": ["data-owner"], "comment": reason, "next": None, "status": "denied"}
    emit("owner1", "approval.denied", {**given(first), **denial})
    emit("owner1", "runbook.finished", {"exec": first, "status": "denied", "reason": reason})
    started(second)
    grant = {"roles": ["data-owner"], "comment": "export done, go"}
    emit("owner1", "approval.granted", {**given(second), **grant})
    emit(
        "ic1",
        "approval.granted",
        {**given(second), "roles": ["incident-commander"], "comment": "ok"},
    )
    emit(
        "ic1",
        "runbook.step.finished",
        {
            "exec": second,
            "step": "approve",
            "kind": "approval",
            "outcome": "approved",
            "state": "done",
            "result": {"approvers": ["owner1", "ic1"]},
            "next": "rollback",
            "status": "active",
            "reason": None,
        },
    )
    emit(
        "oncall1",
        "runbook.step.started",
        {"exec": second, "step": "rollback", "kind": "action", "attempt": 1, "holder": "h1"},
    )
    j.actor = "engine"


def drill_run(j: Journal, clock: FixedClock, run_id: str) -> RunScript:
    ops = [price_op(k, 9500 + k, run_id) for k in range(1, 51)]
    s = _script(
        j,
        clock,
        run_id,
        changeset="gameday-price-error",
        version=1,
        automation="drill:scenario/price-error",
        target="sqlite:///sandbox/crm.db",
        description="Game day: replay of the 11-12 price incident",
        drill=True,
        steps=[StepSpec("raise-prices", "products", ops)],
    )
    with j.write() as w:
        s.create(w)
        s.start(w)
        s.clean_segment(w, 1, ops)
        s.complete(w, applied=len(ops))
    return s


def planned_run(j: Journal, clock: FixedClock, run_id: str) -> RunScript:
    ops = [insert_op(k, 12_000 + k, run_id) for k in range(1, 11)]
    s = _script(
        j,
        clock,
        run_id,
        changeset="new-season-skus",
        version=1,
        automation=None,
        description="Add new season SKUs",
        steps=[StepSpec("add-skus", "products", ops)],
    )
    with j.write() as w:
        s.create(w)
    return s


# Fixed ids so that snapshots and tests can name runs.
RUN_IDS = {
    "completed": "a1c0de5e7e11",
    "paused": "b2c0ffee0a22",
    "guard": "c3f00d1e5533",
    "large": "d4b16da7a044",
    "failed": "e5dead0b0155",
    "rolled_back": "f6ab1e0d0c66",
    "rollback": "f7ba5eba0c77",
    "drill": "a8d2111e0d88",
    "running": "b9a1b0a70e99",
    "planned": "c0ffee0f00aa",
}


@dataclass
class BuiltJournal:
    path: Path
    url: str
    clock: FixedClock
    runs: dict[str, str]

    def open(self, actor: str = "oncall1") -> Journal:
        return Journal(self.url, actor=actor, clock=self.clock)


def build_journal(path: Path, *, large_ops: int = 20_000) -> BuiltJournal:
    """The console's standard scenario journal (about ten runs over one night)."""
    return build_journal_at(f"sqlite:///{path}", path, large_ops=large_ops)


def build_journal_at(url: str, path: Path, *, large_ops: int = 20_000) -> BuiltJournal:
    """The same scenario on any journal URL (PostgreSQL too)."""
    clock = FixedClock()
    j = Journal(url, actor="engine", clock=clock)
    ids = RUN_IDS
    clock.at(T0)
    completed_run(j, clock, ids["completed"])
    clock.at(T0 + dt.timedelta(minutes=12))
    rolled_back_pair(j, clock, ids["rolled_back"], ids["rollback"])
    clock.at(T0 + dt.timedelta(minutes=31))
    large_run(j, clock, ids["large"], large_ops)
    clock.at(T0 + dt.timedelta(minutes=48))
    failed_run(j, clock, ids["failed"])
    clock.at(T0 + dt.timedelta(minutes=55))
    drill_run(j, clock, ids["drill"])
    clock.at(T0 + dt.timedelta(minutes=63))
    guard_run(j, clock, ids["guard"])
    clock.at(T0 + dt.timedelta(minutes=73))
    paused_conflict_run(j, clock, ids["paused"])
    clock.at(T0 + dt.timedelta(minutes=80))
    planned_run(j, clock, ids["planned"])
    clock.at(T0 + dt.timedelta(minutes=84))
    running_run(j, clock, ids["running"])
    j.close()
    # "Now", as the console sees it in tests: a little after the last event.
    clock.at(T0 + dt.timedelta(minutes=90))
    return BuiltJournal(path, url, clock, dict(ids))


def many_small_runs(j: Journal, clock: FixedClock, n: int, *, batch: int = 250) -> list[str]:
    """``n`` small runs (three ops each), with a realistic mix of outcomes."""
    ids: list[str] = []
    changesets = ["eu-price-uplift", "apac-restock", "crm-dedupe", "us-discount", "catalog-sync"]
    automations = ["n8n:workflow/42", "zapier:zap/981", "make:scenario/77", None]
    for start in range(0, n, batch):
        with j.write() as w:
            for k in range(start, min(n, start + batch)):
                run_id = f"r{k:011d}"
                ops = [price_op(o, k * 3 + o, run_id) for o in range(1, 4)]
                s = _script(
                    j,
                    clock,
                    run_id,
                    changeset=changesets[k % len(changesets)],
                    version=1 + k % 9,
                    automation=automations[k % len(automations)],
                    steps=[StepSpec("step", "products", ops)],
                    drill=k % 50 == 0,
                )
                s.create(w)
                s.start(w)
                seg = s.intent(w, 1, ops)
                if k % 23 == 0:
                    error = "deadlock detected"
                    s._append(
                        w,
                        "segment.failed",
                        {"seg_no": seg, "error": error, "op_no": 1, "ops": [1, 2, 3]},
                    )
                    s._append(w, "run.paused", {"reason": error, "by": "engine"})
                else:
                    s.applied(w, seg, [1, 2, 3])
                    s.checkpoint(w, seg, 3, 3)
                    s.complete(w, applied=3)
                clock.advance(30)
                ids.append(run_id)
    return ids
