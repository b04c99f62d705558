"""The runs list: every run, filter with `/`, sort with `s`, enter opens a run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from console.journal import Journal
from console.status import RUN_STATUSES
from console.tui import data, fmt, look
from console.tui.filters import EMPTY, Filter, FilterError
from console.tui.screens.base import ConsoleScreen, PaletteCommand
from console.tui.widgets.filter_bar import FilterBar
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.run_list import RunList
from console.tui.widgets.virtual_list import VirtualList

FILTER_HINT = (
    "status:failed,paused  target:crm  cs:uplift  automation:n8n  actor:bob  drill:no  "
    "drift:yes  free words · !term negates"
)


class RunsScreen(ConsoleScreen):
    HELP_TITLE = "Runs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="runs.filter"),
        Binding("s", "sort", "Sort", id="runs.sort"),
        Binding("S", "reverse", "Reverse sort", show=False, id="runs.reverse"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="runs.clear_filter"),
        Binding("r", "refresh", "Refresh", show=False, id="runs.refresh"),
    ]

    class Summary(Message):
        def __init__(self, counts: dict[str, int], drills: int) -> None:
            super().__init__()
            self.counts = counts
            self.drills = drills  # drill runs kept out of this list

    def __init__(self) -> None:
        super().__init__()
        self.filter: Filter = EMPTY
        self.sort = "started"
        self.descending = True
        self.counts: dict[str, int] = {}
        self.hidden_drills = 0

    @property
    def journal(self) -> Journal:
        return self.console_app.journal

    def compose(self) -> ComposeResult:
        yield Static(id="title", classes="title")
        yield FilterBar(FILTER_HINT, id="runs-filter")
        yield RunList(now=self.console_app.now().timestamp(), id="runs")
        yield Static(id="run-detail", classes="detail")
        yield self.status_bar()
        yield KeyBar()

    @property
    def runs(self) -> RunList:
        return self.query_one(RunList)

    def on_mount(self) -> None:
        super().on_mount()
        self._apply_source()
        self._summarise()
        self.runs.focus()

    # --- data -----------------------------------------------------------------------------

    def _apply_source(self, keep: data.Key | None = None) -> None:
        source = data.run_source(
            self.journal, self.filter, self.sort, self.descending, drills=self._drills_shown
        )
        self.runs.set_source(source, keep=keep)
        self._title()
        self.status.set(filter=self.filter.text)

    @property
    def _drills_shown(self) -> bool:
        return self.console_app.drill_journal or any(t.field == "drill" for t in self.filter.terms)

    @work(thread=True, group="runs-summary", exclusive=True, exit_on_error=False)
    def _summarise(self) -> None:
        mine = None if self.console_app.drill_journal else False
        counts = self.journal.status_counts(drills=mine)
        drills = 0 if mine is None else sum(self.journal.status_counts(drills=True).values())
        self.post_message(self.Summary(counts, drills))

    @on(Summary)
    def _summary(self, message: Summary) -> None:
        self.counts = message.counts
        self.hidden_drills = message.drills
        self._title()

    def _title(self) -> None:
        total = sum(self.counts.values())
        text = Text()
        text.append(" backout ", style="bold reverse")
        text.append(f" runs · {total:,}", style="bold")
        for status in ("running", "paused", "failed", "rolling_back", "rollback_partial"):
            if self.counts.get(status):
                text.append("  ")
                text.append_text(look.status(status, word=False))
                text.append(f" {self.counts[status]:,} {status.replace('_', ' ')}")
        label = data.RUN_SORTS[self.sort][0]
        text.append(f"   sort: {label} {'↓' if self.descending else '↑'}", style="dim")
        if self.filter:
            text.append(f"   filter: {self.filter.text}", style="yellow")
        if self.hidden_drills and not self._drills_shown:
            n = self.hidden_drills
            text.append(f"   ◇ {n:,} drill{'s' * (n != 1)} hidden (drill:yes)", style="dim")
        self.query_one("#title", Static).update(text, layout=False)  # one line (CSS)

    def journal_moved(self) -> None:
        run = self.runs.current
        self.runs.now = self.console_app.now().timestamp()
        self.runs.reload(keep=data.run_key(run, self.sort) if run is not None else None)
        self._summarise()

    # --- events ---------------------------------------------------------------------------

    @on(VirtualList.CursorMoved, "#runs")
    def _moved(self, message: VirtualList.CursorMoved) -> None:
        self.status.set(position=fmt.position(message.index, message.total))
        self._detail(self.runs.current)

    def _detail(self, run: data.RunRow | None) -> None:
        # A fixed height (CSS) and one line per field, cut to the width: moving the cursor
        # redraws the panel in place, and the list above it never changes height.
        panel = self.query_one("#run-detail", Static)
        if run is None:
            panel.update(Text(" No run selected.", style="dim"), layout=False)
            return
        one = Text()
        one.append_text(look.status(run.status))
        one.append(f"  {run.id}  ", style="bold")
        one.append(f"{run.changeset} v{run.version}", style="bold")
        if run.kind != "apply":
            one.append(f" [{run.kind}{' of ' + run.parent_run if run.parent_run else ''}]")
        one.append(f"  by {run.actor}  corr {run.corr}", style="dim")
        four = Text(
            f" rows {run.rows_total:,}: applied {run.rows_applied:,} · failed "
            f"{run.rows_failed:,} · conflicts {run.rows_conflict:,} · reverted "
            f"{run.rows_reverted:,} · skipped {run.rows_skipped:,}"
        )
        flags = look.flags(run.drifted, run.drill, run.dry_run, words=True)
        if flags:
            four.append("  ")
            four.append_text(flags)
        lines = [
            one,
            Text(f" {run.description or '(no description)'}"),
            Text(f" {run.automation or 'manual'} → {run.target}", style="dim"),
            four,
        ]
        if run.reason:
            lines.append(Text.assemble((" reason: ", "bold"), (run.reason, "yellow")))
        out = Text("\n").join(lines)
        out.no_wrap = True
        out.overflow = "ellipsis"
        panel.update(out, layout=False)

    @on(VirtualList.Opened, "#runs")
    def _open(self, message: VirtualList.Opened) -> None:
        run = message.row
        assert isinstance(run, data.RunRow)
        self.console_app.open_run(run.id)

    @on(FilterBar.Changed, "#runs-filter")
    def _filter_changed(self, message: FilterBar.Changed) -> None:
        bar = message.bar
        try:
            new = data.parse_run_filter(message.value)
        except FilterError as exc:
            bar.show_error(str(exc))
            return
        bar.show_error(None)
        if message.final:
            bar.close()
            self.runs.focus()
        if new != self.filter:
            self.filter = new
            self._apply_source()

    # --- actions --------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one(FilterBar).open(self.filter.text)

    def action_clear_filter(self) -> None:
        if self.filter:
            self.set_filter("")

    def set_filter(self, text: str) -> None:
        try:
            self.filter = data.parse_run_filter(text)
        except FilterError as exc:
            self.notify(str(exc), severity="error")
            return
        self._apply_source()

    def action_sort(self) -> None:
        order = data.SORT_ORDER
        self.set_sort(order[(order.index(self.sort) + 1) % len(order)])

    def set_sort(self, sort: str, descending: bool | None = None) -> None:
        self.sort = sort
        if descending is not None:
            self.descending = descending
        run = self.runs.current
        self._apply_source(keep=data.run_key(run, self.sort) if run is not None else None)

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self._apply_source()

    def action_refresh(self) -> None:
        self.journal_moved()

    def palette_commands(self) -> Iterable[PaletteCommand]:
        for status in RUN_STATUSES:
            yield PaletteCommand(
                f"Show {status.replace('_', ' ')} runs",
                f"Filter the runs list with status:{status}",
                _bind(self.set_filter, f"status:{status}"),
            )
        yield PaletteCommand("Show runs with problems", "failed or conflicts > 0", self._problems)
        yield PaletteCommand(
            "Show drill runs", "Filter with drill:yes", _bind(self.set_filter, "drill:yes")
        )
        yield PaletteCommand("Clear the filter", "Show every run", _bind(self.set_filter, ""))
        for key, (label, _) in data.RUN_SORTS.items():
            yield PaletteCommand(
                f"Sort runs by {label}", "Newest or largest first", _bind(self.set_sort, key, True)
            )
        run = self.runs.current
        if run is not None:
            yield PaletteCommand(
                f"Open run {run.id} ({run.changeset} v{run.version})",
                "The selected run",
                _bind(self.console_app.open_run, run.id),
            )

    def _problems(self) -> None:
        self.set_sort("problems", True)


def _bind(fn: Any, *args: Any) -> Any:
    return lambda: fn(*args)
