"""SQL targets: reflected tables, exact values, and segments applied in one transaction."""

from console.targets.resolve import environment_of, open_target
from console.targets.sql import SqlTarget, classify, sqlalchemy_url
from console.targets.types import (
    Aggregates,
    ColumnInfo,
    KeyTuple,
    Row,
    RowWrite,
    SegmentError,
    TableInfo,
    TransientError,
    WriteOutcome,
)
from console.targets.values import coerce, from_db, key_tuple, normalize, same, to_db

__all__ = [
    "Aggregates",
    "ColumnInfo",
    "KeyTuple",
    "Row",
    "RowWrite",
    "SegmentError",
    "SqlTarget",
    "TableInfo",
    "TransientError",
    "WriteOutcome",
    "classify",
    "coerce",
    "environment_of",
    "from_db",
    "key_tuple",
    "normalize",
    "open_target",
    "same",
    "sqlalchemy_url",
    "to_db",
]
