"""One run: a header that says what it is, and six tabs (one module each in ``tabs/``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import ContentSwitcher, Static

from console.errors import BackoutError
from console.status import PAUSABLE
from console.tui import data, fmt, look
from console.tui.screens.base import ConsoleScreen, PaletteCommand
from console.tui.screens.confirm import Confirmed, ConfirmScreen
from console.tui.tabs.audit import AuditPane
from console.tui.tabs.base import RunPane
from console.tui.tabs.events import EventsPane
from console.tui.tabs.operations import OperationsPane
from console.tui.tabs.reconciliation import ReconciliationPane
from console.tui.tabs.runbook import RunbookPane
from console.tui.tabs.timeline import TimelinePane
from console.tui.widgets.drill_banner import DrillBanner
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.tab_bar import TabBar
from console.tui.widgets.timeline import Timeline
from console.tui.widgets.virtual_list import VirtualList

PANES: tuple[type[RunPane], ...] = (
    TimelinePane,
    OperationsPane,
    EventsPane,
    ReconciliationPane,
    RunbookPane,
    AuditPane,
)


class RunScreen(ConsoleScreen):
    HELP_TITLE = "Run"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="run.back"),
        Binding("slash", "filter", "Filter", id="run.filter"),
        Binding("w", "follow", "Follow", id="run.follow"),
        Binding("1", "tab('timeline')", "Timeline", show=False, id="run.tab_timeline"),
        Binding("2", "tab('operations')", "Operations", show=False, id="run.tab_operations"),
        Binding("3", "tab('events')", "Events", show=False, id="run.tab_events"),
        Binding("4", "tab('reconciliation')", "Reconciliation", show=False, id="run.tab_recon"),
        Binding("5", "tab('runbook')", "Runbook", show=False, id="run.tab_runbook"),
        Binding("6", "tab('audit')", "Audit", show=False, id="run.tab_audit"),
        Binding("right_square_bracket", "next_tab(1)", "Next tab", show=False, id="run.next_tab"),
        Binding("left_square_bracket", "next_tab(-1)", "Prev tab", show=False, id="run.prev_tab"),
        Binding("r", "refresh", "Refresh", show=False, id="run.refresh"),
        Binding("P", "pause_run", "Pause run", show=False, id="run.pause"),
    ]

    class Loaded(Message):
        def __init__(self, bundle: data.RunBundle) -> None:
            super().__init__()
            self.bundle = bundle

    class EventsCounted(Message):
        def __init__(self, run_id: str, total: int) -> None:
            super().__init__()
            self.run_id = run_id
            self.total = total

    class Missing(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    class PauseAnswered(Message):
        """What ``backout pause`` would have printed, or why it was refused."""

        def __init__(self, message: str, ok: bool) -> None:
            super().__init__()
            self.message = message
            self.ok = ok

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.bundle: data.RunBundle | None = None

    DEFAULT_CSS = """
    RunScreen > ContentSwitcher { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        header = Static(Text(f" run {self.run_id} · loading…", style="dim"), id="run-header")
        # Three lines from the first frame: the run's data arriving then redraws it in place
        # instead of laying out the whole screen again (update(layout=False) below).
        header.styles.height = 3
        yield header
        # One-widget tab bar over a ContentSwitcher: every pane is an empty container until
        # first shown (RunPane is lazy), so opening a run composes the timeline only.
        yield TabBar([(p.TAB_ID, p.TAB_TITLE) for p in PANES], "timeline", id="tab-bar")
        with ContentSwitcher(initial="pane-timeline"):
            for pane in PANES:
                yield pane(self.run_id, eager=pane is TimelinePane)
        yield self.status_bar()
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.status.set(run=self.run_id[:12])
        self._load(self.run_id, None)
        self.pane.activate()
        self.call_after_refresh(self._focus_pane)

    # --- loading --------------------------------------------------------------------------

    @work(thread=True, group="run", exclusive=True, exit_on_error=False)
    def _load(self, run_id: str, last_seq: int | None) -> None:
        """Load the run; on a refresh, only if something happened to it."""
        journal = self.console_app.journal
        try:
            if last_seq is not None and not data.run_changed(journal, run_id, last_seq):
                return
            # First load: header, lanes and segments paint before the markers' queries run.
            bundle = data.load_run(journal, run_id, markers=last_seq is not None)
            if bundle.markers_pending:
                self.post_message(self.Loaded(bundle))
                bundle = data.with_markers(journal, bundle)
        except BackoutError as exc:
            self.post_message(self.Missing(exc.message))
            return
        self.post_message(self.Loaded(bundle))

    @work(thread=True, group="run-count", exclusive=True, exit_on_error=False)
    def _count_events(self, run_id: str) -> None:
        total = data.count_events(self.console_app.journal, run_id)
        self.post_message(self.EventsCounted(run_id, total))

    @on(EventsCounted)
    def _events_counted(self, message: EventsCounted) -> None:
        if self.bundle is not None and self.bundle.run.id == message.run_id:
            self.bundle.events_total = message.total
            self.tab_bar.set_label("events", self.query_one(EventsPane).tab_label())

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        previous = self.bundle
        completing = previous is not None and previous.markers_pending  # same load, markers
        changed = previous is not None and not completing
        self.bundle = message.bundle
        if completing and previous is not None:
            message.bundle.events_total = message.bundle.events_total or previous.events_total
        else:
            # Counting a big run's events takes a while: after the first paint, not before it.
            self._count_events(message.bundle.run.id)
        self._header(message.bundle.run)
        if message.bundle.run.drill and not self.query(DrillBanner):
            self.mount(DrillBanner())  # a drill run never looks like production
        for pane in self.query(RunPane):
            pane.show_bundle(message.bundle, changed=changed)
        for pane in self.query(RunPane):
            self.tab_bar.set_label(pane.TAB_ID, pane.tab_label())
        self._sync_status()

    @on(Missing)
    def _missing(self, message: Missing) -> None:
        self.notify(message.error, severity="error", title="run")
        self.query_one("#run-header", Static).update(
            Text(f" {message.error}", style="bold red"), layout=False
        )

    def journal_moved(self) -> None:
        last = self.bundle.run.last_seq if self.bundle is not None else None
        self._load(self.run_id, last)

    def _header(self, run: data.RunRow) -> None:
        one = Text(" ", no_wrap=True, overflow="ellipsis")
        one.append_text(look.status(run.status))
        one.append(f"  {run.changeset} v{run.version}", style="bold")
        if run.kind != "apply":
            one.append(f" [{run.kind}{' of ' + run.parent_run if run.parent_run else ''}]")
        one.append(f"  run {run.id}", style="dim")
        flags = look.flags(run.drifted, run.drill, run.dry_run, words=True)
        if flags:
            one.append("  ")
            one.append_text(flags)
        took = fmt.span(run.started_at, run.finished_at)
        two = Text(f" {run.automation or 'manual'} → {look.short_target(run.target)}")
        two.append(f" · started {fmt.date_time(run.started_at or run.created_at)} UTC")
        two.append(f" · took {fmt.duration(took)}" if took is not None else " · not finished")
        three = Text(f" rows {run.rows_total:,}: ✓ {run.rows_applied:,}")
        three.append(f" ✗ {run.rows_failed:,}", style="bold red" if run.rows_failed else "dim")
        three.append(
            f" ⚠ {run.rows_conflict:,}", style="bold yellow" if run.rows_conflict else "dim"
        )
        if run.rows_reverted:
            three.append(f" ⟲ {run.rows_reverted:,}", style="magenta")
        if run.reason:
            three.append(f" · {run.reason}", style="yellow")
        for line in (two, three):
            line.no_wrap = True
            line.overflow = "ellipsis"
        self.query_one("#run-header", Static).update(Group(one, two, three), layout=False)

    # --- panes ----------------------------------------------------------------------------

    @property
    def tab_bar(self) -> TabBar:
        return self.query_one(TabBar)

    @property
    def active_tab(self) -> str:
        return self.tab_bar.active

    @property
    def pane(self) -> RunPane:
        return self.query_one(f"#pane-{self.active_tab}", RunPane)

    def _focus_pane(self) -> None:
        target = self.pane.focus_target()
        if target is not None:
            target.focus()

    @on(TabBar.Chosen)
    def _tab_chosen(self, message: TabBar.Chosen) -> None:
        message.stop()
        self.action_tab(message.tab)

    def _sync_status(self) -> None:
        pane = self.pane
        self.status.set(
            filter=pane.filter_text(), position=pane.position(), follow=pane.following()
        )

    @on(VirtualList.CursorMoved)
    def _list_moved(self, message: VirtualList.CursorMoved) -> None:
        if self.pane.focus_target() is message.widget:
            self._sync_status()

    @on(Timeline.Moved)
    def _timeline_moved(self, message: Timeline.Moved) -> None:
        self._sync_status()

    @on(VirtualList.Opened, "#op-list")
    def _open_operation(self, message: VirtualList.Opened) -> None:
        from console.tui.screens.row_diff import RowDiffScreen

        op = message.row
        assert isinstance(op, data.OpRow)
        run = self.bundle.run if self.bundle is not None else None
        self.app.push_screen(RowDiffScreen(op, run))

    @on(VirtualList.Opened)
    def _open_event(self, message: VirtualList.Opened) -> None:
        if isinstance(message.row, data.EventLine):
            from console.tui.screens.event import EventScreen

            self.app.push_screen(EventScreen(message.row.seq))

    @on(Timeline.OpenEvent)
    def _timeline_open(self, message: Timeline.OpenEvent) -> None:
        self.show_event(message.seq)

    def show_event(self, seq: int) -> None:
        """Switch to the Events tab with the cursor on ``seq`` (clearing its filter)."""
        pane = self.query_one(EventsPane)
        pane.filter = data.parse_event_filter("")
        # The list's count worker also finds the event's index (one query, off the loop).
        pane.pending_keep = (seq,)
        if pane.live:
            pane.first_show()
        self.action_tab("events")

    @on(RunPane.Ready)
    def _pane_ready(self, message: RunPane.Ready) -> None:
        if message.pane is self.pane:
            self._focus_pane()
            self._sync_status()

    # --- actions --------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.pane.clear_filter():
            self._sync_status()
            return
        self.app.pop_screen()

    def action_filter(self) -> None:
        if not self.pane.open_filter():
            self.notify("This tab has no filter.", timeout=2)

    def action_follow(self) -> None:
        pane = self.pane
        pane.set_follow(not pane.following())
        self._sync_status()

    def action_tab(self, tab: str) -> None:
        if tab == self.active_tab:
            return
        self.tab_bar.set_active(tab)
        self.query_one(ContentSwitcher).current = f"pane-{tab}"
        self.pane.activate()
        self._focus_pane()
        self._sync_status()

    def action_next_tab(self, step: int) -> None:
        ids = [p.TAB_ID for p in PANES]
        self.action_tab(ids[(ids.index(self.active_tab) + step) % len(ids)])

    def action_refresh(self) -> None:
        self._load(self.run_id, None)

    def action_pause_run(self) -> None:
        """Ask the run (an apply, rollback or fix running in another process) to stop at its next
        segment boundary, as ``backout pause`` does: armed mode, then a confirmation."""
        run = self.bundle.run if self.bundle is not None else None
        if run is None:
            return
        if not self.console_app.armed:
            self.notify("Read-only: press A to arm actions that write.", severity="warning")
            return
        if run.status not in PAUSABLE:
            self.notify(f"Run {run.id} is {run.status}: nothing to pause.")
            return
        what = Text(
            f"Journals run.pause_requested by {self.console_app.journal.actor}: run {run.id} "
            f"stops at its next segment boundary; `backout resume {run.id}` continues it."
        )

        def answered(result: Confirmed | None) -> None:
            if result is not None:
                self._request_pause(run.id)

        self.app.push_screen(ConfirmScreen(f"Pause run {run.id}?", what, confirm="Pause"), answered)

    @work(thread=True, group="run-pause", name="run.pause", exit_on_error=False)
    def _request_pause(self, run_id: str) -> None:
        from console.config import Settings
        from console.engine.apply import Engine

        app = self.console_app
        try:
            report = Engine(app.journal, app.settings or Settings()).request_pause(run_id)
            self.post_message(self.PauseAnswered(report.message, True))
        except BackoutError as exc:
            self.post_message(self.PauseAnswered(str(exc), False))

    @on(PauseAnswered)
    def _pause_answered(self, message: PauseAnswered) -> None:
        self.notify(message.message, severity="information" if message.ok else "error")

    def palette_commands(self) -> Iterable[PaletteCommand]:
        for pane in PANES:
            yield PaletteCommand(
                f"Go to the {pane.TAB_TITLE} tab",
                f"Run {self.run_id}",
                _bind(self.action_tab, pane.TAB_ID),
            )
        yield PaletteCommand("Toggle follow mode", "Stay on the newest rows", self.action_follow)
        yield PaletteCommand(
            "Pause this run", "Stop it at its next segment boundary (P)", self.action_pause_run
        )
        tl = self.query_one(Timeline)
        yield PaletteCommand(
            "Timeline: next failure", "f", self._on_timeline(tl.action_next_failure)
        )
        yield PaletteCommand(
            "Timeline: previous failure", "F", self._on_timeline(tl.action_previous_failure)
        )
        yield PaletteCommand("Timeline: zoom in", "+", self._on_timeline(lambda: tl.action_zoom(2)))
        yield PaletteCommand(
            "Timeline: zoom out", "-", self._on_timeline(lambda: tl.action_zoom(0.5))
        )
        ops = self.query_one(OperationsPane)
        for status in ("conflict", "failed", "pending", "applied"):
            yield PaletteCommand(
                f"Operations: show {status}",
                f"Filter operations with status:{status}",
                self._ops_filter(ops, f"status:{status}"),
            )
        yield PaletteCommand(
            "Events: failures only",
            "segment.failed op.failed op.conflict guard.tripped run.failed",
            self._events_filter("segment.failed op.failed op.conflict guard.tripped run.failed"),
        )
        yield PaletteCommand(
            "Audit: verify the journal", "Recompute chain and projections", self._verify
        )
        yield PaletteCommand(
            "Reconciliation: reconcile now",
            "Compare the target with the baseline and the intended result (r)",
            self._reconcile,
        )
        yield from self.query_one(RunbookPane).palette_commands(lambda: self.action_tab("runbook"))
        yield PaletteCommand("Back to the runs list", "esc", self.app.pop_screen)

    def _on_timeline(self, fn: Any) -> Any:
        def run() -> None:
            self.action_tab("timeline")
            fn()

        return run

    def _ops_filter(self, pane: OperationsPane, text: str) -> Any:
        def run() -> None:
            self.action_tab("operations")
            pane.set_filter(text)
            self._sync_status()

        return run

    def _events_filter(self, text: str) -> Any:
        def run() -> None:
            self.action_tab("events")
            self.query_one(EventsPane).set_filter(text)
            self._sync_status()

        return run

    def _reconcile(self) -> None:
        self.action_tab("reconciliation")
        self.query_one(ReconciliationPane).action_reconcile()

    def _verify(self) -> None:
        self.action_tab("audit")
        self.query_one(AuditPane).action_verify()


def _bind(fn: Any, *args: Any) -> Any:
    return lambda: fn(*args)
