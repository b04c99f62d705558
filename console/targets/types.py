"""The contract between change sets, the engine and SQL targets.

Row images are JSON-able dicts in canonical form (``console.canonical``): decimals, dates and
times as strings, bytes as ``{"$b64": ...}``. A target turns them back into exact database
values when it writes, so a rollback writes back byte for byte what it read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from console.errors import BackoutError

ColumnKind = Literal[
    "int", "decimal", "float", "text", "bool", "date", "datetime", "time", "bytes", "json", "other"
]
OpKind = Literal["insert", "update", "delete"]
Row = dict[str, Any]
KeyTuple = tuple[Any, ...]


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    kind: ColumnKind
    nullable: bool
    primary_key: bool = False
    scale: int | None = None  # decimal places, when the type declares them
    has_default: bool = False  # an insert may omit it (server default or autoincrement)
    type_name: str = ""  # the database's type, for messages
    # Limits the database enforces on write (None: none, or not enforced, as on SQLite), so
    # that a value past them is refused when the change set is validated, not mid-run.
    length: int | None = None  # characters: VARCHAR(n), CHAR(n)
    digits: int | None = None  # NUMERIC(p, s): p
    int_range: tuple[int, int] | None = None  # SMALLINT, INTEGER, BIGINT, UNSIGNED ...
    # TIMESTAMP(p), DATETIME(p), TIME(p) with p < 6: the fractional-second digits stored. The
    # database drops the rest silently (PostgreSQL rounds, MariaDB truncates), so the
    # after-image is cut the same way, or the run's own write would read as someone else's.
    fraction: int | None = None
    fraction_rounds: bool = False
    # SQLite has no date or time type: the text given is the value (checked, never
    # reformatted), or a backout write would mix '2026-03-01T10:00' into a column of
    # '2026-03-01 10:00' and break every comparison of the text.
    verbatim: bool = False


# ``respell(column, texts)``: per text, in order, its image as the column stores it and None,
# or None and the database's reason to refuse it.
Respell = Callable[[str, Sequence[str]], list[tuple[Any, str | None]]]


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: Mapping[str, ColumnInfo]  # in table order
    primary_key: tuple[str, ...]
    # Asks the database about the values of columns backout passes through (kind "other":
    # UUID, interval, money, inet, domains...), which only it can check and spell; None
    # where there are none, or the database cannot be asked (SQLite has no such types).
    respell: Respell | None = field(default=None, compare=False, repr=False)

    def has(self, column: str) -> bool:
        return column in self.columns


@dataclass(frozen=True)
class RowWrite:
    """One row of a segment: what the row must be now, and what to write.

    Forward apply: ``expect`` is the baseline (before-image), ``write`` the after-image.
    Rollback: ``expect`` is the after-image the run wrote, ``write`` the before-image.
    ``expect is None`` means the row must be absent; ``write is None`` means delete it.
    For ``update``, ``write`` holds only the columns to set; ``compare`` limits which
    columns of ``expect`` are compared (None: every column in ``expect``).
    """

    op_no: int
    kind: OpKind
    key: Row
    expect: Row | None
    write: Row | None
    compare: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WriteOutcome:
    op_no: int
    status: Literal["applied", "conflict", "failed"]
    now: Row | None = None  # the row as found (conflicts)
    error: str | None = None


@dataclass(frozen=True)
class Aggregates:
    count: int
    sums: Mapping[str, str] = field(default_factory=dict)  # numeric column -> exact sum as text

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "sums": dict(self.sums)}


class TransientError(Exception):
    """Database locked, connection dropped, serialization failure, deadlock: retry."""


class TargetBusy(BackoutError, TransientError):
    """A target locked by another process where nothing retries it (reading its schema):
    the engine's loops retry it as any transient error; elsewhere it is one sentence, exit 1."""


class SegmentError(Exception):
    """The segment's transaction failed as a whole (constraint, type, timeout...).

    Nothing of the segment was written. ``op_no`` names the row that caused it, if known.
    """

    def __init__(self, message: str, op_no: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.op_no = op_no
