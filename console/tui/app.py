"""The incident console: a Textual app over the shared journal.

Screens: runs → run (tabs) → row diff. Every journal read runs in a named thread worker and
posts a message. A journal watcher (``console.journal.live``: LISTEN/NOTIFY on PostgreSQL, a
one-row poll on SQLite) runs in its own thread worker so that every screen refreshes when
someone else appends; the status bar says how it hears (live, polling) and, when the
connection is lost, that it is reconnecting with backoff. Read-only by default;
``--readonly`` forbids arming.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

from textual import events, on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.worker import WorkerState

from console.journal import Journal
from console.journal.live import HeadWatcher, LiveState, watch
from console.tui.collector import IdleCollector
from console.tui.commands import ConsoleCommands
from console.tui.messages import ArmedChanged, HeadMoved
from console.tui.screens.base import ConsoleScreen, PaletteCommand
from console.tui.screens.help import HelpScreen, entries
from console.tui.screens.run import RunScreen
from console.tui.screens.runs import RunsScreen
from console.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from console.cli.context import Ctx
    from console.config import ConsoleConfig, Settings

Clock = Callable[[], dt.datetime]
IDLE_CHECK = 0.5  # seconds between looks for an idle moment to collect garbage in
IDLE_AFTER = 1.0  # seconds without a key or mouse event before the console counts as idle


def journal_label(journal: Journal) -> str:
    """Short and stable: the file name of a SQLite journal, host/db of a server one."""
    url = journal.display_url
    if url.startswith("sqlite"):
        return url.rsplit("/", 1)[-1] or url
    return url.split("://", 1)[-1]


class BackoutApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "backout"
    SUB_TITLE = "incident console"
    # A drill's own journal (a replay sandbox) lists its drill runs; a real one hides them.
    drill_journal: ClassVar[bool] = False
    COMMANDS: ClassVar = App.COMMANDS | {ConsoleCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("ctrl+p", "command_palette", "Commands", priority=True, id="app.palette"),
        Binding("colon", "command_palette", "Commands", show=False, id="app.palette_colon"),
        Binding("A", "toggle_armed", "Arm/disarm", show=False, id="app.arm"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    class HeadRead(HeadMoved):
        """The head as read by the watcher (the app decides whether it moved)."""

    class LiveChanged(Message):
        """The watcher's state changed (live, polling, reconnecting)."""

        def __init__(self, state: LiveState) -> None:
            super().__init__()
            self.state = state

    def __init__(
        self,
        journal: Journal,
        *,
        user: str,
        console: ConsoleConfig | None = None,
        readonly: bool = False,
        run: str | None = None,
        clock: Clock | None = None,
        poll_interval: float | None = 0.5,
        settings: Settings | None = None,
    ) -> None:
        super().__init__()
        self.journal = journal
        self.settings = settings  # the policy the runbook wizard's gate reads (None: defaults)
        self.user = user
        self.readonly_forced = readonly
        self.armed = False
        self.start_run = run
        self.clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.poll_interval = poll_interval  # None: no watcher (tests, benchmarks)
        self.head_seq: int | None = None
        self.live_state: LiveState | None = None
        self._watcher: HeadWatcher | None = None
        self.journal_label = journal_label(journal)
        self._console = console
        self.collector = IdleCollector()
        self._last_input = time.monotonic()
        self._unknown_keys: list[str] = []
        if console is not None and console.keys:
            known = known_binding_ids()
            self._unknown_keys = sorted(k for k in console.keys if k not in known)
            self.set_keymap({k: v for k, v in console.keys.items() if k in known})

    def now(self) -> dt.datetime:
        return self.clock()

    @property
    def mode(self) -> str:
        if self.armed:
            return "armed"
        return "read-only (forced)" if self.readonly_forced else "read-only"

    def on_mount(self) -> None:
        self.collector.start()
        self.set_interval(IDLE_CHECK, self._collect_when_idle)
        theme = self._console.theme if self._console is not None else None
        if theme:
            if theme in self.available_themes:
                self.theme = theme
            else:
                names = ", ".join(sorted(self.available_themes))
                self.notify(f"theme '{theme}' is unknown; use one of {names}.", severity="warning")
        if self._unknown_keys:
            self.notify(
                f"[console.keys] names unknown binding ids: {', '.join(self._unknown_keys)}; "
                "press ? to see the ids.",
                severity="warning",
            )
        self.push_screen(RunsScreen())
        if self.start_run:
            self.open_run(self.start_run)
        if self.poll_interval:
            # A daemon thread, not a Textual worker: it never finishes, and workers are waited for.
            self._watcher = watch(
                self.journal,
                self._post_head,
                poll_interval=self.poll_interval,
                on_state=self._post_live,
                start=-1,  # the first head read is the watcher's first report
            )
        else:
            self._read_head()

    def on_unmount(self) -> None:
        self.collector.stop()
        if self._watcher is not None:
            self._watcher.close()  # its thread ends within one poll interval

    # --- garbage collection: when idle, not mid-load (console/tui/collector.py) ----------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent) and not event.is_forwarded:
            self._last_input = time.monotonic()
        await super().on_event(event)

    def _collect_when_idle(self) -> None:
        busy = any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers)
        quiet_for = time.monotonic() - self._last_input
        self.collector.tick(idle=quiet_for >= IDLE_AFTER and not busy, quiet_for=quiet_for)

    # --- live refresh ---------------------------------------------------------------------

    # The watcher calls these from its thread; post_message is thread-safe.

    def _post_live(self, state: LiveState) -> None:
        self.post_message(self.LiveChanged(state))

    def _post_head(self, seq: int) -> None:
        self.post_message(self.HeadRead(seq))

    @work(thread=True, group="head", exclusive=True, exit_on_error=False)
    def _read_head(self) -> None:
        seq, _ = self.journal.head()
        self.post_message(self.HeadRead(seq))

    @on(LiveChanged)
    def _live_changed(self, message: LiveChanged) -> None:
        was, now = self.live_state, message.state
        self.live_state = now
        for screen in self.screen_stack:
            for bar in screen.query(StatusBar):
                bar.set(live=now)
        lost_before = was is not None and was.mode == "reconnecting"
        if now.mode == "reconnecting" and not lost_before:
            self.notify(
                f"Journal connection lost ({now.error}); reconnecting with backoff.",
                title="journal",
                severity="warning",
            )
        elif lost_before and now.mode != "reconnecting":
            self.notify("Journal connection restored; refreshing.", title="journal")
            # Reads that failed meanwhile are read again, whether or not the head moved.
            for screen in self.screen_stack:
                if isinstance(screen, ConsoleScreen):
                    screen.post_message(HeadMoved(self.head_seq or 0))

    @on(HeadRead)
    def _head_read(self, message: HeadRead) -> None:
        if self.head_seq is None:
            self.head_seq = message.seq
            return
        if message.seq == self.head_seq:
            return
        self.head_seq = message.seq
        for screen in self.screen_stack:
            if isinstance(screen, ConsoleScreen):
                screen.post_message(HeadMoved(message.seq))

    # --- errors: one handler for every worker ---------------------------------------------

    def on_worker_state_changed(self, event: object) -> None:
        from textual.worker import Worker

        worker: Worker[object] = event.worker  # type: ignore[attr-defined]
        if worker.state != WorkerState.ERROR:
            return
        error = worker.error
        text = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        self.log.error(f"worker {worker.group}/{worker.name} failed", error)
        self.notify(str(text), title=f"journal read failed ({worker.group})", severity="error")

    # --- navigation -----------------------------------------------------------------------

    def open_run(self, run_id: str) -> None:
        self.push_screen(RunScreen(run_id))

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, HelpScreen):
            return
        bindings = screen.active_bindings
        display = {key: self.get_key_display(active.binding) for key, active in bindings.items()}
        focused = screen.focused
        where = getattr(focused, "HELP_TITLE", "") if focused is not None else ""
        title = getattr(screen, "HELP_TITLE", type(screen).__name__)
        notes = ""
        parent = focused.parent if focused is not None else None
        if parent is not None:
            from console.tui.widgets.filter_bar import FilterBar

            bars = list(parent.query_children(FilterBar))
            notes = f"Filter (/): {bars[0].hint}" if bars else ""
        self.push_screen(
            HelpScreen(
                f"{title}{' › ' + where if where else ''}", entries(bindings, display), notes
            )
        )

    def action_toggle_armed(self) -> None:
        if self.readonly_forced:
            self.notify("Read-only was forced (--readonly): actions that write stay off.")
            return
        self.armed = not self.armed
        self.notify(
            "ARMED: actions that write are offered; each shows its operations and asks first."
            if self.armed
            else "Back to read-only.",
            severity="warning" if self.armed else "information",
        )
        for screen in self.screen_stack:
            screen.post_message(ArmedChanged(self.armed))

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield PaletteCommand("Help: keys here", "? or f1", self.action_help)
        if not self.readonly_forced:
            yield PaletteCommand(
                "Disarm (read-only)" if self.armed else "Arm actions that write",
                "A",
                self.action_toggle_armed,
            )


