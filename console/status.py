"""Run and operation statuses, with a symbol each so colour is never the only signal."""

from __future__ import annotations

RUN_STATUSES = (
    "planned",
    "running",
    "paused",
    "completed",
    "failed",
    "rolling_back",
    "rolled_back",
    "rollback_partial",
)

# What a pause request (`backout pause`, the console's P) stops at its next segment boundary.
PAUSABLE = ("planned", "running")
# What `backout resume` continues (a crashed run still says running: its lease has expired).
RESUMABLE = ("planned", "running", "paused", "failed")

SYMBOL = {
    "planned": "○",
    "running": "▶",
    "paused": "‖",
    "completed": "✓",
    "failed": "✗",
    "rolling_back": "↺",
    "rolled_back": "⟲",
    "rollback_partial": "◐",
    "dry_run": "◌",
    # operations
    "pending": "·",
    "applied": "✓",
    "conflict": "⚠",
    "skipped": "»",
    "reverted": "⟲",
}

STYLE = {
    "planned": "dim",
    "running": "bold cyan",
    "paused": "bold yellow",
    "completed": "green",
    "failed": "bold red",
    "rolling_back": "bold magenta",
    "rolled_back": "magenta",
    "rollback_partial": "bold yellow",
    "pending": "dim",
    "applied": "green",
    "conflict": "bold yellow",
    "skipped": "dim",
    "reverted": "magenta",
}


def label(status: str) -> str:
    return f"{SYMBOL.get(status, '?')} {status}"
