"""Projections: the current state derived from events, one pure function per event kind.

A handler turns one event into ``Change``s. The store applies them as SQL in the same
transaction as the event; ``verify`` replays them in memory and compares with the tables. One
piece of logic, two sinks, so the projections can always be rebuilt and checked.

Every ``Update.where`` is the table's full primary key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

from console.canonical import canonical_json

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "runs": ("id",),
    "steps": ("run_id", "step_no"),
    "segments": ("run_id", "seg_no"),
    "operations": ("run_id", "op_no"),
    "checkpoints": ("seq",),
    "runbook_execs": ("id",),
    "runbook_steps": ("exec_id", "step_id"),
    "approvals": ("seq",),
    "target_locks": ("seq",),
}


@dataclass(frozen=True)
class Insert:
    table: str
    row: Mapping[str, Any]


@dataclass(frozen=True)
class Update:
    table: str
    where: Mapping[str, Any]
    values: Mapping[str, Any] = field(default_factory=dict)
    increments: Mapping[str, int] = field(default_factory=dict)


Change = Insert | Update


class EventView(NamedTuple):
    """What a handler sees of an event (a named tuple: built once per event on every append
    and verify, at a fraction of a frozen dataclass's cost)."""

    seq: int
    ts: str
    kind: str
    run_id: str | None
    actor: str
    corr: str | None
    payload: Mapping[str, Any]


Handler = Callable[[EventView], Iterable[Change]]
HANDLERS: dict[str, Handler] = {}

# Kinds with no effect on projections still go through here (so that the set is explicit).
PASSIVE_KINDS = frozenset(
    {
        "annotation",
        "changeset.rejected",
        "changeset.duplicate",
        "snapshot.taken",
        "run.progress",
        "guard.passed",
        "journal.note",
        "run.pause_requested",
        "op.forced",
        "rollback.planned",
        "gate.refused",
        "escalation",
        "journal.pruned",
    }
)


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for kind in kinds:
            HANDLERS[kind] = fn
        return fn

    return register


def project(event: EventView) -> list[Change]:
    handler = HANDLERS.get(event.kind)
    return [] if handler is None else list(handler(event))


class Encoded(dict[str, Any]):
    """A JSON object that carries its canonical text, so that it is encoded once.

    Whoever builds one guarantees ``text == canonical_json(self)`` (the writer of an event
    payload built from them); handlers use ``text`` instead of encoding again, so a projection
    from such a payload equals the one ``verify`` rebuilds from the stored text.
    """

    __slots__ = ("text",)

    def __init__(self, value: Mapping[str, Any], text: str) -> None:
        super().__init__(value)
        self.text = text


def _text(value: object) -> str:
    return value.text if type(value) is Encoded else canonical_json(value)


def _json(value: object) -> str | None:
    return None if value is None else _text(value)


def _run(event: EventView, **values: Any) -> Update:
    return Update("runs", {"id": event.run_id}, values)


# --- runs -------------------------------------------------------------------------------


@handles("run.created")
def _run_created(e: EventView) -> Iterable[Change]:
    p = e.payload
    yield Insert(
        "runs",
        {
            "id": e.run_id,
            "kind": p.get("kind", "apply"),
            "parent_run": p.get("parent_run"),
            "changeset": p.get("changeset", ""),
            "version": int(p.get("version", 0)),
            "digest": p.get("digest", ""),
            "automation": p.get("automation"),
            "description": p.get("description"),
            "target": p.get("target", ""),
            "status": "planned",
            "corr": e.corr or "",
            "actor": e.actor,
            "drill": bool(p.get("drill", False)),
            "dry_run": bool(p.get("dry_run", False)),
            "created_at": e.ts,
            "started_at": None,
            "finished_at": None,
            "rows_total": int(p.get("rows_total", 0)),
            "rows_applied": 0,
            "rows_failed": 0,
            "rows_conflict": 0,
            "rows_reverted": 0,
            "rows_skipped": 0,
            "drifted": False,
            "last_seq": e.seq,
            "reason": None,
        },
    )
    for step in p.get("steps", []):
        yield Insert(
            "steps",
            {
                "run_id": e.run_id,
                "step_no": int(step["step_no"]),
                "name": step["name"],
                "tbl": step["table"],
                "target": step.get("target", p.get("target", "")),
                "key_columns": canonical_json(step["key"]),
                "operations": int(step.get("operations", 0)),
            },
        )


@handles("run.started")
def _run_started(e: EventView) -> Iterable[Change]:
    yield _run(e, status="running", started_at=e.payload.get("started_at", e.ts))


@handles("run.resumed")
def _run_resumed(e: EventView) -> Iterable[Change]:
    yield _run(e, status="running", reason=None)


@handles("run.paused", "guard.tripped")
def _run_paused(e: EventView) -> Iterable[Change]:
    yield _run(e, status="paused", reason=e.payload.get("reason"))


@handles("run.completed")
def _run_completed(e: EventView) -> Iterable[Change]:
    yield _run(e, status="completed", finished_at=e.ts, reason=None)


@handles("run.failed")
def _run_failed(e: EventView) -> Iterable[Change]:
    yield _run(e, status="failed", finished_at=e.ts, reason=e.payload.get("reason"))


@handles("run.status")
def _run_status(e: EventView) -> Iterable[Change]:
    """An explicit status change (rolling_back, rolled_back, rollback_partial, ...)."""
    values: dict[str, Any] = {"status": e.payload["status"], "reason": e.payload.get("reason")}
    if e.payload.get("final"):
        values["finished_at"] = e.ts
    yield _run(e, **values)


@handles("run.drift")
def _run_drift(e: EventView) -> Iterable[Change]:
    yield _run(e, drifted=bool(e.payload.get("drifted", True)))


# --- segments and operations ------------------------------------------------------------


@handles("segment.intent")
def _segment_intent(e: EventView) -> Iterable[Change]:
    p = e.payload
    ops = p["ops"]
    seg_no, step_no = int(p["seg_no"]), int(p["step_no"])
    yield Insert(
        "segments",
        {
            "run_id": e.run_id,
            "seg_no": seg_no,
            "step_no": step_no,
            "status": "intent",
            "first_op": int(ops[0]["op_no"]) if ops else 0,
            "last_op": int(ops[-1]["op_no"]) if ops else 0,
            "intent_seq": e.seq,
            "outcome_seq": None,
            "started_at": e.ts,
            "finished_at": None,
        },
    )
    run_id = e.run_id
    for op in ops:
        yield Insert(
            "operations",
            {
                "run_id": run_id,
                "op_no": int(op["op_no"]),
                "seg_no": seg_no,
                "step_no": step_no,
                "tbl": op["table"],
                "op": op["op"],
                "key": _text(op["key"]),
                "before": _json(op.get("before")),
                "after": _json(op.get("after")),
                "inverse": _text(op["inverse"]),
                "idem_key": op["idem"],
                "status": "pending",
                "detail": None,
                "parent_op": op.get("parent_op"),
            },
        )


def _segment_outcome(e: EventView, status: str) -> Update:
    return Update(
        "segments",
        {"run_id": e.run_id, "seg_no": int(e.payload["seg_no"])},
        {"status": status, "outcome_seq": e.seq, "finished_at": e.ts},
    )


@handles("segment.applied", "segment.dry_run")
def _segment_applied(e: EventView) -> Iterable[Change]:
    """``applied``: op numbers written; conflicts and failures come as their own events.

    A dry run journals ``segment.dry_run``: the same shape, nothing was written.
    """
    dry = e.kind == "segment.dry_run"
    applied = [int(n) for n in e.payload.get("applied", [])]
    yield _segment_outcome(e, "dry_run" if dry else "applied")
    status = e.payload.get("op_status", "would_apply" if dry else "applied")
    for op_no in applied:
        yield Update("operations", {"run_id": e.run_id, "op_no": op_no}, {"status": status})
    counter = e.payload.get("counter", "rows_applied")
    yield Update("runs", {"id": e.run_id}, {}, {counter: len(applied)})
    # A rollback also marks the original operations it reverted (a dry run reverted none).
    parent = e.payload.get("parent_run")
    reverted = [] if dry else e.payload.get("reverted_ops", [])
    for op_no in reverted:
        yield Update("operations", {"run_id": parent, "op_no": int(op_no)}, {"status": "reverted"})
    if parent and reverted:
        yield Update("runs", {"id": parent}, {}, {"rows_reverted": len(reverted)})


@handles("segment.failed")
def _segment_failed(e: EventView) -> Iterable[Change]:
    """The segment's transaction failed as a whole: every op in ``ops`` was not written."""
    yield _segment_outcome(e, "failed")
    ops = [int(n) for n in e.payload.get("ops", [])]
    detail = canonical_json({"error": e.payload.get("error"), "segment": True})
    for op_no in ops:
        yield Update(
            "operations",
            {"run_id": e.run_id, "op_no": op_no},
            {"status": "failed", "detail": detail},
        )
    yield Update("runs", {"id": e.run_id}, {}, {"rows_failed": len(ops)})


@handles("segment.retry")
def _segment_retry(e: EventView) -> Iterable[Change]:
    """A failed segment is attempted again (resume): its ops are pending once more."""
    ops = [int(n) for n in e.payload.get("ops", [])]
    yield Update(
        "segments",
        {"run_id": e.run_id, "seg_no": int(e.payload["seg_no"])},
        {"status": "intent", "outcome_seq": None, "finished_at": None},
    )
    for op_no in ops:
        yield Update(
            "operations",
            {"run_id": e.run_id, "op_no": op_no},
            {"status": "pending", "detail": None},
        )
    yield Update("runs", {"id": e.run_id}, {}, {"rows_failed": -len(ops)})


def _op_outcome(e: EventView, status: str, counter: str) -> Iterable[Change]:
    p = e.payload
    yield Update(
        "operations",
        {"run_id": e.run_id, "op_no": int(p["op_no"])},
        {"status": status, "detail": _json(p.get("detail"))},
    )
    yield Update("runs", {"id": e.run_id}, {}, {counter: 1})


@handles("op.conflict")
def _op_conflict(e: EventView) -> Iterable[Change]:
    return _op_outcome(e, "conflict", "rows_conflict")


@handles("op.failed")
def _op_failed(e: EventView) -> Iterable[Change]:
    return _op_outcome(e, "failed", "rows_failed")


@handles("op.skipped")
def _op_skipped(e: EventView) -> Iterable[Change]:
    return _op_outcome(e, "skipped", "rows_skipped")


@handles("checkpoint")
def _checkpoint(e: EventView) -> Iterable[Change]:
    yield Insert(
        "checkpoints",
        {"seq": e.seq, "run_id": e.run_id, "ts": e.ts, "payload": canonical_json(e.payload)},
    )


# --- runbook executions and approvals ----------------------------------------------------
# Each event carries the transition it records (next step, resulting status), so these
# handlers only copy values: the executor decides, the journal remembers.


def _exec(e: EventView, **values: Any) -> Update:
    return Update("runbook_execs", {"id": e.payload["exec"]}, {"updated_at": e.ts, **values})


def _exec_step(e: EventView, step: str, **values: Any) -> Update:
    return Update("runbook_steps", {"exec_id": e.payload["exec"], "step_id": step}, values)


@handles("runbook.started")
def _runbook_started(e: EventView) -> Iterable[Change]:
    p = e.payload
    steps = p["steps"]
    yield Insert(
        "runbook_execs",
        {
            "id": p["exec"],
            "runbook": p["runbook"],
            "version": int(p.get("version", 0)),
            "title": p.get("title", ""),
            "digest": p["digest"],
            "run_id": e.run_id,
            "status": "active",
            "current_step": steps[0]["id"] if steps else None,
            "requested_by": e.actor,
            "owner": p.get("owner"),
            "backup_ref": p.get("backup_ref"),
            "started_at": e.ts,
            "updated_at": e.ts,
            "finished_at": None,
            "reason": None,
        },
    )
    for n, step in enumerate(steps):
        yield Insert(
            "runbook_steps",
            {
                "exec_id": p["exec"],
                "step_id": step["id"],
                "idx": n,
                "kind": step["kind"],
                "state": "ready" if n == 0 else "pending",
                "attempts": 0,
                "by": None,
                "started_at": None,
                "finished_at": None,
                "outcome": None,
                "output_digest": None,
                "result": None,
                "request_no": 0,
                "plan_digest": None,
                "requested_at": None,
                "expires_at": None,
                "requirement": None,
            },
        )


@handles("runbook.step.started")
def _runbook_step_started(e: EventView) -> Iterable[Change]:
    p = e.payload
    yield _exec(e, status="running", current_step=p["step"], reason=None)
    yield _exec_step(
        e,
        p["step"],
        state="running",
        attempts=int(p["attempt"]),
        by=e.actor,
        started_at=e.ts,
        finished_at=None,
    )


@handles("runbook.step.finished", "runbook.step.failed")
def _runbook_step_finished(e: EventView) -> Iterable[Change]:
    """A step's result; ``next`` (None: none) becomes current, ``status`` the execution's."""
    p = e.payload
    failed = e.kind == "runbook.step.failed"
    yield _exec_step(
        e,
        p["step"],
        state="failed" if failed else p.get("state", "done"),
        by=e.actor,
        finished_at=e.ts,
        outcome=p.get("outcome", "failed" if failed else "done"),
        output_digest=p.get("output_digest"),
        result=_json(p.get("result")),
    )
    nxt = p.get("next")
    yield _exec(e, status=p["status"], current_step=nxt, reason=p.get("reason"))
    if nxt is not None and nxt != p["step"]:
        yield _exec_step(e, nxt, state="ready")


@handles("runbook.finished")
def _runbook_finished(e: EventView) -> Iterable[Change]:
    p = e.payload
    yield _exec(e, status=p["status"], current_step=None, finished_at=e.ts, reason=p.get("reason"))


@handles("approval.requested")
def _approval_requested(e: EventView) -> Iterable[Change]:
    p = e.payload
    yield _exec(e, status="awaiting_approval", current_step=p["step"])
    yield _exec_step(
        e,
        p["step"],
        state="awaiting_approval",
        request_no=int(p["request"]),
        plan_digest=p["plan_digest"],
        requested_at=e.ts,
        expires_at=p.get("expires_at"),
        requirement=_json(p.get("requirement")),
    )
    for seq in p.get("void", []):
        yield Update("approvals", {"seq": int(seq)}, {"state": "void"})


@handles("approval.granted", "approval.denied")
def _approval_given(e: EventView) -> Iterable[Change]:
    p = e.payload
    denied = e.kind == "approval.denied"
    yield Insert(
        "approvals",
        {
            "seq": e.seq,
            "exec_id": p["exec"],
            "step_id": p["step"],
            "request_no": int(p["request"]),
            "run_id": e.run_id,
            "decision": "denied" if denied else "approved",
            "state": "given",
            "approver": e.actor,
            "roles": canonical_json(p.get("roles", [])),
            "comment": p.get("comment"),
            "plan_digest": p["plan_digest"],
            "runbook_digest": p["runbook_digest"],
            "head_seq": int(p["head"]["seq"]),
            "ts": e.ts,
        },
    )
    if denied:
        yield _exec_step(e, p["step"], state="denied", finished_at=e.ts, outcome="denied")
        yield _exec(e, status=p["status"], current_step=p.get("next"), reason=p.get("comment"))
        if p.get("next"):
            yield _exec_step(e, p["next"], state="ready")


@handles("approval.expired")
def _approval_expired(e: EventView) -> Iterable[Change]:
    p = e.payload
    for seq in p.get("approvals", []):
        yield Update("approvals", {"seq": int(seq)}, {"state": "expired"})
    yield _exec_step(e, p["step"], state="expired")
    yield _exec(e, status="blocked", current_step=p["step"], reason=p.get("reason"))


@handles("target.locked")
def _target_locked(e: EventView) -> Iterable[Change]:
    p = e.payload
    yield Insert(
        "target_locks",
        {
            "seq": e.seq,
            "target": p["target"],
            "exec_id": p["exec"],
            "run_id": e.run_id,
            "locked_at": e.ts,
            "released_at": None,
        },
    )


@handles("target.unlocked")
def _target_unlocked(e: EventView) -> Iterable[Change]:
    yield Update("target_locks", {"seq": int(e.payload["lock_seq"])}, {"released_at": e.ts})


def last_seq_changes(events: Iterable[EventView]) -> list[Change]:
    """Every run remembers the newest event about it (the console's live refresh uses it)."""
    newest: dict[str, int] = {}
    for e in events:
        if e.run_id is not None:
            newest[e.run_id] = e.seq
    return [Update("runs", {"id": run}, {"last_seq": seq}) for run, seq in newest.items()]


def tuple_getter(keys: Sequence[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """``lambda x: tuple(x[k] for k in keys)``, at C speed where it can be."""
    if len(keys) > 1:
        return itemgetter(*keys)  # a tuple already
    only = keys[0]
    return lambda values: (values[only],)


# A row's or a ``where``'s primary key, as ``tuple(values[c] for c in PRIMARY_KEYS[table])``.
KEY_OF = {table: tuple_getter(pk) for table, pk in PRIMARY_KEYS.items()}


class MemoryProjection:
    """Projections replayed in memory, to compare with the tables (``journal verify``)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {
            t: {} for t in PRIMARY_KEYS
        }
        self.problems: list[tuple[int, str]] = []

    def apply(self, seq: int, changes: Iterable[Change]) -> None:
        tables = self.tables
        for ch in changes:
            rows = tables[ch.table]
            if isinstance(ch, Insert):
                key = KEY_OF[ch.table](ch.row)
                if key in rows:
                    self.problems.append((seq, f"{ch.table} {key} created twice"))
                rows[key] = dict(ch.row)
                continue
            key = KEY_OF[ch.table](ch.where)
            row = rows.get(key)
            if row is None:
                self.problems.append((seq, f"{ch.table} {key} changed before it was created"))
                continue
            row.update(ch.values)
            if ch.increments:
                for col, n in ch.increments.items():
                    row[col] = row[col] + n
