"""What every console screen shares: the status bar, journal refreshes, the palette."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.events import ScreenResume
from textual.screen import Screen

from console.tui.messages import ArmedChanged, HeadMoved
from console.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from collections.abc import Callable

    from console.tui.app import BackoutApp


@dataclass(frozen=True)
class PaletteCommand:
    """A command the palette offers on this screen."""

    title: str
    help: str
    run: Callable[[], Any]


class ConsoleScreen(Screen[None]):
    HELP_TITLE: ClassVar[str] = "Screen"

    def __init__(self) -> None:
        super().__init__()
        self._head_dirty = False

    @property
    def console_app(self) -> BackoutApp:
        from console.tui.app import BackoutApp

        assert isinstance(self.app, BackoutApp)
        return self.app

    def status_bar(self) -> StatusBar:
        app = self.console_app
        return StatusBar(journal=app.journal_label, user=app.user, id="status")

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    def on_mount(self) -> None:
        self.status.set(mode=self.console_app.mode)

    @on(HeadMoved)
    def _head_moved(self, message: HeadMoved) -> None:
        message.stop()
        if self.is_current:
            self.journal_moved()
        else:
            self._head_dirty = True

    @on(ScreenResume)
    def _resumed(self) -> None:
        self.status.set(mode=self.console_app.mode)
        if self._head_dirty:
            self._head_dirty = False
            self.journal_moved()

    @on(ArmedChanged)
    def _armed(self, message: ArmedChanged) -> None:
        message.stop()
        self.status.set(mode=self.console_app.mode)
        self.refresh_bindings()  # actions that write are enabled only while armed

    def journal_moved(self) -> None:
        """Someone appended to the journal: refresh cheaply (subclasses)."""

    def palette_commands(self) -> Iterable[PaletteCommand]:
        """Commands that make sense on this screen, for the command palette."""
        return ()
