"""Help generated from the live bindings of the focused widget, its screen and the app.

Whatever is bound right now (including keys remapped in ``backout.toml``) is what it shows,
with each binding's id: the name to use under ``[console.keys]`` to remap it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static


@dataclass(frozen=True)
class HelpEntry:
    group: str
    keys: str
    description: str
    binding_id: str


# Textual's own scrolling keys, inherited by every scrollable widget: not worth a line each.
_NOISE = frozenset(
    {
        "scroll_left",
        "scroll_right",
        "page_left",
        "page_right",
        "scroll_up",
        "scroll_down",
        "scroll_home",
        "scroll_end",
        "page_up",
        "page_down",
        "screen.copy_text",
    }
)


def _group(node: DOMNode) -> str:
    from textual.app import App

    if isinstance(node, App):
        return "Everywhere"
    return str(getattr(node, "HELP_TITLE", "") or type(node).__name__)


def entries(bindings: dict[str, ActiveBinding], key_display: dict[str, str]) -> list[HelpEntry]:
    """One entry per action per place, with all its keys (``j / ↓``)."""
    grouped: dict[tuple[str, str, str], tuple[list[str], str]] = {}
    order: list[tuple[str, str, str]] = []
    for key, active in bindings.items():
        b: Binding = active.binding
        if b.system or (not b.id and b.action in _NOISE):
            continue
        group = _group(active.node)
        ident = (group, b.action, b.description or b.action)
        if ident not in grouped:
            grouped[ident] = ([], b.id or "")
            order.append(ident)
        grouped[ident][0].append(key_display.get(key, key))
    return [
        HelpEntry(g, " / ".join(dict.fromkeys(grouped[(g, a, d)][0])), d, grouped[(g, a, d)][1])
        for g, a, d in order
    ]


class HelpScreen(ModalScreen[None]):
    HELP_TITLE = "Help"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close help", id="help.close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 90%; max-width: 110; height: 90%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    HelpScreen .help-title { text-style: bold; height: auto; }
    HelpScreen .help-foot { color: $text-muted; height: auto; }
    """

    def __init__(self, title: str, items: list[HelpEntry], notes: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.items = items
        self.notes = notes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Keys · {self.title_text}", classes="help-title")
            with VerticalScroll(id="help-body"):
                yield Static(self._table(), id="help-table")
            foot = (
                'Remap any key in backout.toml: [console.keys] then  id = "key"  '
                '(e.g. "list.last" = "G,end,ctrl+e").  esc closes.'
            )
            if self.notes:
                foot = f"{self.notes}\n{foot}"
            yield Static(foot, classes="help-foot")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def _table(self) -> Table:
        table = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False, padding=(0, 1))
        table.add_column("keys", style="bold cyan", no_wrap=True)
        table.add_column("does")
        table.add_column(Text("id, for [console.keys]"), style="dim", no_wrap=True)
        group = None
        for e in self.items:
            if e.group != group:
                if group is not None:
                    table.add_row("", "", "")
                table.add_row(Text(e.group, style="bold underline"), "", "")
                group = e.group
            table.add_row(e.keys, e.description, e.binding_id)
        return table

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
