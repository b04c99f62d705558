"""The Reconciliation tab. The three-way reconciliation service is not there yet: this tab
says so and lists what the journal holds (snapshots, ``reconcile.*``, ``fix.*``, drift)."""

from __future__ import annotations

from rich.text import Text

from console.tui.describe import RECONCILE_KINDS
from console.tui.tabs.journal_pane import JournalPane


class ReconciliationPane(JournalPane):
    TAB_ID = "reconciliation"
    TAB_TITLE = "Reconciliation"
    HELP_TITLE = "Reconciliation"
    KINDS = RECONCILE_KINDS
    EMPTY = "No snapshot, reconciliation or fix events for this run yet."

    def notice(self) -> Text:
        t = Text()
        t.append("◌ Reconciliation is not available yet", style="bold")
        t.append(
            " in this build: summaries by class, findings and row diffs (baseline / expected /"
            " actual) arrive with the reconciliation service. Below: the snapshots,"
            " reconciliations, fixes and drift flags the journal holds for this run.",
            style="dim",
        )
        return t
