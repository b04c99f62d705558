"""The Reconciliation tab: the latest reconciliation's summary by class, its findings worst
first in a Line API list (each opens a row diff), and ``r`` to reconcile again.

Opening the tab reads the journal only (the latest ``reconcile.finished``, which keeps the
counts and the worst findings): it never touches the target unasked. ``r`` reconciles the run
against the target in a thread worker and lists every finding. Journaling: read-only, the
result is computed and shown but not journaled (nothing is written anywhere); armed (``A``),
it is journaled as the CLI does (``reconcile.finished`` and ``run.drift``). Evidence is
append-only and changes no data, so it needs no confirmation beyond arming.
"""

from __future__ import annotations

import time
from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from console.tui import data, fmt, look
from console.tui.tabs.base import RunPane
from console.tui.widgets.columns import Column, Layout
from console.tui.widgets.virtual_list import VirtualList

COLUMNS = (
    Column("class", "class", 20, 100),
    Column("table", "table", 10, 40),
    Column("key", "key", 12, 90),
    Column("op", "op", 6, 30, "right"),
    Column("columns", "columns", 16, 80, flex=True),
)


def _key(key: tuple[object, ...]) -> str:
    if not key:
        return "(whole table)"  # a table aggregate
    return fmt.compact(key[0] if len(key) == 1 else list(key), 40)


class FindingList(VirtualList[data.FindingRow]):
    HELP_TITLE = "Findings"
    EMPTY_TEXT = "No findings."
    COLUMNS: ClassVar[tuple[Column, ...]] = COLUMNS

    def render_row(self, row: data.FindingRow, layout: Layout) -> Text:
        f = row.finding
        cells: dict[str, Text | str] = {
            "class": look.finding(f.cls),
            "table": row.table,
            "key": _key(f.key),
            "op": f"{f.op_no:,}" if f.op_no is not None else "",
            "columns": Text(", ".join(f.columns), style="" if f.needs_review else "dim"),
        }
        return layout.line(cells)


def summary(rec: data.Reconciliation | None) -> Text:
    """Counts by class, worst first: a symbol and a word each (never colour alone)."""
    if rec is None:
        return Text.assemble(
            (" ○ not reconciled yet", "bold"), (" · press r to reconcile against the target", "dim")
        )
    out = Text()
    out.append_text(
        Text("⚠ needs review", style="bold yellow") if rec.needs_review else Text("✓ ok", "green")
    )
    out.append(f"  against {rec.against}", style="bold")
    if rec.seq is None:
        out.append("  · computed here, not journaled (read-only)", style="italic")
    else:
        out.append(f"  · journaled #{rec.seq:,}", style="dim")
        if rec.ts:
            out.append(f" {fmt.date_time(rec.ts)} UTC", style="dim")
        if rec.actor:
            out.append(f" by {rec.actor}", style="dim")
    keys = rec.checked.get("keys_in_scope")
    if keys is not None:
        out.append(f"  · {keys:,} keys checked", style="dim")
    counts = Text(" ")
    for n, (cls, count) in enumerate(rec.counts.items()):  # worst first
        if n:
            counts.append("   ")
        counts.append_text(look.finding(cls))
        counts.append(f" {count:,}", style="bold")
    if not rec.counts:
        counts.append("no findings", style="dim")
    listed = Text(" ", style="dim")
    if rec.complete:
        listed.append(f"{len(rec.findings):,} findings, worst first; enter opens one")
    else:
        listed.append(
            f"the {len(rec.findings)} worst findings the journal kept; r reconciles again"
            " to list them all"
        )
    return Text("\n").join([Text(" ").join([Text(""), out]), counts, listed])


