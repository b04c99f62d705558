"""The status bar: journal, identity, run, filter, position, follow, live and write state."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from console.journal.live import LiveState

LIVE_STYLE = {"live": "bold green", "polling": "dim", "reconnecting": "bold reverse yellow"}


class StatusBar(Widget):
    """One line; fields drop from the left (journal first) when the terminal is narrow."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text;
    }
    """

    def __init__(self, *, journal: str, user: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.journal = journal
        self.user = user
        self.run = ""
        self.filter = ""
        self.position = ""
        self.follow = False
        self.mode = "read-only"
        self.note = ""
        self.live: LiveState | None = None

    def on_mount(self) -> None:
        # The app's watcher state when this screen opened; later changes come through set().
        state = getattr(self.app, "live_state", None)
        if isinstance(state, LiveState):
            self.live = state

    def set(
        self,
        *,
        run: str | None = None,
        filter: str | None = None,
        position: str | None = None,
        follow: bool | None = None,
        mode: str | None = None,
        note: str | None = None,
        live: LiveState | None = None,
    ) -> None:
        if live is not None:
            self.live = live
        if run is not None:
            self.run = run
        if filter is not None:
            self.filter = filter
        if position is not None:
            self.position = position
        if follow is not None:
            self.follow = follow
        if mode is not None:
            self.mode = mode
        if note is not None:
            self.note = note
        self.refresh()

    def _right(self) -> Text:
        out = Text()
        if self.position:
            out.append(f" {self.position} ", style="bold")
        out.append("│")
        out.append(
            " ▶ follow " if self.follow else " follow off ",
            style="bold cyan" if self.follow else "dim",
        )
        out.append("│")
        if self.live is not None:
            out.append(f" {self.live.label()} ", style=LIVE_STYLE[self.live.mode])
            out.append("│")
        if self.mode == "armed":
            out.append(" ⚠ ARMED ", style="bold reverse red")
        else:
            out.append(f" ⊘ {self.mode} ", style="green")
        return out

    def render(self) -> Text:
        width = self.size.width
        right = self._right()
        fields: list[tuple[str, str]] = [
            (f" {self.journal} ", "dim"),
            (f" {self.user} ", "bold"),
        ]
        if self.run:
            fields.append((f" run {self.run} ", "bold"))
        if self.filter:
            fields.append((f" / {self.filter} ", "yellow"))
        if self.note:
            fields.append((f" {self.note} ", "italic"))
        room = width - right.cell_len
        while fields and sum(len(t) + 1 for t, _ in fields) > room:
            fields.pop(0)
        left = Text()
        for text, style in fields:
            left.append(text, style=style)
            left.append("│", style="dim")
        pad = max(0, room - left.cell_len)
        left.truncate(room, overflow="ellipsis")
        return Text.assemble(left, " " * pad, right)
