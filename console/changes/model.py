"""The change-set model: what a batch intends to change (DESIGN.md "Change sets")."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

OnError = Literal["pause", "rollback", "continue"]
OpName = Literal["insert", "update", "delete", "upsert"]


@dataclass(frozen=True)
class Operation:
    """One row. ``key``: key column -> value. ``values``: for update the columns to set, for
    insert and upsert the whole row (key columns included); empty for delete."""

    op: OpName
    key: Mapping[str, Any]
    values: Mapping[str, Any]
    line: int | None = None  # source line (YAML, CSV) for messages


@dataclass(frozen=True)
class Invariant:
    name: str
    sql: str
    expect: Any


@dataclass(frozen=True)
class Touchpoints:
    """The blast radius, shown to operators and approvers."""

    source: str | None = None
    writes: Sequence[str] = ()
    readers: Sequence[str] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "writes": list(self.writes), "readers": list(self.readers)}


@dataclass(frozen=True)
class Step:
    name: str
    table: str
    key: tuple[str, ...]
    # Re-iterable: each call reads the operations again (CSV streams from the file).
    operations: Callable[[], Iterator[Operation]]
    count: int
    invariants: Sequence[Invariant] = ()
    on_error: OnError | None = None  # None: the change set's
    target: str | None = None  # None: the change set's
    line: int | None = None
    # How to reconcile this table (``normalise``, ``group_by``): how to check, not what to
    # write, so outside the digest. Journaled with the step's baseline.
    reconcile: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    segment_size: int = 100
    on_error: OnError = "pause"
    max_failed_ratio: float = 0.0
    on_existing_insert: Literal["refuse", "conflict"] = "refuse"


@dataclass(frozen=True)
class ChangeSet:
    name: str
    version: int
    digest: str  # sha256 of the canonical content
    target: str | None
    steps: Sequence[Step]
    options: Options = field(default_factory=Options)
    automation: str | None = None
    description: str | None = None
    touchpoints: Touchpoints = field(default_factory=Touchpoints)
    source: str = "<memory>"  # file path, for messages

    @property
    def rows(self) -> int:
        return sum(s.count for s in self.steps)


@dataclass(frozen=True)
class Problem:
    """One validation error: file, line, field and what to do."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}
