"""A tab whose body is a filterable virtual list (operations, events)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from textual import on
from textual.widget import Widget

from console.tui import fmt
from console.tui.data import Key
from console.tui.filters import EMPTY, Filter, FilterError
from console.tui.tabs.base import RunPane
from console.tui.widgets.filter_bar import FilterBar
from console.tui.widgets.virtual_list import VirtualList

R = TypeVar("R")


class ListPane(RunPane, Generic[R]):
    FILTER_HINT = ""

    def __init__(self, run_id: str, *, eager: bool = False) -> None:
        super().__init__(run_id, eager=eager)
        self.filter: Filter = EMPTY
        self.pending_keep: Key | None = None  # put the cursor on this row once counted

    @property
    def list(self) -> VirtualList[Any]:
        return self.query_one(VirtualList)

    def make_source(self, f: Filter) -> Any:
        raise NotImplementedError

    def parse(self, text: str) -> Filter:
        raise NotImplementedError

    def first_show(self) -> None:
        keep, self.pending_keep = self.pending_keep, None
        self.list.set_source(self.make_source(self.filter), keep=keep)

    def show_bundle(self, bundle: Any, *, changed: bool) -> None:
        super().show_bundle(bundle, changed=changed)
        if changed and self.live:
            self.list.reload()

    def focus_target(self) -> Widget | None:
        return self.list if self.live else None

    def open_filter(self) -> bool:
        if not self.live:
            return False
        self.query_one(FilterBar).open(self.filter.text)
        return True

    def clear_filter(self) -> bool:
        if not self.filter:
            return False
        self.set_filter("")
        return True

    def filter_text(self) -> str:
        return self.filter.text

    def set_filter(self, text: str) -> None:
        try:
            self.filter = self.parse(text)
        except FilterError as exc:
            self.notify(str(exc), severity="error")
            return
        if self.live:  # else the tab applies it when it is first shown
            self.list.set_source(self.make_source(self.filter))

    @on(FilterBar.Changed)
    def _filter_changed(self, message: FilterBar.Changed) -> None:
        message.stop()
        try:
            new = self.parse(message.value)
        except FilterError as exc:
            message.bar.show_error(str(exc))
            return
        message.bar.show_error(None)
        if message.final:
            message.bar.close()
            self.list.focus()
        if new != self.filter:
            self.filter = new
            self.list.set_source(self.make_source(new))
            self.post_message(VirtualList.CursorMoved(self.list, 0, 0))

    def set_follow(self, on: bool) -> None:
        if not self.live:
            return
        lst = self.list
        lst.follow = on
        if on:
            lst.action_last()
            lst.follow = True

    def following(self) -> bool:
        return self.live and self.list.follow

    def position(self) -> str:
        if not self.live:
            return "…"
        lst = self.list
        return fmt.position(lst.cursor, lst.total) if lst.counted else "…"
