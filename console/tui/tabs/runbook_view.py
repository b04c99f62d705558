"""What the runbook wizard shows: executions and their steps, the preview of an action, how
an action's outcome reads. Pure rendering over ``data.ExecView`` and the service's preview."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.text import Text
from textual.notifications import SeverityLevel

from console.errors import Exit
from console.tui import data, fmt

if TYPE_CHECKING:
    from console.runbook import service

STATE = {
    "done": ("✓", "green"),
    "running": ("▶", "bold cyan"),
    "ready": ("○", "bold"),
    "pending": ("·", "dim"),
    "failed": ("✗", "bold red"),
    "denied": ("⊗", "bold red"),
    "expired": ("⌛", "bold yellow"),
    "awaiting_approval": ("◎", "bold blue"),
    "approved": ("✓", "green"),
    "blocked": ("⊘", "bold red"),
    "stale": ("↻", "bold yellow"),
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


# How an action's exit code reads: mark, style, notification severity.
OUTCOME: dict[Exit, tuple[str, str, SeverityLevel]] = {
    Exit.DONE: ("✓ ", "green", "information"),
    Exit.REVIEW: ("! needs review: ", "bold yellow", "warning"),
    Exit.BLOCKED: ("⊘ refused: ", "bold red", "error"),
    Exit.BAD_INPUT: ("✗ ", "bold red", "error"),
    Exit.FAILED: ("✗ failed: ", "bold red", "error"),
}
WAITING = ("awaiting_approval", "blocked")


def current_exec(execs: list[data.ExecView]) -> data.ExecView | None:
    """The execution the wizard acts on: the newest one still open."""
    from console.runbook.state import FINAL

    return next((e for e in execs if e.status not in FINAL), None)


def preview_text(preview: service.Preview) -> Text:
    t = Text()
    for n, line in enumerate(preview.lines):
        if n:
            t.append("\n")
        style = "bold" if line.startswith(("plan sha256", "journal ")) else ""
        t.append(line, style=style)
    return t
