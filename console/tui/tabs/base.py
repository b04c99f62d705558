"""The contract between the run screen and its tabs (one module per tab)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget

from console.tui.data import RunBundle

if TYPE_CHECKING:
    from console.tui.app import BackoutApp


class RunPane(Vertical):
    """One tab of the run screen. It is lazy: its widgets are mounted and its data read only
    when it is first shown, so opening a run costs one tab, not six."""

    TAB_ID: ClassVar[str] = ""
    TAB_TITLE: ClassVar[str] = ""
    HELP_TITLE: ClassVar[str] = ""

    def __init__(self, run_id: str, *, eager: bool = False) -> None:
        super().__init__(id=f"pane-{self.TAB_ID}")
        self.run_id = run_id
        self.bundle: RunBundle | None = None
        self.activated = False
        self.built = eager
        self.live = False  # mounted and loading

    class Ready(Message):
        """A lazy tab finished mounting (the screen focuses it if it is showing)."""

        def __init__(self, pane: RunPane) -> None:
            super().__init__()
            self.pane = pane

    def build(self) -> Iterable[Widget]:
        """The tab's widgets (subclasses)."""
        return ()

    def compose(self) -> ComposeResult:
        if self.built:
            yield from self.build()

    @property
    def console_app(self) -> BackoutApp:
        from console.tui.app import BackoutApp

        assert isinstance(self.app, BackoutApp)
        return self.app

    def activate(self) -> None:
        """The tab is shown; the first time, mount it and start loading what it lists."""
        if self.activated:
            return
        self.activated = True
        if self.built:
            self.live = True
            self.first_show()
            return
        self.built = True
        self.mount_all(list(self.build()))
        self.call_after_refresh(self._built)

    def _built(self) -> None:
        self.live = True
        if self.bundle is not None:
            self.show_bundle(self.bundle, changed=False)
        self.first_show()
        self.post_message(self.Ready(self))

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
