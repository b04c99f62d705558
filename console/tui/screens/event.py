"""One event in full: every column and the payload, pretty-printed."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from console.tui import data, describe
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.key_bar import KeyBar

MAX_SHOWN = 400_000  # characters of pretty JSON; a bigger payload is cut (with a note)


class EventScreen(ConsoleScreen):
    HELP_TITLE = "Event"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", id="event.back"),
        Binding("j,down", "scroll(1)", "Down", show=False, id="event.down"),
        Binding("k,up", "scroll(-1)", "Up", show=False, id="event.up"),
        Binding("g,home", "top", "Top", show=False, id="event.top"),
        Binding("G,end", "bottom", "Bottom", show=False, id="event.bottom"),
    ]

    class Loaded(Message):
        def __init__(self, event: dict[str, Any] | None) -> None:
            super().__init__()
            self.event = event

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq

    def compose(self) -> ComposeResult:
        yield Static(Text(f" event {self.seq:,} ", style="bold reverse"), classes="title")
        with VerticalScroll(id="event-body"):
            yield Static(Text("Loading…", style="dim"), id="event")
        yield self.status_bar()
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.status.set(position=f"seq {self.seq:,}")
        self.query_one("#event-body").focus()
        self._load()

    @work(thread=True, group="event", exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        self.post_message(self.Loaded(data.full_event(self.console_app.journal, self.seq)))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        ev = message.event
        body = self.query_one("#event", Static)
        if ev is None:
            body.update(Text(f"No event {self.seq} in this journal.", style="bold red"))
            return
        head = Text()
        head.append(f"{ev['kind']}", style="bold")
        head.append(f"  {ev['ts']}  actor {ev['actor']}  run {ev['run_id']}  corr {ev['corr']}")
        head.append(f"\n{describe.summary(ev['kind'], ev['payload'])}")
        head.append(f"\nhash {ev['hash']}", style="dim")
        pretty = json.dumps(ev["payload"], indent=2, ensure_ascii=False, sort_keys=True)
        note = ""
        if len(pretty) > MAX_SHOWN:
            note = f"\n… cut at {MAX_SHOWN:,} of {len(pretty):,} characters"
            pretty = pretty[:MAX_SHOWN]
        from rich.console import Group

        body.update(
            Group(
                head,
                Text(""),
                Syntax(pretty, "json", word_wrap=True, theme="ansi_dark"),
                Text(note, style="dim"),
            )
        )

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_scroll(self, lines: int) -> None:
        self.query_one("#event-body", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_top(self) -> None:
        self.query_one("#event-body", VerticalScroll).scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.query_one("#event-body", VerticalScroll).scroll_end(animate=False)
