"""The drill banner: one docked line that says this is a sandbox, not production."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def banner_text(drill_id: str | None) -> Text:
    name = f"DRILL {drill_id}" if drill_id else "DRILL"
    return Text(f" ◇ {name} · sandbox — not production ", style="bold", no_wrap=True)


class DrillBanner(Static):
    """Shown on every screen of a drill journal or replay, and on a drill run's screen."""

    DEFAULT_CSS = """
    DrillBanner {
        dock: top;
        height: 1;
        width: 100%;
        background: $warning;
        color: $background;
        text-style: bold;
    }
    """

    def __init__(self, drill_id: str | None = None) -> None:
        super().__init__(banner_text(drill_id), id="drill-banner")
        self.drill_id = drill_id

    def name_drill(self, drill_id: str) -> None:
        if drill_id != self.drill_id:
            self.drill_id = drill_id
            self.update(banner_text(drill_id))
