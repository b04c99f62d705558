"""Flat records (CSV rows, JSON objects with ``--op``) → operations, and the arguments that
describe them (``--table``, ``--key``, ``--op``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from console.changes.model import Operation, OpName, Problem

OPS: tuple[OpName, ...] = ("insert", "update", "delete", "upsert")


def record_operation(
    op: OpName, key: tuple[str, ...], record: Mapping[str, Any], line: int | None
) -> Operation:
    """A record holds the key columns plus, for update, the columns to set and, for insert
    and upsert, the whole row; a delete needs only the key columns."""
    key_values = {c: record[c] for c in key if c in record}
    if op == "update":
        values = {c: v for c, v in record.items() if c not in key}
    elif op == "delete":
        values = {}
    else:
        values = dict(record)
    return Operation(op, key_values, values, line)


def key_columns(key: Sequence[str] | str | None) -> tuple[str, ...]:
    """``--key`` as columns; a single string may list them comma-separated."""
    if key is None:
        return ()
    parts = key.split(",") if isinstance(key, str) else list(key)
    return tuple(p.strip() for p in parts)


def check_arguments(
    file: str, table: str | None, key: tuple[str, ...], op: str | None, *, need_op: bool
) -> list[Problem]:
    """Problems with ``--table``, ``--key`` and ``--op`` for a flat file."""
    problems: list[Problem] = []

    def bad(fld: str, message: str) -> None:
        problems.append(Problem(file, None, fld, message))

    if not table or not table.strip():
        bad("--table", "a flat file needs the table it changes; pass --table NAME")
    if not key:
        bad("--key", "a flat file needs its key columns; pass --key COL[,COL...]")
    elif any(not c for c in key):
        bad("--key", "a key column name is empty; pass --key COL[,COL...]")
    elif len(set(key)) != len(key):
        bad("--key", "a key column is named twice; name each once")
    if op is None:
        if need_op:
            bad("--op", f"a CSV file needs its operation; pass --op {'|'.join(OPS)}")
    elif op not in OPS:
        bad("--op", f"'{op}' is not an operation; pass --op {'|'.join(OPS)}")
    return problems


def as_op(op: str | None) -> OpName | None:
    for name in OPS:
        if op == name:
            return name
    return None


def shape_problem(
    op: OpName, key: tuple[str, ...], columns: Sequence[str]
) -> tuple[str, str] | None:
    """(field, message) when the record columns cannot express ``op``, else None."""
    others = [c for c in columns if c not in key]
    if op == "delete" and others:
        return others[0], (
            f"a delete needs only the key columns ({', '.join(key)}); remove "
            f"{', '.join(others[:5])}{'...' if len(others) > 5 else ''}"
        )
    if op == "update" and not others:
        return "columns", "an update needs at least one column besides the key to set"
    return None
