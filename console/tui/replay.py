"""The console on a replay: the drill journal, the drill banner and the replay controls."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.config import Settings
    from console.drill.replay import Replayer


def run_replay(replayer: Replayer, *, user: str, settings: Settings | None = None) -> None:
    """Open the console on the replay (blocks until quit)."""
    raise NotImplementedError
