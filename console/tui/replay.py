"""The console on a replay: the drill journal, a drill banner on every screen, and the replay
controls (play/pause, speed, seek by event, start/end) with a bar that shows where it is.

The replayer writes (the drill journal and the sandbox target), so every replayer call runs in
a named thread worker, one at a time (a lock); the event loop only reads the simulated clock.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input

from console.journal import Journal
from console.tui.app import BackoutApp
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.drill_banner import DrillBanner
from console.tui.widgets.replay_bar import ReplayBar, ReplayState

if TYPE_CHECKING:
    from console.config import ConsoleConfig, Settings
    from console.drill.replay import Replayer

_REPLAY_ACTIONS = frozenset({"toggle_play", "speed", "seek", "seek_to"})


class DrillApp(BackoutApp):
    """``BackoutApp`` on a drill's journal: every console screen shows the drill banner."""

    SUB_TITLE = "drill"
    drill_journal: ClassVar[bool] = True

    @property
    def drill_id(self) -> str | None:
        return self.journal.drill

    def on_mount(self) -> None:
        super().on_mount()
        self.screen_change_signal.subscribe(self, self._decorate)
        for screen in self.screen_stack:
            self._decorate(screen)

    def _decorate(self, screen: Screen[object]) -> None:
        if not isinstance(screen, ConsoleScreen):
            return
        banners = screen.query(DrillBanner)
        if not banners:
            screen.mount(DrillBanner(self.drill_id))
        elif self.drill_id:  # the run screen's own (a drill run) may have come first
            for banner in banners:
                banner.name_drill(self.drill_id)


class ReplayApp(DrillApp):
    """``DrillApp`` on a drill journal that a ``Replayer`` fills as the simulated clock runs."""

    SUB_TITLE = "drill replay"
    # Priority: the replay keys win over the lists' and the timeline's own (except in inputs).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_play", "Play/pause", priority=True, id="replay.play"),
        Binding("plus,equals_sign", "speed(2)", "Faster", priority=True, id="replay.faster"),
        Binding("minus", "speed(0.5)", "Slower", priority=True, id="replay.slower"),
        Binding("right", "seek(1)", "Next event", priority=True, id="replay.next"),
        Binding("left", "seek(-1)", "Previous event", priority=True, id="replay.previous"),
        Binding("home", "seek_to('start')", "Replay start", priority=True, id="replay.start"),
        Binding("end", "seek_to('end')", "Replay end", priority=True, id="replay.end"),
    ]

    class Moved(Message):
        """The replayer moved (a worker replayed, sought or rebuilt)."""

    def __init__(
        self,
        replayer: Replayer,
        journal: Journal,
        *,
        user: str,
        console: ConsoleConfig | None = None,
        settings: Settings | None = None,
        poll_interval: float | None = 0.25,
        tick: float = 0.05,
    ) -> None:
        super().__init__(
            journal,
            user=user,
            console=console,
            run=replayer.rec.run.id,
            clock=replayer.now,
            poll_interval=poll_interval,
            settings=settings,
        )
        self.replayer = replayer
        self.tick = tick
        if console is not None and console.keys:  # [console.keys] may rebind the replay keys
            ours = {b.id for b in self.BINDINGS if isinstance(b, Binding) and b.id}
            self._unknown_keys = [k for k in self._unknown_keys if k not in ours]
            self.update_keymap({k: console.keys[k] for k in ours & set(console.keys)})
        self.busy = ""
        self._lock = threading.Lock()

    @property
    def drill_id(self) -> str:
        return self.replayer.sandbox.drill_id

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(self.tick, self._tick)

    # --- every screen shows the banner and the bar ------------------------------------------

    def _decorate(self, screen: Screen[object]) -> None:
        super()._decorate(screen)
        if isinstance(screen, ConsoleScreen) and not screen.query(ReplayBar):
            status = screen.query("#status")
            screen.mount(ReplayBar(), before=status.first() if status else None)
        self._show()

    def state(self) -> ReplayState:
        r = self.replayer
        return ReplayState(
            playing=r.clock.playing,
            speed=r.clock.speed,
            position=r.position,
            total=r.total,
            now=r.clock.now(),
            finished=r.finished,
            last=r.rec.events[r.position - 1].kind if r.position else "",
            busy=self.busy,
        )

    def _show(self) -> None:
        state = self.state()
        for bar in self.screen.query(ReplayBar):
            bar.show(state)

    # --- the clock drives the replayer ------------------------------------------------------

    def _idle(self) -> bool:
        return not any(w.group == "replay" and not w.is_finished for w in self.workers)

    def _tick(self) -> None:
        self._show()
        if self.replayer.clock.playing and self.replayer.wait() == 0 and self._idle():
            self._advance()

    @work(thread=True, group="replay", exit_on_error=False)
    def _advance(self) -> None:
        with self._lock:
            n = self.replayer.advance()
            if self.replayer.finished and n:
                # The recording is over: from here the trainee works at the wall clock's pace.
                self.replayer.clock.set_speed(1)
        if n:
            self.post_message(self.Moved())

    @work(thread=True, group="replay", exit_on_error=False)
    def _seek(self, index: int) -> None:
        with self._lock:
            backwards = index < self.replayer.position
            if backwards:
                self.busy = "rebuilding"
                self.journal.engine.dispose()  # no pooled connection to the file replaced
            self.replayer.seek(index)
            if backwards:
                self.journal.engine.dispose()
                self.journal.journal_id = self.replayer.journal_id()
            self.busy = ""
        self.post_message(self.Moved())

    @on(Moved)
    def _moved(self) -> None:
        self._show()
        self._read_head()  # screens refresh now rather than at the next poll

    # --- actions ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Typing in a filter: the key is a character, not a replay control.
        return not (action in _REPLAY_ACTIONS and isinstance(self.focused, Input))

    def action_toggle_play(self) -> None:
        clock = self.replayer.clock
        clock.pause() if clock.playing else clock.play()
        self._show()

    def action_speed(self, factor: float) -> None:
        speed = self.replayer.clock.set_speed(self.replayer.clock.speed * factor)
        self.notify(f"replay speed ×{speed:g}", timeout=1.5)
        self._show()

    def action_seek(self, delta: int) -> None:
        self._seek(self.replayer.position + delta)

    def action_seek_to(self, where: str) -> None:
        self._seek(self.replayer.total if where == "end" else 1)


def run_drill_console(
    journal: Journal,
    *,
    user: str,
    run: str | None,
    readonly: bool,
    settings: Settings | None = None,
) -> None:
    """The console on a drill's journal (``backout console`` on a replay sandbox's journal)."""
    DrillApp(
        journal,
        user=user,
        console=settings.console if settings is not None else None,
        readonly=readonly,
        run=run,
        settings=settings,
    ).run()


def start_replay(replayer: Replayer, user: str) -> Journal:
    """Open the replayer and replay the run's creation (so its screen has a run to show);
    the trainee's own handle on the drill journal: stamped with the drill id, simulated time."""
    replayer.open()
    replayer.seek(1)
    return Journal(
        replayer.sandbox.journal_url,
        actor=user,
        clock=replayer.now,
        drill=replayer.sandbox.drill_id,
    )


def run_replay(replayer: Replayer, *, user: str, settings: Settings | None = None) -> None:
    """Open the console on the replay (blocks until quit)."""
    journal = start_replay(replayer, user)
    try:
        ReplayApp(
            replayer,
            journal,
            user=user,
            console=settings.console if settings is not None else None,
            settings=settings,
        ).run()
    finally:
        journal.close()
        replayer.close()
