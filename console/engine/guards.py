"""Guards checked after every segment: invariants (trusted SQL) and the circuit breaker."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from console.changes.model import Invariant
from console.errors import BadInput
from console.targets.sql import SqlTarget


@dataclass(frozen=True)
class Trip:
    reason: str
    payload: dict[str, Any]


def _same_value(actual: Any, expected: Any) -> bool:
    try:
        return Decimal(str(actual)) == Decimal(str(expected))
    except InvalidOperation:
        return str(actual) == str(expected)


def _trip(inv: Invariant, seg_no: int, actual: Any, reason: str) -> Trip:
    payload = {
        "invariant": inv.name,
        "sql": inv.sql,
        "expected": inv.expect,
        "actual": actual,
        "seg_no": seg_no,
    }
    return Trip(reason, payload)


def check_invariants(target: SqlTarget, invariants: list[Invariant], seg_no: int) -> Trip | None:
    """Invariant SQL is trusted configuration; it runs read-only with the operator's rights."""
    for inv in invariants:
        try:
            actual = target.scalar(inv.sql)
        except BadInput as exc:  # e.g. it tried to write: pause the run (resumable), not exit 2
            return _trip(inv, seg_no, None, f"invariant '{inv.name}' could not run: {exc}")
        trip = _judge(inv, actual, seg_no)
        if trip:
            return trip
    return None


def judge_probed(invariants: list[Invariant], probed: list[Any], seg_no: int) -> Trip | None:
    """A dry run's invariants, as its segment's transaction saw them before rolling back."""
    for inv, actual in zip(invariants, probed, strict=False):
        trip = _judge(inv, actual, seg_no)
        if trip:
            return trip
    return None


def _judge(inv: Invariant, actual: Any, seg_no: int) -> Trip | None:
    if _same_value(actual, inv.expect):
        return None
    reason = f"invariant '{inv.name}' returned {actual!r}, expected {inv.expect!r}"
    return _trip(inv, seg_no, actual, reason)


def breaker(processed: int, bad: int, max_ratio: float) -> str | None:
    """Pause once the share of failed and conflicting rows passes ``max_ratio``."""
    if processed and bad / processed > max_ratio:
        return (
            f"circuit breaker: {bad} of {processed} rows failed or conflicted "
            f"({bad / processed:.1%} > {max_ratio:.1%})"
        )
    return None
