"""Cut a validated change set into segments of planned operations, lazily.

Numbering is 1-based and global, in file order: ``op_no`` across all steps, ``seg_no`` across
all segments; a segment never spans two steps (one step, one table, one target transaction).
Each operation carries an idempotency key derived from the change-set digest, the step and the
row key, so the same row of the same change set is recognised in any run, resume or retry.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from console.canonical import canonical_json, sha256_hex
from console.changes.model import ChangeSet, Operation, OpName, Step
from console.changes.validate import Tables, coerced_operations
from console.errors import BadInput
from console.targets.types import TableInfo


@dataclass(frozen=True)
class PlannedOp:
    op_no: int
    step_no: int
    table: str
    op: OpName
    key: Mapping[str, Any]  # canonical values, in the step's key order
    values: Mapping[str, Any]  # canonical values
    idem: str
    line: int | None
    key_json: str | None = None  # canonical JSON of ``key`` (what ``idem`` was derived from)


@dataclass(frozen=True)
class PlannedSegment:
    seg_no: int
    step_no: int
    step: Step
    ops: list[PlannedOp]


def idempotency_key(digest: str, step_name: str, key: Mapping[str, Any]) -> str:
    """sha256 of ``digest|step|canonical key``, first 32 hex characters."""
    return _idem(digest, step_name, key_json(key))


def _idem(digest: str, step_name: str, key_text: str) -> str:
    return sha256_hex(f"{digest}|{step_name}|{key_text}")[:32]


def scalar_json(value: Any) -> str:
    """``canonical_json(value)``, without the encoder's setup for the common key values."""
    t = type(value)
    if t is int:
        return str(value)
    if t is str:
        return encode_basestring(value)  # what the canonical encoder uses (ensure_ascii off)
    if value is None:
        return "null"
    return canonical_json(value)


def key_json(key: Mapping[str, Any]) -> str:
    """``canonical_json(dict(key))``: a flat object, keys sorted."""
    names = list(key)
    if not all(type(n) is str for n in names):
        return canonical_json(dict(key))
    names.sort()
    inner = ",".join(f"{encode_basestring(n)}:{scalar_json(key[n])}" for n in names)
    return "{" + inner + "}"


def plan_segments(
    cs: ChangeSet,
    tables: Tables,
    segment_size: int | None = None,
    coerced: dict[int, list[Operation]] | None = None,
) -> Iterator[PlannedSegment]:
    """The segments of ``cs`` in order; ``segment_size`` overrides the change set's option.

    A generator: a million-row CSV streams through it one segment at a time. ``coerced``:
    steps' operations already read and coerced (by step index, as ``coerced_operations``
    gives them), taken from there instead of reading the change set again.
    """
    size = segment_size if segment_size is not None else cs.options.segment_size
    if size < 1:
        raise BadInput(f"the segment size must be at least 1, not {size}; pass a positive size.")
    op_no = 0
    seg_no = 0
    infos: dict[tuple[str | None, str], TableInfo] = {}
    for step_no, step in enumerate(cs.steps, start=1):
        ref = (step.target or cs.target, step.table)
        if ref not in infos:
            infos[ref] = tables(*ref)
        kept = coerced.pop(step_no - 1, None) if coerced else None
        ops = iter(kept) if kept is not None else coerced_operations(step, infos[ref])
        while chunk := list(itertools.islice(ops, size)):
            planned = []
            for op in chunk:
                op_no += 1
                text = key_json(op.key)
                planned.append(
                    PlannedOp(
                        op_no=op_no,
                        step_no=step_no,
                        table=step.table,
                        op=op.op,
                        key=op.key,
                        values=op.values,
                        idem=_idem(cs.digest, step.name, text),
                        line=op.line,
                        key_json=text,
                    )
                )
            seg_no += 1
            yield PlannedSegment(seg_no, step_no, step, planned)