class ReconciliationPane(RunPane):
    TAB_ID = "reconciliation"
    TAB_TITLE = "Reconciliation"
    HELP_TITLE = "Reconciliation"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reconcile", "Reconcile now", id="recon.run"),
    ]

    class Shown(Message):
        """A reconciliation to show (read from the journal, or just computed)."""

        def __init__(self, rec: data.Reconciliation | None, *, fresh: bool) -> None:
            super().__init__()
            self.rec = rec
            self.fresh = fresh

    class Failed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, run_id: str, *, eager: bool = False) -> None:
        super().__init__(run_id, eager=eager)
        self.rec: data.Reconciliation | None = None
        self.running_since: float | None = None
        self._ticker: Timer | None = None
        self._asked = False  # r (or the palette) before the tab was mounted

    def build(self) -> list[Widget]:
        return [
            Static(Text(" reading the latest reconciliation…", style="dim"), id="recon-summary"),
            Static("", id="recon-progress"),
            FindingList(id="finding-list"),
        ]

    @property
    def list(self) -> FindingList:
        return self.query_one(FindingList)

    def first_show(self) -> None:
        self._read_latest()
        if self._asked:
            self._asked = False
            self.action_reconcile()

    def show_bundle(self, bundle: data.RunBundle, *, changed: bool) -> None:
        super().show_bundle(bundle, changed=changed)
        if changed and self.live and self.running_since is None:
            self._read_latest()

    def focus_target(self) -> Widget | None:
        return self.list if self.live else None

    def position(self) -> str:
        if not self.live or not self.list.counted:
            return "…"
        return fmt.position(self.list.cursor, self.list.total)

    def tab_label(self) -> str:
        if self.rec is not None and self.rec.needs_review:
            return f"{self.TAB_TITLE} ⚠"
        return self.TAB_TITLE

    # --- reading and reconciling ------------------------------------------------------------

    @work(thread=True, group="recon-latest", exclusive=True, exit_on_error=False)
    def _read_latest(self) -> None:
        rec = data.latest_reconciliation(self.console_app.journal, self.run_id)
        self.post_message(self.Shown(rec, fresh=False))

    def action_reconcile(self) -> None:
        if not self.live:
            self._asked = True
            return
        if self.running_since is not None:
            self.notify("A reconciliation is already running.", timeout=2)
            return
        self.running_since = time.monotonic()
        self._ticker = self.set_interval(0.1, self._tick)
        self._tick(layout=True)  # the line before may have been a longer failure
        self._reconcile(self.console_app.armed)

    @work(thread=True, group="reconcile", name="reconcile", exclusive=True, exit_on_error=False)
    def _reconcile(self, journaled: bool) -> None:
        app = self.console_app
        try:
            rec = data.reconcile(app.journal, app.settings, self.run_id, journaled=journaled)
        except Exception as exc:  # a target that cannot be reached is said here, not raised
            self.post_message(self.Failed(getattr(exc, "message", None) or str(exc)))
            return
        self.post_message(self.Shown(rec, fresh=True))

    def _tick(self, layout: bool = False) -> None:
        if self.running_since is None:
            return
        took = time.monotonic() - self.running_since
        mode = "journaling the result" if self.console_app.armed else "read-only: not journaled"
        line = Text(f" ⟳ reconciling against the target… {took:.1f} s ({mode})", style="bold cyan")
        line.no_wrap, line.overflow = True, "ellipsis"
        # Then one line, redrawn in place: not a layout of the whole screen ten times a
        # second while the reconciliation's worker competes for the GIL.
        self.query_one("#recon-progress", Static).update(line, layout=layout)

    def _done(self, line: Text) -> None:
        self.running_since = None
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self.query_one("#recon-progress", Static).update(line)

    @on(Shown)
    def _shown(self, message: Shown) -> None:
        message.stop()
        if message.fresh:
            self._done(Text(""))
        elif self.rec is not None and (
            self.rec.seq is None  # computed here: it stays until the next one
            or (message.rec is not None and (message.rec.seq or 0) <= self.rec.seq)
        ):
            return
        self.rec = message.rec
        self.query_one("#recon-summary", Static).update(Group(summary(message.rec)))
        rows = message.rec.findings if message.rec is not None else []
        self.list.set_source(data.ListSource(rows, key=lambda r: (r.index,)))
        self.post_message(VirtualList.CursorMoved(self.list, 0, len(rows)))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        message.stop()
        self._done(Text(f" ✗ reconciliation failed: {message.error}", style="bold red"))
        self.notify(message.error, title="reconcile", severity="error")

    @on(VirtualList.Opened, "#finding-list")
    def _open(self, message: VirtualList.Opened) -> None:
        message.stop()
        from console.tui.screens.finding_diff import FindingDiffScreen

        row = message.row
        assert isinstance(row, data.FindingRow) and self.rec is not None
        run = self.bundle.run if self.bundle is not None else None
        self.app.push_screen(FindingDiffScreen(run, self.run_id, self.rec, row))
