"""A tab that lists the events of some kinds for its run: the seam for services to come.

Reconciliation and Runbook show what the journal already holds about them (snapshots,
``reconcile.*``, ``runbook.*``, ``approval.*`` events) until their services land; then
their own widgets replace the notice and sit above this list.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from console.tui import data
from console.tui.filters import EMPTY, Filter
from console.tui.tabs.list_pane import ListPane
from console.tui.widgets.event_list import EventList
from console.tui.widgets.filter_bar import FilterBar


class JournalPane(ListPane[data.EventLine]):
    KINDS: ClassVar[tuple[str, ...]] = ()
    NOTICE: ClassVar[str] = ""
    EMPTY: ClassVar[str] = "No such events for this run."

    def build(self) -> ComposeResult:
        yield Static(self.notice(), classes="pane-notice", id=f"{self.TAB_ID}-notice")
        yield from self.extra()
        yield FilterBar("kind prefixes (approval.*)  actor:bob  text:…  · !term negates")
        yield EventList(empty=self.EMPTY, id=f"{self.TAB_ID}-events")

    def extra(self) -> ComposeResult:
        """What the tab's service shows above the event list (as services land)."""
        return ()

    def notice(self) -> Text:
        return Text(self.NOTICE)

    def make_source(self, f: Filter) -> Any:
        return data.event_source(self.console_app.journal, self.run_id, f, kinds=self.KINDS)

    def parse(self, text: str) -> Filter:
        return data.parse_event_filter(text) if text.strip() else EMPTY
