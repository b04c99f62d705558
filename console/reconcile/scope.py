"""The change set's scope as the classifier wants it: B, E and the touched keys."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from console.targets.types import KeyTuple, Row


@dataclass(frozen=True)
class Change:
    """One journaled operation: the row before and after it (None = absent). ``after`` of an
    update may hold only the columns it set; it is laid over ``before``."""

    key: KeyTuple
    before: Row | None
    after: Row | None
    op_no: int | None = None


@dataclass
class Scope:
    baseline: dict[KeyTuple, Row | None] = field(default_factory=dict)
    expected: dict[KeyTuple, Row | None] = field(default_factory=dict)
    touched: dict[KeyTuple, int | None] = field(default_factory=dict)

    @classmethod
    def from_changes(cls, changes: Iterable[Change]) -> Scope:
        """B is the row before the first operation on a key, E the row after the last (a row
        deleted and inserted again by one change set is expected as re-inserted)."""
        s = cls()
        for c in changes:
            k = tuple(c.key)
            if k not in s.touched:
                s.baseline[k] = c.before
            current = s.expected.get(k, c.before)
            if c.after is None:
                s.expected[k] = None
            elif current is not None and c.before is not None:
                s.expected[k] = {**current, **c.after}
            else:
                s.expected[k] = dict(c.after)
            s.touched[k] = c.op_no
        return s

    def changes(self) -> list[tuple[Row | None, Row | None]]:
        """(B, E) per touched key, for the aggregate deltas."""
        return [(self.baseline.get(k), self.expected.get(k)) for k in self.touched]
