"""The contract between the run screen and its tabs (one module per tab)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.containers import Vertical
from textual.widget import Widget

from console.tui.data import RunBundle

if TYPE_CHECKING:
    from console.tui.app import BackoutApp


class RunPane(Vertical):
    """One tab of the run screen. It loads lazily: nothing is read until it is first shown."""

    TAB_ID: ClassVar[str] = ""
    TAB_TITLE: ClassVar[str] = ""
    HELP_TITLE: ClassVar[str] = ""

    def __init__(self, run_id: str) -> None:
        super().__init__(id=f"pane-{self.TAB_ID}")
        self.run_id = run_id
        self.bundle: RunBundle | None = None
        self.activated = False

    @property
    def console_app(self) -> BackoutApp:
        from console.tui.app import BackoutApp

        assert isinstance(self.app, BackoutApp)
        return self.app

    def activate(self) -> None:
        """The tab is shown; the first time, start loading what it lists."""
        if not self.activated:
            self.activated = True
            self.first_show()

    def first_show(self) -> None:
        """Subclasses: start reading (in a worker)."""

    def show_bundle(self, bundle: RunBundle, *, changed: bool) -> None:
        """The run (re)loaded; ``changed``: something happened to it since the last bundle."""
        self.bundle = bundle

    def focus_target(self) -> Widget | None:
        return None

    def open_filter(self) -> bool:
        """Open this tab's filter; False if it has none."""
        return False

    def clear_filter(self) -> bool:
        """Clear an active filter; False if there was none."""
        return False

    def filter_text(self) -> str:
        return ""

    def set_follow(self, on: bool) -> None:
        """Follow mode: stay on the newest rows as they arrive."""

    def following(self) -> bool:
        return False

    def position(self) -> str:
        return ""

    def tab_label(self) -> str:
        return self.TAB_TITLE
