"""A run's events (a Line API list over keyset pages of ``events``), summarised per kind."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text

from console.tui import describe, fmt
from console.tui.data import EventLine
from console.tui.widgets.columns import Column, Layout
from console.tui.widgets.virtual_list import VirtualList

COLUMNS = (
    Column("seq", "seq", 8, 100, "right"),
    Column("time", "time (UTC)", 12, 90),
    Column("actor", "actor", 9, 60),
    Column("corr", "corr", 12, 10),
    Column("kind", "kind", 17, 95),
    Column("summary", "what", 20, 100, flex=True),
)


def kind_text(kind: str) -> Text:
    m = describe.marker(kind)
    if m is None:
        return Text(f"  {kind}")
    return Text.assemble((m.glyph, m.style), " ", (kind, m.style if m.failure else ""))


WIDE = tuple(Column(c.key, c.title, 22, c.priority) if c.key == "kind" else c for c in COLUMNS)


class EventList(VirtualList[EventLine]):
    HELP_TITLE = "Events"
    EMPTY_TEXT = "No events match."
    COLUMNS: ClassVar[tuple[Column, ...]] = COLUMNS

    def __init__(
        self, *, empty: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.empty = empty

    def columns_for(self, width: int) -> tuple[Column, ...]:
        return WIDE if width >= 120 else COLUMNS

    def empty_text(self) -> str:
        if self.counted and self.empty:
            return self.empty
        return super().empty_text()

    def render_row(self, row: EventLine, layout: Layout) -> Text:
        cells: dict[str, Text | str] = {
            "seq": f"{row.seq:,}",
            "time": fmt.clock_time(row.ts, millis=True),
            "actor": row.actor,
            "corr": Text(row.corr or "—", style="dim"),
            "kind": kind_text(row.kind),
            "summary": row.summary,
        }
        return layout.line(cells)
