"""The Events tab: the raw stream (actor, correlation id, payload), filterable by kind."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult

from console.tui import data
from console.tui.filters import Filter
from console.tui.tabs.list_pane import ListPane
from console.tui.widgets.event_list import EventList
from console.tui.widgets.filter_bar import FilterBar

HINT = "segment.*  op.conflict  run  !checkpoint  actor:bob  text:SKU-000305 · enter: payload"


class EventsPane(ListPane[data.EventLine]):
    TAB_ID = "events"
    TAB_TITLE = "Events"
    HELP_TITLE = "Events"

    def build(self) -> ComposeResult:
        yield FilterBar(HINT)
        yield EventList(id="event-list")

    def make_source(self, f: Filter) -> Any:
        return data.event_source(self.console_app.journal, self.run_id, f)

    def parse(self, text: str) -> Filter:
        return data.parse_event_filter(text)

    def tab_label(self) -> str:
        if self.bundle is None or self.bundle.events_total is None:
            return self.TAB_TITLE
        return f"Events {self.bundle.events_total:,}"
