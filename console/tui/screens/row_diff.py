"""Row diff: before / ours (after) / now side by side, field by field.

A changed field is highlighted and marked (``≠`` this batch changed it, ``⚠`` someone
changed it after us), so the difference shows without colour too. Long values wrap; JSON
values are pretty-printed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.tui import data, fmt, look
from console.tui.diff import MISSING, RowDiff, row_diff
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.key_bar import KeyBar

TITLES = {"before": "before", "ours": "ours (after)", "now": "now"}


def cell(value: Any, style: str = "", *, pretty: bool = True) -> Text:
    """A value; JSON pretty-printed where it matters (changed fields), compact elsewhere."""
    if value is MISSING:
        return Text("—", style="dim italic")
    if value is None:
        return Text("null", style=f"dim italic {style}".strip())
    if pretty:
        return Text(fmt.pretty(value), style=style)
    return Text(value if isinstance(value, str) else fmt.compact(value, 10_000), style=style)


def render_diff(op: data.OpRow, diff: RowDiff) -> RenderableType:
    table = Table(box=box.SIMPLE_HEAD, expand=True, padding=(0, 1), show_edge=False)
    table.add_column("", width=2, no_wrap=True)
    table.add_column("field", style="bold", overflow="fold", ratio=1, min_width=10)
    for image in diff.images:
        table.add_column(TITLES[image], overflow="fold", ratio=2)
    changed = drifted = 0
    for f in diff.fields:
        changed += f.changed
        drifted += f.drifted
        mark = Text()
        if f.changed:
            mark.append("≠", style="bold green")
        if f.drifted:
            mark.append("⚠", style="bold yellow")
        if not mark:
            mark.append("=", style="dim")
        loud = f.changed or f.drifted
        quiet = "" if loud else "dim"
        cells = [
            mark,
            Text(f.field, style="bold reverse" if loud else "dim"),
            cell(f.before, "red" if f.changed else quiet, pretty=loud),
            cell(f.ours, "bold green" if f.changed else quiet, pretty=loud),
        ]
        if "now" in diff.images:
            cells.append(cell(f.now, "bold reverse yellow" if f.drifted else quiet, pretty=loud))
        table.add_row(*cells)
    head = Text()
    head.append(f" op #{op.op_no:,} ", style="bold reverse")
    head.append(f" {op.op} ", style="bold")
    head.append(f"{op.tbl} ")
    head.append(f"{fmt.compact(fmt.loads(op.key), 60)}  ", style="bold")
    head.append_text(look.status(op.status))
    head.append(f"   seg {op.seg_no} · step {op.step_no}", style="dim")
    parts: list[RenderableType] = [head]
    absent = [
        name
        for name, present in zip(
            diff.images, (diff.row_before, diff.row_ours, diff.row_now), strict=False
        )
        if not present
    ]
    if absent:
        parts.append(Text(f" no row in: {', '.join(TITLES[a] for a in absent)}", style="italic"))
    detail = fmt.loads(op.detail) if op.detail else None
    if isinstance(detail, dict) and detail.get("error"):
        parts.append(Text(f" ✗ {detail['error']}", style="bold red"))
    summary = Text(" ")
    ours_names = ", ".join(f.field for f in diff.fields if f.changed)
    summary.append(
        f"≠ {changed} changed by this batch" + (f" ({ours_names})" if ours_names else ""),
        style="bold green" if changed else "dim",
    )
    summary.append("   = unchanged", style="dim")
    if "now" in diff.images:
        theirs = ", ".join(f.field for f in diff.fields if f.drifted)
        summary.append("\n ")
        summary.append(
            f"⚠ {drifted} changed since by someone else" + (f" ({theirs})" if theirs else ""),
            style="bold yellow" if drifted else "dim",
        )
        if drifted:
            summary.append(
                "\n   rollback will not overwrite this row: it goes to review", style="italic"
            )
    parts.extend([summary, table])
    inverse = fmt.loads(op.inverse)
    parts.append(Text(f" inverse: {fmt.compact(inverse, 200)}", style="dim"))
    parts.append(Text(f" idempotency key: {op.idem_key}", style="dim"))
    return Group(*parts)


class DiffScreen(ConsoleScreen):
    """A titled, scrollable diff (subclasses say what: an operation, a finding)."""

    HELP_TITLE = "Row diff"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", id="diff.back"),
        Binding("j,down", "scroll(1)", "Down", show=False, id="diff.down"),
        Binding("k,up", "scroll(-1)", "Up", show=False, id="diff.up"),
        Binding("g,home", "top", "Top", show=False, id="diff.top"),
        Binding("G,end", "bottom", "Bottom", show=False, id="diff.bottom"),
    ]

    def __init__(self, run: data.RunRow | None) -> None:
        super().__init__()
        self.run = run

    def body(self) -> RenderableType:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        title = Text(" row diff ", style="bold reverse")
        if self.run is not None:
            title.append(f"  {self.run.changeset} v{self.run.version} · run {self.run.id}")
        yield Static(title, classes="title")
        with VerticalScroll(id="diff-body"):
            yield Static(self.body(), id="diff")
        yield self.status_bar()
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#diff-body").focus()

    @property
    def scroller(self) -> VerticalScroll:
        return self.query_one("#diff-body", VerticalScroll)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_scroll(self, lines: int) -> None:
        self.scroller.scroll_relative(y=lines, animate=False)

    def action_top(self) -> None:
        self.scroller.scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.scroller.scroll_end(animate=False)


class RowDiffScreen(DiffScreen):
    def __init__(self, op: data.OpRow, run: data.RunRow | None) -> None:
        super().__init__(run)
        self.op = op

    def body(self) -> RenderableType:
        return render_diff(self.op, row_diff(self.op))

    def on_mount(self) -> None:
        super().on_mount()
        self.status.set(run=self.op.run_id[:12], position=f"op #{self.op.op_no:,}")
