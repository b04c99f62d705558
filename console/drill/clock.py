"""The simulated clock of a replay: recorded time that runs ``speed`` times faster than the
wall clock while playing, and stands still while paused.

A replay shows each recorded event when the simulated time reaches its recorded time, so the
recorded gaps between events are divided by the speed. Changing the speed, pausing or jumping
re-anchors the clock; what was simulated so far is kept.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

Wall = Callable[[], float]

MIN_SPEED = 0.125
MAX_SPEED = 1_000_000.0


def _bounded(speed: float) -> float:
    if not speed > 0:
        raise ValueError(f"speed must be positive, not {speed}")
    return min(max(speed, MIN_SPEED), MAX_SPEED)


class SimClock:
    """Simulated UTC time; ``now`` suits a journal's ``clock=`` (``wall``: for tests)."""

    def __init__(
        self, start: dt.datetime, *, speed: float = 1.0, wall: Wall = time.monotonic
    ) -> None:
        self._wall = wall
        self._sim_anchor = start.astimezone(dt.UTC)
        self._wall_anchor = wall()
        self._speed = _bounded(speed)
        self.playing = False

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> dt.datetime:
        if not self.playing:
            return self._sim_anchor
        elapsed = (self._wall() - self._wall_anchor) * self._speed
        return self._sim_anchor + dt.timedelta(seconds=elapsed)

    def _anchor(self, moment: dt.datetime) -> None:
        self._sim_anchor = moment.astimezone(dt.UTC)
        self._wall_anchor = self._wall()

    def play(self) -> None:
        if not self.playing:
            self._anchor(self._sim_anchor)
            self.playing = True

    def pause(self) -> None:
        if self.playing:
            self._anchor(self.now())
            self.playing = False

    def set_speed(self, speed: float) -> float:
        """Change the speed from now on (bounded to [1/8, 10⁶]); returns the speed set."""
        self._anchor(self.now())
        self._speed = _bounded(speed)
        return self._speed

    def jump(self, moment: dt.datetime) -> None:
        """Move the simulated time (a seek); playing or paused stays as it was."""
        self._anchor(moment)

    def wall_seconds_until(self, moment: dt.datetime) -> float | None:
        """Wall seconds until the simulated time reaches ``moment`` (0 if it has; None while
        paused: it never will)."""
        if not self.playing:
            return None if moment > self._sim_anchor else 0.0
        ahead = (moment - self.now()).total_seconds()
        return max(ahead, 0.0) / self._speed
