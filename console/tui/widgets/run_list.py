"""The runs list: every run, newest first, 10,000 of them as cheaply as ten."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text

from console.tui import data, fmt, look
from console.tui.widgets.columns import Column, Layout
from console.tui.widgets.virtual_list import VirtualList

NARROW = (
    Column("status", "status", 13, 100),
    Column("id", "run", 8, 90),
    Column("changeset", "change set", 12, 100, flex=True),
    Column("started", "started", 11, 80),
    Column("duration", "took", 6, 40, "right"),
    Column("applied", "applied", 7, 70, "right"),
    Column("problems", "fail/confl", 10, 75, "right"),
    Column("flags", "", 3, 60),
)
WIDE = (
    Column("status", "status", 18, 100),
    Column("id", "run", 8, 90),
    Column("changeset", "change set", 20, 100, flex=True),
    Column("automation", "automation", 20, 30),
    Column("target", "target", 18, 20),
    Column("started", "started (UTC)", 14, 80),
    Column("duration", "took", 7, 40, "right"),
    Column("applied", "applied", 8, 70, "right"),
    Column("failed", "failed", 7, 75, "right"),
    Column("conflicts", "conflicts", 9, 74, "right"),
    Column("flags", "flags", 11, 60),
)


class RunList(VirtualList[data.RunRow]):
    HELP_TITLE = "Runs list"
    EMPTY_TEXT = "No runs match. Press / to change the filter, esc to clear it."
    COLUMNS: ClassVar[tuple[Column, ...]] = NARROW

    def __init__(self, *, now: float | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.now = now  # for the duration of runs still going

    def columns_for(self, width: int) -> tuple[Column, ...]:
        return WIDE if width >= 120 else NARROW

    def render_row(self, row: data.RunRow, layout: Layout) -> Text:
        wide = layout.has("automation")
        end = row.finished_at
        took = fmt.span(row.started_at, end)
        if end is None and row.started_at and self.now is not None:
            start = fmt.epoch(row.started_at)
            took = None if start is None else max(0.0, self.now - start)
        problems = Text()
        if row.rows_failed:
            problems.append(f"✗{row.rows_failed:,}", style="bold red")
        if row.rows_conflict:
            problems.append(" " if problems else "")
            problems.append(f"⚠{row.rows_conflict:,}", style="bold yellow")
        if not problems:
            problems = Text("·", style="dim")
        kind = "" if row.kind == "apply" else f" [{row.kind}]"
        changeset = Text(f"{row.changeset} v{row.version}")
        if kind:
            changeset.append(kind, style="magenta")
        cells: dict[str, Text | str] = {
            "status": look.status(row.status),
            "id": Text(row.id[:8], style="dim" if not wide else ""),
            "changeset": changeset,
            "automation": Text(row.automation or "manual", style="" if row.automation else "dim"),
            "target": look.short_target(row.target),
            "started": fmt.date_time(row.created_at, short=True)
            if not wide
            else f"{row.created_at[5:10]} {row.created_at[11:19]}",
            "duration": Text(fmt.duration(took), style="dim" if end is None else ""),
            "applied": f"{row.rows_applied:,}",
            "failed": look.count(row.rows_failed, "✗", "bold red"),
            "conflicts": look.count(row.rows_conflict, "⚠", "bold yellow"),
            "problems": problems,
            "flags": look.flags(row.drifted, row.drill, row.dry_run, words=wide),
        }
        return layout.line(cells)
