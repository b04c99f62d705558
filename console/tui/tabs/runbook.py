"""The Runbook tab. The runbook wizard needs the runbook service (executor, gate, policy),
which is not there yet: this tab says so and lists the ``runbook.*`` and ``approval.*``
events the journal holds for this run."""

from __future__ import annotations

from rich.text import Text

from console.tui.describe import RUNBOOK_KINDS
from console.tui.tabs.journal_pane import JournalPane


class RunbookPane(JournalPane):
    TAB_ID = "runbook"
    TAB_TITLE = "Runbook"
    HELP_TITLE = "Runbook"
    KINDS = RUNBOOK_KINDS
    EMPTY = "No runbook execution or approval recorded for this run."

    def notice(self) -> Text:
        t = Text()
        t.append("◌ The runbook wizard is not available yet", style="bold")
        t.append(
            " in this build: starting a runbook, running its steps and approving arrive with"
            " the runbook service. Below: the runbook steps and approvals already journaled"
            " for this run.",
            style="dim",
        )
        return t
