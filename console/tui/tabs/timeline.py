"""The Timeline tab: the run over time, with failures one key away (f/F)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget

from console.tui import fmt
from console.tui.data import RunBundle
from console.tui.tabs.base import RunPane
from console.tui.widgets.timeline import Timeline


class TimelinePane(RunPane):
    TAB_ID = "timeline"
    TAB_TITLE = "Timeline"
    HELP_TITLE = "Timeline"

    def build(self) -> ComposeResult:
        timeline = Timeline(now=lambda: self.console_app.now().timestamp(), id="timeline-view")
        yield VerticalScroll(timeline)

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    def show_bundle(self, bundle: RunBundle, *, changed: bool) -> None:
        super().show_bundle(bundle, changed=changed)
        if self.built and self.children:
            self.timeline.show(bundle)

    def focus_target(self) -> Widget | None:
        return self.timeline if self.built and self.children else None

    def set_follow(self, on: bool) -> None:
        if not (self.built and self.children):
            return
        t = self.timeline
        if on != t.follow:
            t.action_toggle_follow()

    def following(self) -> bool:
        return bool(self.built and self.children and self.timeline.follow)

    def position(self) -> str:
        if not (self.built and self.children):
            return "…"
        t = self.timeline
        if t.bundle is None:
            return "…"
        return f"{fmt.at(t.cursor)} ×{t.zoom:g}"
