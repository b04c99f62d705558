"""Journal tables.

``events`` is the source of truth (append-only, hash-chained). ``runs``, ``steps``,
``segments``, ``operations`` and ``checkpoints`` are projections written in the same
transaction as the events they derive from (``projections.py``) and rebuildable from them.
``snapshots`` hold captured rows; their digest is journaled in a ``snapshot.taken`` event.
``runbook_execs``, ``runbook_steps``, ``approvals`` and ``target_locks`` project the runbook and
approval events. ``leases`` and ``meta`` are operational state, outside the chain.
``pruned_state`` and ``prune_permits`` serve ``journal prune`` (``prune.py``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from sqlalchemy import Column, Index, Table, Text
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 1


class Meta(SQLModel, table=True):
    __tablename__ = "meta"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=255)


class Head(SQLModel, table=True):
    """One row (id 1): the chain's head. Locking it serialises appenders on every database."""

    __tablename__ = "journal_head"
    id: int = Field(primary_key=True)
    seq: int
    hash: str = Field(max_length=64)


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_run_seq", "run_id", "seq"),
        Index("ix_events_kind_seq", "kind", "seq"),
        # The console's markers and the engine's "latest event of these kinds in this run".
        Index("ix_events_run_kind_seq", "run_id", "kind", "seq"),
    )
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    ts: str = Field(max_length=40)
    kind: str = Field(max_length=64)
    run_id: str | None = Field(default=None, max_length=64)
    corr: str | None = Field(default=None, max_length=64)
    actor: str = Field(max_length=128)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    hash: str = Field(max_length=64)


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_status_created", "status", "created_at"),
        Index("ix_runs_created", "created_at", "id"),
    )
    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(default="apply", max_length=16)  # apply | rollback | fix | reapply
    parent_run: str | None = Field(default=None, max_length=64)
    changeset: str = Field(default="", max_length=255)
    version: int = 0
    digest: str = Field(default="", max_length=64)
    automation: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, sa_column=Column(Text))
    target: str = Field(default="", max_length=512)
    status: str = Field(default="planned", max_length=24)
    corr: str = Field(default="", max_length=64)
    actor: str = Field(default="", max_length=128)
    drill: bool = False
    dry_run: bool = False
    created_at: str = Field(default="", max_length=40)
    started_at: str | None = Field(default=None, max_length=40)
    finished_at: str | None = Field(default=None, max_length=40)
    rows_total: int = 0
    rows_applied: int = 0
    rows_failed: int = 0
    rows_conflict: int = 0
    rows_reverted: int = 0
    rows_skipped: int = 0
    drifted: bool = False
    last_seq: int = 0
    reason: str | None = Field(default=None, sa_column=Column(Text))


class Step(SQLModel, table=True):
    __tablename__ = "steps"
    run_id: str = Field(primary_key=True, max_length=64)
    step_no: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    name: str = Field(max_length=255)
    tbl: str = Field(max_length=255)
    target: str = Field(default="", max_length=512)
    key_columns: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON list
    operations: int = 0


class Segment(SQLModel, table=True):
    __tablename__ = "segments"
    run_id: str = Field(primary_key=True, max_length=64)
    seg_no: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    step_no: int
    status: str = Field(max_length=24)  # intent | applied | failed | in_doubt | reverted
    first_op: int
    last_op: int
    intent_seq: int
    outcome_seq: int | None = None
    started_at: str = Field(max_length=40)
    finished_at: str | None = Field(default=None, max_length=40)


class Operation(SQLModel, table=True):
    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_run_status", "run_id", "status", "op_no"),)
    run_id: str = Field(primary_key=True, max_length=64)
    op_no: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seg_no: int
    step_no: int
    tbl: str = Field(max_length=255)
    op: str = Field(max_length=8)  # insert | update | delete
    key: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON object
    before: str | None = Field(default=None, sa_column=Column(Text))
    after: str | None = Field(default=None, sa_column=Column(Text))
    inverse: str = Field(sa_column=Column(Text, nullable=False))
    idem_key: str = Field(max_length=64)
    status: str = Field(max_length=24)  # pending | applied | failed | conflict | reverted | ...
    detail: str | None = Field(default=None, sa_column=Column(Text))
    parent_op: int | None = None  # rollback: the parent run's operation this one reverses


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoints"
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    run_id: str | None = Field(default=None, max_length=64, index=True)
    ts: str = Field(max_length=40)
    payload: str = Field(sa_column=Column(Text, nullable=False))


class Snapshot(SQLModel, table=True):
    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_lookup", "run_id", "phase", "tbl", "key_text"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=64)
    phase: str = Field(max_length=24)  # baseline | post | post-rollback | post-fix
    tbl: str = Field(max_length=255)
    key_text: str = Field(max_length=1024)  # canonical JSON of the key
    row: str | None = Field(default=None, sa_column=Column(Text))  # None: row absent
    fingerprint: str = Field(max_length=32)


class OperationRow(NamedTuple):
    """An ``operations`` row as reads return it (a model per row cost 0.03-0.1 ms, and a
    rollback reads every row of its run)."""

    run_id: str
    op_no: int
    seg_no: int
    step_no: int
    tbl: str
    op: str
    key: str
    before: str | None
    after: str | None
    inverse: str
    idem_key: str
    status: str
    detail: str | None
    parent_op: int | None


