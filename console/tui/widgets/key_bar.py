"""The key hints line: the shown bindings of the focused widget, screen and app.

One widget rendering one line of text. Textual's Footer mounts a widget per key and
recomposes on every focus change, which cost more than the rest of the run screen.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar { height: 1; dock: bottom; background: $footer-background; color: $footer-foreground; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _changed(self, _screen: object) -> None:
        self.refresh()

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        seen: set[str] = set()
        key_style = "bold reverse"
        for active in self.screen.active_bindings.values():
            b = active.binding
            if not b.show or b.action in seen:
                continue
            seen.add(b.action)
            key = b.key_display or self.app.get_key_display(b)
            out.append(f" {key} ", style=key_style if active.enabled else "dim reverse")
            out.append(f" {b.description}  ", style="" if active.enabled else "dim")
        return out
