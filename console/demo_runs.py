"""The demo's runs. Each is produced by the real engine against the sandbox CRM."""

from __future__ import annotations

from console.demo import Workspace
from console.journal import Journal


def populate(ws: Workspace, journal: Journal) -> None:
    """Fill the demo journal once (idempotent: an existing demo journal is reused)."""
    if journal.count_runs(drills=None):
        return
    # The journaled apply engine produces the demo runs (issue: journaled batch apply).
