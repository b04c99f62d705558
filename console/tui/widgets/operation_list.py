"""A run's operations (a Line API list over keyset pages of ``operations``)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text

from console.tui import data, fmt, look
from console.tui.widgets.columns import Column, Layout
from console.tui.widgets.virtual_list import VirtualList

COLUMNS = (
    Column("op_no", "#", 7, 100, "right"),
    Column("status", "status", 11, 95),
    Column("op", "op", 6, 90),
    Column("seg", "seg", 5, 30, "right"),
    Column("table", "table", 10, 20),
    Column("key", "key", 14, 85),
    Column("change", "before → after", 20, 100, flex=True),
)


def change_summary(op: data.OpRow, limit: int = 4) -> Text:
    """What the operation does to the row, in one line: changed fields, before → after."""
    before = fmt.loads(op.before)
    after = fmt.loads(op.after)
    out = Text()
    if op.op == "insert":
        out.append("+ ", style="green")
        out.append(fmt.compact(after, 120))
        return out
    if op.op == "delete":
        out.append("− ", style="red")
        out.append(fmt.compact(before, 120))
        return out
    if not isinstance(before, dict) or not isinstance(after, dict):
        return Text(f"{fmt.compact(before, 50)} → {fmt.compact(after, 50)}")
    changed = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    for n, k in enumerate(changed[:limit]):
        if n:
            out.append("  ")
        out.append(f"{k} ", style="bold")
        out.append(fmt.compact(before.get(k), 24), style="red")
        out.append(" → ")
        out.append(fmt.compact(after.get(k), 24), style="green")
    if len(changed) > limit:
        out.append(f"  +{len(changed) - limit} more", style="dim")
    if not changed:
        out.append("(no change)", style="dim")
    return out


def key_text(key: str) -> str:
    value: Any = fmt.loads(key)
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value.values())))
    return fmt.compact(value, 40)


class OperationList(VirtualList[data.OpRow]):
    HELP_TITLE = "Operations"
    EMPTY_TEXT = "No operations match."
    COLUMNS: ClassVar[tuple[Column, ...]] = COLUMNS

    def render_row(self, row: data.OpRow, layout: Layout) -> Text:
        cells: dict[str, Text | str] = {
            "op_no": f"{row.op_no:,}",
            "status": look.status(row.status),
            "op": row.op,
            "seg": str(row.seg_no),
            "table": row.tbl,
            "key": key_text(row.key),
            "change": change_summary(row),
        }
        return layout.line(cells)
