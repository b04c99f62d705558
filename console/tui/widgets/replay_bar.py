"""The replay bar: play state, speed, position in the recording and simulated time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static


@dataclass(frozen=True)
class ReplayState:
    playing: bool
    speed: float
    position: int  # events replayed
    total: int
    now: dt.datetime  # simulated time
    finished: bool
    last: str = ""  # the kind of the last event replayed
    busy: str = ""  # e.g. "rebuilding" while a backward seek rebuilds the sandbox


def replay_text(state: ReplayState) -> Text:
    if state.finished:
        mode, style = "■ end", "bold"
    elif state.playing:
        mode, style = "▶ playing", "bold green"
    else:
        mode, style = "❚❚ paused", "bold yellow"
    line = Text(" ", no_wrap=True, overflow="ellipsis")
    line.append(mode, style=style)
    line.append(f"  ×{state.speed:,.0f}" if state.speed >= 1000 else f"  ×{state.speed:g}")
    line.append(f"  event {state.position}/{state.total}")
    if state.last:
        line.append(f" {state.last}", style="bold")
    line.append(f"  {state.now:%Y-%m-%d %H:%M:%S} (simulated)", style="dim")
    if state.busy:
        line.append(f"  {state.busy}…", style="italic")
    line.append("   space play/pause · +/- speed · ←/→ seek · home/end", style="dim")
    return line


class ReplayBar(Static):
    """Above the status bar while the console shows a replay (the key bar docks below)."""

    DEFAULT_CSS = """
    ReplayBar {
        height: 1;
        width: 100%;
        background: $boost;
    }
    """

    def __init__(self) -> None:
        super().__init__("", id="replay-bar")
        self.state: ReplayState | None = None

    def show(self, state: ReplayState) -> None:
        if state != self.state:
            self.state = state
            self.update(replay_text(state))
