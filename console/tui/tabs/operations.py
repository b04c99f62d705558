"""The Operations tab: every row operation, a page at a time; enter opens the row diff."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from console.tui import data, look
from console.tui.filters import Filter
from console.tui.tabs.list_pane import ListPane
from console.tui.widgets.filter_bar import FilterBar
from console.tui.widgets.operation_list import OperationList

HINT = "conflict failed  status:pending  op:update  seg:3  step:1  table:products  key text · !term"


class OperationsPane(ListPane[data.OpRow]):
    TAB_ID = "operations"
    TAB_TITLE = "Operations"
    HELP_TITLE = "Operations"

    def build(self) -> ComposeResult:
        yield Static(id="op-summary", classes="pane-summary")
        yield FilterBar(HINT)
        yield OperationList(id="op-list")

    def make_source(self, f: Filter) -> Any:
        return data.op_source(self.console_app.journal, self.run_id, f)

    def parse(self, text: str) -> Filter:
        return data.parse_op_filter(text)

    def show_bundle(self, bundle: data.RunBundle, *, changed: bool) -> None:
        super().show_bundle(bundle, changed=changed)
        if not self.live:
            return
        counts = bundle.op_counts
        text = Text(f" {sum(counts.values()):,} operations  ", style="bold")
        for status, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            text.append_text(look.status(status))
            text.append(f" {n:,}   ")
        text.append("enter: row diff", style="dim")
        self.query_one("#op-summary", Static).update(text, layout=False)  # one line (CSS)

    def tab_label(self) -> str:
        if self.bundle is None:
            return self.TAB_TITLE
        return f"Operations {sum(self.bundle.op_counts.values()):,}"