def known_binding_ids() -> set[str]:
    """Every binding id of the console's widgets and screens (to check ``[console.keys]``)."""
    from console.tui.screens.confirm import ConfirmScreen
    from console.tui.screens.event import EventScreen
    from console.tui.screens.pick import PickScreen
    from console.tui.screens.row_diff import RowDiffScreen
    from console.tui.tabs.audit import AuditPane
    from console.tui.tabs.reconciliation import ReconciliationPane
    from console.tui.tabs.runbook import RunbookPane
    from console.tui.widgets.filter_bar import FilterBar
    from console.tui.widgets.timeline import Timeline
    from console.tui.widgets.virtual_list import VirtualList

    ids: set[str] = set()
    classes = (
        BackoutApp,
        RunsScreen,
        RunScreen,
        RowDiffScreen,
        EventScreen,
        HelpScreen,
        VirtualList,
        Timeline,
        FilterBar,
        AuditPane,
        ReconciliationPane,
        RunbookPane,
        ConfirmScreen,
        PickScreen,
    )
    for cls in classes:
        for b in cls.BINDINGS:
            if isinstance(b, Binding) and b.id:
                ids.add(b.id)
    return ids


def run_console(ctx: Ctx, run: str | None, readonly: bool) -> None:
    """Open the console for ``backout`` / ``backout console`` (blocks until quit)."""
    settings = ctx.settings
    app = BackoutApp(
        ctx.journal,
        user=ctx.user,
        console=settings.console,
        readonly=readonly,
        run=run,
        settings=settings,
    )
    app.run()
