"""Responsive columns for the Line API lists: what fits in 80 cells, more in 160."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.text import Text


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int  # minimum width; the flexible column takes what is left
    priority: int = 0  # higher stays longer as the terminal narrows
    justify: Literal["left", "right"] = "left"
    flex: bool = False


def _gaps(columns: Sequence[Column]) -> int:
    return max(0, len(columns) - 1)


class Layout:
    """The columns that fit ``width`` and their widths, computed once per width."""

    def __init__(self, columns: Sequence[Column], width: int) -> None:
        chosen = list(columns)
        while chosen and sum(c.width for c in chosen) + _gaps(chosen) > width:
            drop = min((c for c in chosen if not c.flex), key=lambda c: c.priority, default=None)
            if drop is None:
                break
            chosen.remove(drop)
        spare = max(0, width - sum(c.width for c in chosen) - _gaps(chosen))
        self.widths = {c.key: c.width + (spare if c.flex else 0) for c in chosen}
        self.columns = chosen

    def has(self, key: str) -> bool:
        return key in self.widths

    def line(self, cells: Mapping[str, Text | str], style: str = "") -> Text:
        out = Text(style=style, no_wrap=True, overflow="ellipsis", end="")
        for n, col in enumerate(self.columns):
            if n:
                out.append(" ")
            cell = cells.get(col.key, "")
            text = cell.copy() if isinstance(cell, Text) else Text(cell)
            text.no_wrap = True
            width = self.widths[col.key]
            if text.cell_len > width:
                text.truncate(width, overflow="ellipsis")
            pad = width - text.cell_len
            if col.justify == "right":
                out.append(" " * pad)
                out.append_text(text)
            else:
                out.append_text(text)
                out.append(" " * pad)
        return out

    def header(self) -> Text:
        return self.line({c.key: c.title for c in self.columns}, style="bold")
