"""The Runbook tab: the run's runbook executions as the journal's projections hold them
(steps, states, approvals and denials, live), and every runbook, approval and gate event.

Running a step and approving from the console are not wired yet: the wizard's actions go
through the runbook service's gate, and belong with the armed (write) mode.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Static

from console.tui import data, fmt
from console.tui.describe import RUNBOOK_KINDS
from console.tui.screens.base import PaletteCommand
from console.tui.tabs.journal_pane import JournalPane

STATE = {
    "done": ("✓", "green"),
    "running": ("▶", "bold cyan"),
    "ready": ("○", "bold"),
    "pending": ("·", "dim"),
    "failed": ("✗", "bold red"),
    "denied": ("⊗", "bold red"),
    "expired": ("⌛", "bold yellow"),
    "awaiting_approval": ("◎", "bold blue"),
    "active": ("▶", "cyan"),
    "completed": ("✓", "green"),
    "escalated": ("↑", "bold yellow"),
    "aborted": ("✗", "dim"),
}


def _state(state: str) -> Text:
    glyph, style = STATE.get(state, ("?", ""))
    return Text(f"{glyph} {state.replace('_', ' ')}", style=style)


def render_execs(execs: list[data.ExecView]) -> Text:
    t = Text()
    for n, ex in enumerate(execs):
        if n:
            t.append("\n")
        t.append(f"{ex.runbook} v{ex.version}", style="bold")
        t.append(f"  exec {ex.id}  ", style="dim")
        t.append_text(_state(ex.status))
        if ex.current_step:
            t.append(f"  at {ex.current_step}")
        t.append(f"  started by {ex.requested_by} {fmt.clock_time(ex.started_at)}", style="dim")
        if ex.reason:
            t.append(f"  · {ex.reason}", style="yellow")
        for step in ex.steps:
            t.append("\n   ")
            t.append_text(_state(step.state))
            t.append(f"  {step.step_id} ({step.kind})")
            if step.attempts > 1:
                t.append(f" ×{step.attempts}", style="dim")
            if step.by:
                t.append(f" by {step.by}", style="dim")
            votes = [g for g in ex.given if g.step_id == step.step_id]
            for g in votes:
                roles = ",".join(json.loads(g.roles)) if g.roles.startswith("[") else g.roles
                mark, style = ("✓", "green") if g.decision == "approved" else ("⊗", "bold red")
                void = "" if g.state == "given" else f" ({g.state})"
                t.append(f"  {mark} {g.approver}", style=style)
                t.append(f" [{roles}]{void}", style="dim")
                if g.comment:
                    t.append(f' "{g.comment}"', style="italic")
            if step.plan_digest:
                t.append(f"  plan {step.plan_digest[:12]}", style="dim")
    return t


class RunbookPane(JournalPane):
    TAB_ID = "runbook"
    TAB_TITLE = "Runbook"
    HELP_TITLE = "Runbook"
    KINDS = RUNBOOK_KINDS
    EMPTY = "No runbook execution, approval or gate decision recorded for this run."

    class Execs(Message):
        def __init__(self, execs: list[data.ExecView]) -> None:
            super().__init__()
            self.execs = execs

    def notice(self) -> Text:
        t = Text()
        t.append("◌ Running steps and approving here is not available yet", style="bold")
        t.append(" (use backout runbook next, backout approve); the state is live.", style="dim")
        return t

    def extra(self) -> ComposeResult:
        yield Static(Text("Loading runbook executions…", style="dim"), id="runbook-state")

    def first_show(self) -> None:
        super().first_show()
        self._load_execs()

    def show_bundle(self, bundle: data.RunBundle, *, changed: bool) -> None:
        super().show_bundle(bundle, changed=changed)
        if changed and self.live:
            self._load_execs()

    @work(thread=True, group="runbook-execs", exclusive=True, exit_on_error=False)
    def _load_execs(self) -> None:
        self.post_message(self.Execs(data.runbook_execs(self.console_app.journal, self.run_id)))

    @on(Execs)
    def _execs(self, message: Execs) -> None:
        message.stop()
        found = self.query("#runbook-state")
        if not found:
            return
        text = (
            render_execs(message.execs)
            if message.execs
            else Text("No runbook execution for this run yet.", style="dim")
        )
        found.first(Static).update(text)

    def palette_commands(self, show: Callable[[], None]) -> Iterable[PaletteCommand]:
        """The wizard's actions for the palette (``show`` brings this tab forward first)."""
        return ()
