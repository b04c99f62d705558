"""The rollback plan: every inverse operation, newest first, and every conflict known now.

An inverse is planned for each operation of the run that is still ``applied`` (so a row is
never reverted twice) and in scope (steps, keys). An interrupted apply leaves its last segment
in doubt (operations ``pending``: intent journaled, outcome not); the target settles each such
row here, as resume would: equal to the before-image → never written, nothing to revert; equal
to the after-image → written, reverted like an applied one; anything else → a conflict. So a
rollback never needs the bad batch resumed first. The row must still equal the after-image
the run wrote; otherwise it is a conflict (someone wrote after us) with its three versions.
The plan's sha256 is what an approval binds to.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.canonical import canonical_json, digest, loads
from console.engine.segments import JournalOp, matches
from console.journal import Journal
from console.journal.models import Operation, Run
from console.targets.sql import SqlTarget
from console.targets.types import OpKind, Row
from console.targets.values import key_tuple

PAGE = 2000


@dataclass(frozen=True)
class Scope:
    steps: tuple[str, ...] = ()
    keys: tuple[Row, ...] = ()  # each a key dict; empty: every key

    @property
    def whole(self) -> bool:
        return not self.steps and not self.keys

    def as_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "keys": [dict(k) for k in self.keys]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scope:
        return cls(tuple(data.get("steps", [])), tuple(data.get("keys", [])))


@dataclass(frozen=True)
class Inverse:
    """One planned inverse: restore ``parent_op``'s row from ``expect`` to ``restore``."""

    parent_op: int
    step_no: int
    table: str
    key: Row
    kind: OpKind
    expect: Row | None  # what the run wrote (the row must still be this)
    restore: Row | None  # what the row becomes (None: deleted)
    set_columns: tuple[str, ...]
    now: Row | None  # the row as read when planning
    conflict: bool

    def journal_op(self, op_no: int, idem: str, *, force: bool = False) -> JournalOp:
        """The rollback run's operation. ``force`` expects the row as it is now instead."""
        before = self.now if force else self.expect
        if self.kind == "update":
            assert before is not None and self.restore is not None
            restore_vals = {c: self.restore[c] for c in self.set_columns}
            after: Row | None = {**before, **restore_vals}
            inverse: dict[str, Any] = {
                "op": "update",
                "set": {c: before.get(c) for c in self.set_columns},
            }
        elif self.kind == "delete":
            after, inverse = None, {"op": "insert", "row": before}
        else:
            after, inverse = self.restore, {"op": "delete"}
        return JournalOp(
            op_no, self.table, self.kind, self.key, before, after, inverse, idem, self.parent_op
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "parent_op": self.parent_op,
            "table": self.table,
            "key": self.key,
            "op": self.kind,
            "expect": self.expect,
            "restore": self.restore,
            "now": self.now,
            "conflict": self.conflict,
        }


@dataclass
class RollbackPlan:
    run: Run
    scope: Scope
    items: list[Inverse] = field(default_factory=list)  # newest first

    @property
    def conflicts(self) -> list[Inverse]:
        return [i for i in self.items if i.conflict]

    @property
    def digest(self) -> str:
        return digest(
            {
                "run": self.run.id,
                "scope": self.scope.as_dict(),
                "items": [i.as_dict() for i in self.items],
            }
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run.id,
            "plan_digest": self.digest,
            "scope": self.scope.as_dict(),
            "inverses": len(self.items) - len(self.conflicts),
            "conflicts": [conflict_dict(i) for i in self.conflicts],
            "operations": [i.as_dict() for i in self.items],
        }


def conflict_dict(i: Inverse) -> dict[str, Any]:
    return {
        "parent_op": i.parent_op,
        "table": i.table,
        "key": i.key,
        "before": i.restore if i.kind != "delete" else None,
        "ours": i.expect,
        "now": i.now,
    }


def inverse_of(op: Operation) -> tuple[OpKind, Row | None, Row | None, tuple[str, ...]]:
    """(inverse kind, the image to expect, the image to restore, columns set)."""
    before, after, inverse = loads(op.before), loads(op.after), loads(op.inverse)
    if op.op == "insert":
        return "delete", after, None, ()
    if op.op == "delete":
        return "insert", None, before, ()
    cols = tuple(inverse.get("set", {}))
    return "update", after, before, cols


def _unwritten(op: Operation) -> Row | None:
    """The row as it was before ``op``: what an unwritten in-doubt row still equals."""
    return None if op.op == "insert" else loads(op.before)


def applied_ops(journal: Journal, run: Run, scope: Scope, exclude: set[int]) -> Iterator[Operation]:
    """The run's still-applied (or in-doubt) operations in scope, newest first (keyset
    pages)."""
    steps = {s.step_no for s in journal.steps(run.id) if s.name in scope.steps}
    wanted = {canonical_json(k) for k in scope.keys} if scope.keys else None
    after = 0
    while True:
        page = journal.operations(
            run.id, after_op=after, limit=PAGE, status=["applied", "pending"], newest_first=True
        )
        for op in page:
            if op.op_no in exclude or (scope.steps and op.step_no not in steps):
                continue
            if wanted is not None and not _key_in(op, wanted):
                continue
            yield op
        if len(page) < PAGE:
            return
        after = page[-1].op_no


def _key_in(op: Operation, wanted: set[str]) -> bool:
    key = loads(op.key)
    return (
        canonical_json(key) in wanted
        or canonical_json({k: str(v) for k, v in key.items()}) in wanted
    )


def build_plan(
    journal: Journal,
    run: Run,
    scope: Scope,
    target_for: Any,
    *,
    exclude: Sequence[int] = (),
) -> RollbackPlan:
    """Plan the rollback of ``run``; ``target_for(step_no) -> SqlTarget`` opens targets."""
    plan = RollbackPlan(run, scope)
    skip = set(exclude)
    batch: list[Operation] = []

    def flush() -> None:
        by_table: dict[tuple[int, str], list[Operation]] = {}
        for op in batch:
            by_table.setdefault((op.step_no, op.tbl), []).append(op)
        now_rows: dict[int, Row | None] = {}
        for (step_no, table), ops in by_table.items():
            target: SqlTarget = target_for(step_no)
            info = target.table(table)
            key_cols = tuple(loads(ops[0].key))
            found = target.read_rows(table, key_cols, [loads(o.key) for o in ops])
            for o in ops:
                now_rows[o.op_no] = found.get(key_tuple(info, key_cols, loads(o.key)))
            for o in ops:
                kind, expect, restore, cols = inverse_of(o)
                now = now_rows[o.op_no]
                unwritten = o.status == "pending" and not matches(info, now, expect)
                if unwritten and matches(info, now, _unwritten(o)):
                    continue  # in doubt and never written: nothing to revert
                plan.items.append(
                    Inverse(
                        o.op_no,
                        o.step_no,
                        table,
                        loads(o.key),
                        kind,
                        expect,
                        restore,
                        cols,
                        now,
                        not matches(info, now, expect),
                    )
                )
        batch.clear()

    for op in applied_ops(journal, run, scope, skip):
        batch.append(op)
        if len(batch) >= PAGE:
            flush()
    flush()
    plan.items.sort(key=lambda i: -i.parent_op)
    return plan
