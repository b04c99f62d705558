"""Asking before any write: the exact operations first, Cancel focused, an explicit yes.

Enter on the focused Cancel button, or escape, writes nothing. Confirming takes a distinct
key (``y``, outside the text field) or the confirm button reached with tab. A text field
(an approval's comment, a manual step's answer) can be required.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


@dataclass(frozen=True)
class TextField:
    label: str
    required: bool = False
    placeholder: str = ""


@dataclass(frozen=True)
class Confirmed:
    text: str  # what the text field holds ("" without one)


class ConfirmScreen(ModalScreen[Confirmed | None]):
    HELP_TITLE = "Confirm"
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 100%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ConfirmScreen #confirm-title { text-style: bold; }
    ConfirmScreen #confirm-ops { height: auto; max-height: 12; }
    ConfirmScreen #confirm-error { color: $error; height: auto; }
    ConfirmScreen Horizontal { height: auto; align-horizontal: right; }
    ConfirmScreen Button { margin: 0 0 0 2; min-width: 10; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
        Binding("y", "confirm", "Confirm", id="confirm.yes"),
    ]

    def __init__(
        self, title: str, operations: Text, *, confirm: str, field: TextField | None = None
    ) -> None:
        super().__init__()
        self.heading = title
        self.operations = operations
        self.confirm_label = confirm
        self.field = field

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.heading, id="confirm-title")
            yield Static(Text("This will write to the journal:", style="dim"))
            with VerticalScroll(id="confirm-ops"):
                yield Static(self.operations)
            if self.field is not None:
                required = " (required)" if self.field.required else ""
                yield Static(f"{self.field.label}{required}:")
                yield Input(placeholder=self.field.placeholder, id="confirm-text")
            yield Static("", id="confirm-error")
            yield Static(
                Text("enter on Cancel or esc writes nothing · y or the button confirms", "dim")
            )
            with Horizontal():
                yield Button("Cancel", id="confirm-cancel", variant="primary")
                yield Button(f"{self.confirm_label} (y)", id="confirm-ok", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#confirm-cancel", Button).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_confirm(self) -> None:
        text = self.query_one(Input).value.strip() if self.field is not None else ""
        if self.field is not None and self.field.required and not text:
            self.query_one("#confirm-error", Static).update(f"{self.field.label} is required.")
            self.query_one(Input).focus()
            return
        self.dismiss(Confirmed(text))

    @on(Button.Pressed, "#confirm-cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#confirm-ok")
    def _ok(self) -> None:
        self.action_confirm()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        # Enter in the text field never confirms: it moves to the buttons, Cancel first.
        event.stop()
        self.query_one("#confirm-cancel", Button).focus()
