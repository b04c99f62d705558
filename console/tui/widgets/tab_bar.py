"""A one-line tab bar: one widget instead of Textual's ``Tabs`` (a widget per tab, an animated
underline, a scroll container), which cost the run screen's first paint about 280 ms."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget


class TabBar(Widget):
    """Tabs as ``n Label`` cells; the active one reversed and bracketed (not colour alone)."""

    DEFAULT_CSS = """
    TabBar {
        height: 1;
        background: $panel;
    }
    """

    class Chosen(Message):
        """A tab was clicked."""

        def __init__(self, tab: str) -> None:
            super().__init__()
            self.tab = tab

    def __init__(
        self, tabs: Sequence[tuple[str, str]], active: str, *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.ids = [t for t, _ in tabs]
        self.labels = dict(tabs)
        self.active = active
        self._spans: list[tuple[int, int, str]] = []

    def set_active(self, tab: str) -> None:
        if tab != self.active:
            self.active = tab
            self.refresh()

    def set_label(self, tab: str, label: str) -> None:
        if self.labels.get(tab) != label:
            self.labels[tab] = label
            self.refresh()

    def _line(self, room: int | None) -> tuple[Text, list[tuple[int, int, str]]]:
        """The bar with inactive tab titles cut to ``room`` cells (None: whole)."""
        out = Text(no_wrap=True, overflow="ellipsis")
        spans = []
        for n, tab in enumerate(self.ids, start=1):
            on = tab == self.active
            label = self.labels[tab]
            title, sep, count = label.partition(" ")  # "Events 1,000,018": keep the count
            if room is not None and not on and len(title) > room:
                label = title[: room - 1] + "…" + sep + count
            start = out.cell_len
            out.append(f"[{n} {label}]" if on else f" {n} {label} ", style="bold reverse" * on)
            spans.append((start, out.cell_len, tab))
        return out, spans

    def render(self) -> Text:
        # Narrow terminals: inactive labels shrink (numbers stay: they are the keys).
        width = self.size.width
        out, self._spans = self._line(None)
        room = max((len(label.split(" ")[0]) for label in self.labels.values()), default=0)
        while out.cell_len > width and room > 2:
            room -= 1
            out, self._spans = self._line(room)
        return out

    def on_click(self, event: events.Click) -> None:
        for start, end, tab in self._spans:
            if start <= event.x < end:
                self.post_message(self.Chosen(tab))
                return
