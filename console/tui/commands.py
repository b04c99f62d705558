"""The command palette (`ctrl+p` or `:`): commands for the screen you are on."""

from __future__ import annotations

from collections.abc import Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.tui.screens.base import ConsoleScreen, PaletteCommand


class ConsoleCommands(Provider):
    """Asks the current screen for its commands (``ConsoleScreen.palette_commands``)."""

    def _commands(self) -> Iterator[PaletteCommand]:
        screen = self.screen
        if isinstance(screen, ConsoleScreen):
            yield from screen.palette_commands()
        from console.tui.app import BackoutApp

        app = self.app
        if isinstance(app, BackoutApp):
            yield from app.palette_commands()

    async def discover(self) -> Hits:
        for c in self._commands():
            yield DiscoveryHit(c.title, c.run, help=c.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for c in self._commands():
            score = matcher.match(c.title)
            if score > 0:
                yield Hit(score, matcher.highlight(c.title), c.run, help=c.help)