class SnapshotRow(NamedTuple):
    """A ``snapshots`` row as reads return it (a model per row cost 0.14 ms: 14 s for a
    baseline of 100,000 keys)."""

    id: int
    run_id: str
    phase: str
    tbl: str
    key_text: str
    row: str | None
    fingerprint: str


class Lease(SQLModel, table=True):
    """Who is executing a run right now; a dead holder's lease expires."""

    __tablename__ = "leases"
    run_id: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=255)
    expires_at: str = Field(max_length=40)


class RunbookExec(SQLModel, table=True):
    """A runbook execution: one walk through a pinned runbook for one run."""

    __tablename__ = "runbook_execs"
    __table_args__ = (Index("ix_runbook_execs_run", "run_id", "started_at"),)
    id: str = Field(primary_key=True, max_length=64)
    runbook: str = Field(max_length=255)
    version: int = 0
    title: str = Field(default="", max_length=255)
    digest: str = Field(max_length=64)  # sha256 of the runbook file, pinned at start
    run_id: str = Field(max_length=64)
    # active | running | awaiting_approval | blocked | completed | escalated | denied | aborted
    status: str = Field(max_length=24)
    current_step: str | None = Field(default=None, max_length=255)
    requested_by: str = Field(max_length=128)
    owner: str | None = Field(default=None, max_length=128)  # the automation's owner
    backup_ref: str | None = Field(default=None, max_length=512)
    started_at: str = Field(max_length=40)
    updated_at: str = Field(max_length=40)
    finished_at: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, sa_column=Column(Text))


class RunbookStep(SQLModel, table=True):
    """One step of an execution: its state and the evidence of its last result."""

    __tablename__ = "runbook_steps"
    exec_id: str = Field(primary_key=True, max_length=64)
    step_id: str = Field(primary_key=True, max_length=255)
    idx: int
    kind: str = Field(max_length=16)
    # pending | ready | running | done | failed | awaiting_approval | approved | denied | expired
    state: str = Field(max_length=24)
    attempts: int = 0
    by: str | None = Field(default=None, max_length=128)
    started_at: str | None = Field(default=None, max_length=40)
    finished_at: str | None = Field(default=None, max_length=40)
    outcome: str | None = Field(default=None, max_length=24)
    output_digest: str | None = Field(default=None, max_length=64)
    result: str | None = Field(default=None, sa_column=Column(Text))  # canonical JSON
    request_no: int = 0  # the current approval request (approval steps)
    plan_digest: str | None = Field(default=None, max_length=64)
    requested_at: str | None = Field(default=None, max_length=40)
    expires_at: str | None = Field(default=None, max_length=40)
    requirement: str | None = Field(default=None, sa_column=Column(Text))  # canonical JSON


class Approval(SQLModel, table=True):
    """An approval or a denial, as given (``seq`` of its event)."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_exec", "exec_id", "step_id", "request_no"),)
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    exec_id: str = Field(max_length=64)
    step_id: str = Field(max_length=255)
    request_no: int
    run_id: str = Field(max_length=64)
    decision: str = Field(max_length=16)  # approved | denied
    state: str = Field(max_length=16)  # given | void (plan changed) | expired
    approver: str = Field(max_length=128)
    roles: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON list
    comment: str | None = Field(default=None, sa_column=Column(Text))
    plan_digest: str = Field(max_length=64)
    runbook_digest: str = Field(max_length=64)
    head_seq: int
    ts: str = Field(max_length=40)


class TargetLock(SQLModel, table=True):
    """A target locked by a runbook execution (``seq`` of the lock event)."""

    __tablename__ = "target_locks"
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    target: str = Field(max_length=512, index=True)
    exec_id: str = Field(max_length=64)
    run_id: str = Field(max_length=64)
    locked_at: str = Field(max_length=40)
    released_at: str | None = Field(default=None, max_length=40)


class PrunedState(SQLModel, table=True):
    """Projection rows that pruned events touched, as they stood when ``journal prune`` ran
    (``prune_seq``: its ``journal.pruned`` event, which holds their digest). ``verify`` replays
    projections from these rows onward, since the pruned payloads cannot be replayed."""

    __tablename__ = "pruned_state"
    prune_seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    tbl: str = Field(primary_key=True, max_length=64)
    key_text: str = Field(primary_key=True, max_length=1024)  # canonical JSON list of the key
    row: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON object


class PrunePermit(SQLModel, table=True):
    """Seq ranges whose payloads may be replaced by a tombstone, inside the one transaction of
    ``journal prune`` (the append-only triggers consult it; the prune deletes it again)."""

    __tablename__ = "prune_permits"
    lo: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    hi: int


PROJECTION_TABLES = (
    "runs",
    "steps",
    "segments",
    "operations",
    "checkpoints",
    "runbook_execs",
    "runbook_steps",
    "approvals",
    "target_locks",
)


def table_of(model: Any) -> Table:
    """The Core table of a SQLModel class (hot paths use Core, not the ORM)."""
    return cast(Table, model.__table__)


ALL_MODELS = (
    Meta,
    Head,
    Event,
    Run,
    Step,
    Segment,
    Operation,
    Checkpoint,
    Snapshot,
    Lease,
    RunbookExec,
    RunbookStep,
    Approval,
    TargetLock,
    PrunedState,
    PrunePermit,
)
