"""Change sets: the model, loaders (YAML/JSON/CSV), validation against reflected tables and
the planner that cuts steps into segments with idempotency keys."""

from console.changes.errors import ChangeSetInvalid
from console.changes.loaders import load_changeset
from console.changes.model import (
    ChangeSet,
    Invariant,
    Operation,
    Options,
    Problem,
    Step,
    Touchpoints,
)
from console.changes.planner import PlannedOp, PlannedSegment, idempotency_key, plan_segments
from console.changes.validate import Tables, coerced_operations, validate

__all__ = [
    "ChangeSet",
    "ChangeSetInvalid",
    "Invariant",
    "Operation",
    "Options",
    "PlannedOp",
    "PlannedSegment",
    "Problem",
    "Step",
    "Tables",
    "Touchpoints",
    "coerced_operations",
    "idempotency_key",
    "load_changeset",
    "plan_segments",
    "validate",
]
