"""Reconciliation: where the data stands after a run, row by row and in aggregate.

Pipeline (DESIGN.md "Reconciliation"): key hygiene → keyed fingerprint diff, three-way
(``diff``; pushed down to SQL with ``pushdown``) → aggregate checks (``aggregates``) → lazy
DeepDiff explanation of one flagged row (``explain``) → guarded fix plan (``fixes``).
Declared normalisers (``normalise``) are used by every stage.
"""

from __future__ import annotations

from console.reconcile.aggregates import Deltas, check_aggregates, intended_deltas
from console.reconcile.diff import column_class, reconcile
from console.reconcile.explain import Explainer, Explanation, FieldDiff, explain
from console.reconcile.fingerprint import RowCodec, fingerprint_values, key_text
from console.reconcile.fixes import FixOp, FixPlan, plan_fixes
from console.reconcile.normalise import Normalisers, Rule
from console.reconcile.report import CLASSES, OK_CLASSES, Finding, Mode, Report, Summary
from console.reconcile.scope import Change, Scope

__all__ = [
    "CLASSES",
    "OK_CLASSES",
    "Change",
    "Deltas",
    "Explainer",
    "Explanation",
    "FieldDiff",
    "Finding",
    "FixOp",
    "FixPlan",
    "Mode",
    "Normalisers",
    "Report",
    "RowCodec",
    "Rule",
    "Scope",
    "Summary",
    "check_aggregates",
    "column_class",
    "explain",
    "fingerprint_values",
    "intended_deltas",
    "key_text",
    "plan_fixes",
    "reconcile",
]
