"""The Audit tab: who did what on this run, and whether the journal verifies.

Verification recomputes the whole hash chain and the projections, so it runs in its own
worker when the tab is first shown (and again on demand with `v`); the list is usable
meanwhile.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding, BindingType
from textual.message import Message

from console.journal.verify import VerifyReport, verify
from console.tui.describe import AUDIT_KINDS
from console.tui.tabs.journal_pane import JournalPane


class AuditPane(JournalPane):
    TAB_ID = "audit"
    TAB_TITLE = "Audit"
    HELP_TITLE = "Audit"
    KINDS = AUDIT_KINDS
    EMPTY = "No audited action on this run."
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "verify", "Verify journal", id="audit.verify"),
    ]

    class Verified(Message):
        def __init__(self, report: VerifyReport | None, error: str | None) -> None:
            super().__init__()
            self.report = report
            self.error = error

    def __init__(self, run_id: str, *, eager: bool = False) -> None:
        super().__init__(run_id, eager=eager)
        self.report: VerifyReport | None = None
        self.verifying = False

    def first_show(self) -> None:
        super().first_show()
        self.action_verify()

    def notice(self) -> Text:
        t = Text()
        if self.verifying:
            t.append("… verifying the journal's hash chain and projections", style="bold")
            t.append(" (in the background)", style="dim")
        elif self.report is None:
            t.append("◌ journal not verified yet", style="bold")
            t.append("  press v to verify", style="dim")
        elif self.report.ok:
            r = self.report
            t.append("✓ journal verifies", style="bold green")
            t.append(
                f": hash chain and projections intact, {r.events:,} events, head seq "
                f"{r.head_seq:,}",
            )
            if r.notes:
                t.append(f"  ({'; '.join(r.notes)})", style="dim")
        else:
            r = self.report
            t.append("✗ JOURNAL DOES NOT VERIFY", style="bold reverse red")
            where = f" at event {r.first_bad_seq:,}" if r.first_bad_seq else ""
            t.append(f"{where}: {r.problem}", style="bold red")
        t.append(
            "\nWho did what: approvals, denials, forced conflicts, runbook steps, pauses, "
            "resumes, status changes.",
            style="dim",
        )
        return t

    def action_verify(self) -> None:
        if self.verifying:
            return
        self.verifying = True
        self._refresh_notice()
        self._verify()

    @work(thread=True, group="verify", exclusive=True, exit_on_error=False)
    def _verify(self) -> None:
        try:
            report = verify(self.console_app.journal, remember=False)
        except Exception as exc:  # shown in the tab; the console keeps working
            self.post_message(self.Verified(None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.Verified(report, None))

    @on(Verified)
    def _verified(self, message: Verified) -> None:
        self.verifying = False
        self.report = message.report
        if message.error:
            self.notify(f"verify failed: {message.error}", severity="error")
        self._refresh_notice()

    def _refresh_notice(self) -> None:
        from textual.widgets import Static

        if not self.live:
            return
        self.query_one(f"#{self.TAB_ID}-notice", Static).update(self.notice())
