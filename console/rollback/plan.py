"""The rollback plan: every inverse operation, newest first, and every conflict known now.

An inverse is planned for each operation of the run that is still ``applied`` (so a row is
never reverted twice) and in scope (steps, keys). An interrupted apply leaves its last segment
in doubt (operations ``pending``: intent journaled, outcome not); the target settles each such
row here, as resume would: equal to the before-image → never written, nothing to revert; equal
to the after-image → written, reverted like an applied one; anything else → a conflict. So a
rollback never needs the bad batch resumed first. The row must still hold what the run wrote
(an update: the columns it set; an insert: the row it inserted); otherwise it is a conflict
(someone wrote after us) with its three versions. Columns an update did not set are not ours:
the database may change them on its own (a trigger's updated_at, a generated column) and the
inverse leaves them as they are. The plan's sha256 is what an approval binds to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from console.canonical import canonical_json, loads
from console.engine.segments import JournalOp, image_text, matches, owned
from console.journal import Journal
from console.journal.models import OperationRow, Run
from console.journal.projections import Encoded
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

    def canonical(self) -> str:
        """``canonical_json(self.as_dict())``, from the images' stored text where they have it."""
        if not (
            type(self.parent_op) is int
            and type(self.conflict) is bool
            and type(self.kind) is str
            and type(self.table) is str
        ):
            return canonical_json(self.as_dict())
        return "".join(
            [
                '{"conflict":',
                "true" if self.conflict else "false",
                ',"expect":',
                image_text(self.expect),
                ',"key":',
                image_text(self.key),
                ',"now":',
                image_text(self.now),
                ',"op":',
                encode_basestring(self.kind),
                ',"parent_op":',
                str(self.parent_op),
                ',"restore":',
                image_text(self.restore),
                ',"table":',
                encode_basestring(self.table),
                "}",
            ]
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
        """sha256 of the canonical JSON of ``{"items": [as_dict()...], "run", "scope"}``,
        hashed as it is put together (stored images keep their text, see ``Encoded``):
        the same bytes, without one dict per item and one encoding of the whole plan."""
        h = hashlib.sha256(b'{"items":[')
        for n, item in enumerate(self.items):
            if n:
                h.update(b",")
            h.update(item.canonical().encode("utf-8"))
        run, scope = canonical_json(self.run.id), canonical_json(self.scope.as_dict())
        h.update(f'],"run":{run},"scope":{scope}}}'.encode())
        return h.hexdigest()

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


def inverse_of(
    op: OperationRow, images: Sequence[Any]
) -> tuple[OpKind, Row | None, Row | None, tuple[str, ...]]:
    """(inverse kind, the image to expect, the image to restore, columns set); ``images`` is
    the operation's decoded ``(key, before, after, inverse)`` (see ``decode_images``)."""
    _key, before, after, inverse = images
    if op.op == "insert":
        return "delete", after, None, ()
    if op.op == "delete":
        return "insert", None, before, ()
    cols = tuple(inverse.get("set", {}))
    return "update", after, before, cols


def decode_images(ops: Sequence[OperationRow]) -> list[tuple[Any, Any, Any, Any]]:
    """Each operation's (key, before, after, inverse), decoded in one ``json.loads`` of the
    page. Objects keep their stored text (``Encoded``: the journal stores canonical JSON), so
    the rollback's intents and plan digest do not encode them again."""
    texts = [t or "null" for o in ops for t in (o.key, o.before, o.after, o.inverse)]
    values = json.loads(f"[{','.join(texts)}]")
    images = [Encoded(v, t) if type(v) is dict else v for v, t in zip(values, texts, strict=True)]
    return [tuple(images[i : i + 4]) for i in range(0, len(images), 4)]  # type: ignore[misc]


def _unwritten(op: OperationRow, before: Row | None) -> Row | None:
    """The row as it was before ``op``: what an unwritten in-doubt row still equals."""
    return None if op.op == "insert" else before


def applied_ops(
    journal: Journal, run: Run, scope: Scope, exclude: set[int]
) -> Iterator[OperationRow]:
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


def _key_forms(key_json: str) -> tuple[str, str]:
    """The texts an operator's key matches an operation's by: as journaled, and with every
    value as text (a key file holds text: '42' is the integer key 42)."""
    key = loads(key_json)
    return canonical_json(key), canonical_json({k: str(v) for k, v in key.items()})


def _key_in(op: OperationRow, wanted: set[str]) -> bool:
    return not wanted.isdisjoint(_key_forms(op.key))


def unmatched_keys(journal: Journal, run_id: str, keys: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indexes of ``keys`` that no operation of the run has, whatever its step or status."""
    left: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        left.setdefault(canonical_json(dict(key)), []).append(i)
    after = 0
    while left:
        page = journal.operations(run_id, after_op=after, limit=PAGE)
        for op in page:
            for form in _key_forms(op.key):
                left.pop(form, None)
        if len(page) < PAGE:
            break
        after = page[-1].op_no
    return sorted(i for found in left.values() for i in found)


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
    batch: list[OperationRow] = []

    def flush() -> None:
        by_table: dict[tuple[int, str], list[OperationRow]] = {}
        for op in batch:
            by_table.setdefault((op.step_no, op.tbl), []).append(op)
        for (step_no, table), ops in by_table.items():
            target: SqlTarget = target_for(step_no)
            info = target.table(table)
            images = decode_images(ops)
            key_cols = tuple(images[0][0])
            found = target.read_rows(table, key_cols, [i[0] for i in images])
            for o, image in zip(ops, images, strict=True):
                key = image[0]
                now = found.get(key_tuple(info, key_cols, key))
                kind, expect, restore, cols = inverse_of(o, image)
                written = matches(info, now, owned(expect, cols))
                if (
                    o.status == "pending"
                    and not written
                    and matches(info, now, owned(_unwritten(o, image[1]), cols))
                ):
                    continue  # in doubt and never written: nothing to revert
                plan.items.append(
                    Inverse(
                        o.op_no,
                        o.step_no,
                        table,
                        key,
                        kind,
                        expect,
                        restore,
                        cols,
                        now,
                        not written,
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
