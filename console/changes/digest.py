"""The canonical digest of a change set, computed incrementally.

The digest is sha256 over lines of canonical JSON: one for the change set's header (name,
version, target, options with defaults filled in, touchpoints), then per step one for the step
(name, table, key, target, on_error, invariants) followed by one per operation
(``[op, key, values]``). Formatting, comments, key order and the file format do not change it;
free text (``automation``, ``description``) and source lines are not part of it. Operations
are fed one by one, so a CSV of a million rows is hashed without holding it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from console.canonical import canonical_bytes
from console.changes.model import Invariant, Options, Touchpoints


class ContentDigest:
    def __init__(
        self,
        name: str,
        version: int,
        target: str | None,
        options: Options,
        touchpoints: Touchpoints,
    ) -> None:
        self._hash = hashlib.sha256()
        self._line(
            {
                "changeset": name,
                "version": version,
                "target": target,
                "options": {
                    "segment_size": options.segment_size,
                    "on_error": options.on_error,
                    "max_failed_ratio": options.max_failed_ratio,
                    "on_existing_insert": options.on_existing_insert,
                },
                "touchpoints": touchpoints.as_dict(),
            }
        )

    def _line(self, value: Any) -> None:
        self._hash.update(canonical_bytes(value))
        self._hash.update(b"\n")  # canonical JSON never contains a raw newline

    def step(
        self,
        name: str,
        table: str,
        key: tuple[str, ...],
        target: str | None,
        on_error: str | None,
        invariants: tuple[Invariant, ...],
    ) -> None:
        self._line(
            {
                "step": name,
                "table": table,
                "key": list(key),
                "target": target,
                "on_error": on_error,
                "invariants": [
                    {"name": i.name, "sql": i.sql, "expect": i.expect} for i in invariants
                ],
            }
        )

    def op(self, op: str, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        self._line([op, dict(key), dict(values)])

    def flat_op(self, encoder: FlatOps, cells: Sequence[str | None]) -> None:
        """Same bytes as ``op`` for a flat record, without building the operation."""
        self._hash.update(encoder.line(cells).encode("utf-8"))
        self._hash.update(b"\n")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class FlatOps:
    """Canonical ``[op, key, values]`` lines for flat records (CSV rows: text or NULL).

    A million-row CSV is hashed on load; building dicts and running the JSON encoder per row
    costs several times this. The bytes are exactly ``canonical_json([op, key, values])``:
    sorted keys, no spaces, non-ASCII kept (a test holds both paths equal).
    """

    def __init__(
        self, op: str, key: Sequence[tuple[str, int]], values: Sequence[tuple[str, int]]
    ) -> None:
        self._head = f"[{encode_basestring(op)},{{"
        self._key = [(encode_basestring(c) + ":", i) for c, i in sorted(key)]
        self._values = [(encode_basestring(c) + ":", i) for c, i in sorted(values)]

    def line(self, cells: Sequence[str | None]) -> str:
        key = ",".join(name + _json_text(cells[i]) for name, i in self._key)
        values = ",".join(name + _json_text(cells[i]) for name, i in self._values)
        return f"{self._head}{key}}},{{{values}}}]"


def _json_text(cell: str | None) -> str:
    return "null" if cell is None else str(encode_basestring(cell))
