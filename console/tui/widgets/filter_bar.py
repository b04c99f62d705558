"""The `/` filter input: applies as you type, shows what is wrong with a filter."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Static


class FilterBar(Vertical):
    HELP_TITLE = "Filter"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close filter", id="filter.close"),
    ]
    DEFAULT_CSS = """
    FilterBar { height: auto; display: none; dock: top; background: $boost; }
    FilterBar.-open { display: block; }
    FilterBar Input { border: none; height: 1; padding: 0 1; }
    FilterBar .hint { color: $text-muted; padding: 0 1; height: auto; }
    FilterBar .hint.-error { color: $error; text-style: bold; }
    """

    class Changed(Message):
        """The filter text changed (as typed, or on enter)."""

        def __init__(self, bar: FilterBar, value: str, final: bool) -> None:
            super().__init__()
            self.bar = bar
            self.value = value
            self.final = final

        @property
        def control(self) -> FilterBar:
            return self.bar

    def __init__(self, hint: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hint = hint
        self._timer: Timer | None = None
        self._error: str | None = None  # what the hint line says instead of the hint

    def compose(self) -> ComposeResult:
        # Mounted on first use: an Input per list would slow every screen's first paint.
        return ()

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    def open(self, value: str) -> None:
        self.add_class("-open")
        if not self.children:
            field = Input(value, placeholder="filter…  (enter: keep · esc: close)")
            field.id = "filter-input"
            self.mount(field, Static(self.hint, classes="hint"))
            self.call_after_refresh(field.focus)
            return
        self.input.value = value
        self.input.cursor_position = len(value)
        self.input.focus()

    def close(self) -> None:
        self.remove_class("-open")

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def show_error(self, message: str | None) -> None:
        if not self.children or message == self._error:
            return  # unchanged: no update, which would re-lay the screen out on every key
        self._error = message
        hint = self.query_one(".hint", Static)
        hint.set_class(bool(message), "-error")
        hint.update(f"✗ {message}" if message else self.hint)

    @on(Input.Changed, "#filter-input")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        value = event.value
        # Debounced: a fast typist runs one query, not one per key.
        self._timer = self.set_timer(
            0.15, lambda: self.post_message(self.Changed(self, value, False))
        )

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        self.post_message(self.Changed(self, event.value, True))

    def action_cancel(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.close()
        if self.children:
            self.post_message(self.Changed(self, self.input.value, True))
