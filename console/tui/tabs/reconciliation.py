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
            ": findings by class and their row diffs arrive with the reconciliation service."
            " Listed: this run's snapshots, reconciliations, fixes and drift flags.",
            style="dim",
        )
        return t
