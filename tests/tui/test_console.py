"""Pilot tests: what an on-call engineer does with the console, against a real journal."""

from __future__ import annotations

import threading

from textual.command import CommandPalette

from console.tui.screens.help import HelpScreen
from console.tui.screens.row_diff import RowDiffScreen
from console.tui.screens.run import RunScreen
from console.tui.screens.runs import RunsScreen
from console.tui.tabs.audit import AuditPane
from console.tui.widgets.event_list import EventList
from console.tui.widgets.operation_list import OperationList
from console.tui.widgets.run_list import RunList
from console.tui.widgets.tab_bar import TabBar
from console.tui.widgets.timeline import Timeline
from tests.tui.helpers import (
    make_app,
    press,
    screen_text,
    settle,
    status_text,
    type_text,
    wait_for,
)
from tests.tui.journal_builder import RUN_IDS, T0, BuiltJournal, FixedClock, planned_run

PAUSED = RUN_IDS["paused"]
LARGE = RUN_IDS["large"]


async def test_runs_list_shows_every_real_run_and_drills_on_request(built: BuiltJournal) -> None:
    app = make_app(built)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        runs = app.screen.query_one(RunList)
        assert runs.total == 9  # the drill run is kept out of the real list
        assert runs.current is not None and runs.current.id == RUN_IDS["running"]
        assert "1 / 9" in status_text(app)
        text = screen_text(app)
        for status in ("▶ running", "‖ paused", "✗ failed", "⟲ rolled back", "○ planned"):
            assert status in text
        assert "≠ drift" in text and "◇ 1 drill hidden (drill:yes)" in text
        assert RUN_IDS["drill"] not in text
        await press(pilot, "slash")
        await type_text(pilot, "drill:yes")
        await press(pilot, "enter")
        await settle(pilot)
        assert runs.total == 1 and runs.current is not None
        assert runs.current.id == RUN_IDS["drill"] and "◇ drill" in screen_text(app)


async def test_the_runs_list_keeps_its_height_as_the_cursor_moves(built: BuiltJournal) -> None:
    """The detail panel is a fixed five lines, each cut to the width: moving between runs
    with and without a reason, long and short, never changes the list's height."""
    app = make_app(built)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        runs = app.screen.query_one(RunList)
        height = runs.size.height
        reasons = set()
        for _ in range(runs.total):
            assert runs.current is not None
            reasons.add(bool(runs.current.reason))
            assert runs.size.height == height
            await press(pilot, "j")
        assert reasons == {True, False}
        await press(pilot, "g")
        for _ in range(runs.total):
            assert runs.current is not None
            if runs.current.reason:
                assert f"reason: {runs.current.reason[:20]}" in screen_text(app)
                break
            await press(pilot, "j")


async def test_filter_by_status_then_invert(built: BuiltJournal) -> None:
    app = make_app(built)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        runs = app.screen.query_one(RunList)
        await press(pilot, "slash")
        await type_text(pilot, "status:paused")
        await press(pilot, "enter")
        await settle(pilot)
        assert runs.total == 2
        assert {runs.row_at(i).status for i in range(2)} == {"paused"}  # type: ignore[union-attr]
        assert "status:paused" in status_text(app)
        # Invert: put ! in front of the term.
        await press(pilot, "slash", "home", "exclamation_mark", "enter")
        await settle(pilot)
        assert runs.total == 7
        assert all(runs.row_at(i).status != "paused" for i in range(7))  # type: ignore[union-attr]
        # Free text and target: filters combine.
        await press(pilot, "slash", "ctrl+u")
        await type_text(pilot, "target:db.internal")
        await press(pilot, "enter")
        await settle(pilot)
        assert runs.total == 1
        # esc clears the filter.
        await press(pilot, "escape")
        await settle(pilot)
        assert runs.total == 9


async def test_bad_filter_says_what_is_wrong(built: BuiltJournal) -> None:
    app = make_app(built)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        await type_text(pilot, "colour:red")
        await pilot.pause(0.3)
        assert "unknown field 'colour:'" in screen_text(app)
        assert app.screen.query_one(RunList).total == 9


async def test_open_run_and_switch_tabs(built: BuiltJournal) -> None:
    app = make_app(built)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j", "enter")
        await settle(pilot)
        assert isinstance(app.screen, RunScreen)
        assert app.screen.run_id == PAUSED
        tabs = app.screen.query_one(TabBar)
        assert tabs.active == "timeline"
        await press(pilot, "2")
        assert tabs.active == "operations"
        assert isinstance(app.focused, OperationList)
        await settle(pilot)
        assert "1 / 300" in status_text(app)
        await press(pilot, "3")
        assert tabs.active == "events"
        await settle(pilot)
        assert app.screen.query_one("#event-list", EventList).total == 14
        await press(pilot, "right_square_bracket")
        assert tabs.active == "reconciliation"
        await settle(pilot)
        assert "not reconciled yet" in screen_text(app)
        await press(pilot, "5")
        await settle(pilot)
        assert tabs.active == "runbook"  # its wizard has its own tests (test_wizard.py)
        await press(pilot, "6")
        await settle(pilot)
        audit = app.screen.query_one(AuditPane)
        assert audit.report is not None and audit.report.ok
        assert "journal verifies" in screen_text(app)
        assert audit.list.total == 3  # created, started, paused
        await press(pilot, "escape")
        assert isinstance(app.screen, RunsScreen)


async def test_end_and_G_reach_the_last_operation(built: BuiltJournal) -> None:
    app = make_app(built, run=LARGE)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press(pilot, "2")
        await settle(pilot)
        ops = app.screen.query_one(OperationList)
        assert "1 / 20,000" in status_text(app)
        await press(pilot, "G")
        await settle(pilot)
        assert "20,000 / 20,000" in status_text(app)
        assert ops.current is not None and ops.current.op_no == 20_000
        await press(pilot, "g")
        await settle(pilot)
        assert "1 / 20,000" in status_text(app)
        await press(pilot, "end")
        await settle(pilot)
        assert "20,000 / 20,000" in status_text(app)
        assert "20,000" in screen_text(app)
        await press(pilot, "k", "pageup")
        await settle(pilot)
        assert ops.current is not None and ops.current.op_no < 20_000
        # Memory stays bounded: pages, never the whole run.
        assert len(ops._pages) <= 24


async def test_f_jumps_to_the_next_failure(built: BuiltJournal) -> None:
    app = make_app(built, run=PAUSED)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        timeline = app.screen.query_one(Timeline)
        assert app.focused is timeline
        await press(pilot, "f")
        assert timeline.selected is not None and timeline.selected.kind == "op.conflict"
        assert "op.conflict" in screen_text(app)
        await press(pilot, "f")
        assert timeline.selected.kind == "segment.failed"
        assert "CHECK constraint failed" in screen_text(app)
        await press(pilot, "F")
        assert timeline.selected.kind == "op.conflict"
        # Zoom keeps the cursor on the failure.
        at = timeline.cursor
        await press(pilot, "plus", "plus")
        assert timeline.zoom == 4 and timeline.cursor == at
        await press(pilot, "minus")
        assert timeline.zoom == 2
        # Enter opens the selected event in the Events tab.
        await press(pilot, "enter")
        await settle(pilot)
        assert app.screen.query_one(TabBar).active == "events"
        events = app.screen.query_one("#event-list", EventList)
        assert events.current is not None and events.current.kind == "op.conflict"


async def test_the_timeline_keeps_its_height_as_the_cursor_moves(built: BuiltJournal) -> None:
    """Its detail has a fixed number of lines, each cut to the width, so moving over long
    and short events or empty moments redraws it in place, never re-laying the screen out;
    at 80 columns a long event takes two lines and the legend wraps, and all of it shows."""
    app = make_app(built, run=PAUSED)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        timeline = app.screen.query_one(Timeline)
        height = timeline.size.height
        seen = set()
        for key in ("f", "f", "n", "l", "g", "G", "F", "0"):
            await press(pilot, key)
            lines = str(timeline.render()).split("\n")
            assert timeline.size.height == height == len(lines)
            assert max(len(line) for line in lines) <= timeline.content_size.width
            seen.add(timeline.selected.kind if timeline.selected is not None else None)
        assert {"op.conflict", "segment.failed", None} <= seen
        await press(pilot, "f", "f")
        assert "constraint failed: price >= 0" in screen_text(app)  # its second line
        assert "≡ reconcile" in screen_text(app)  # the legend's last entry


async def test_guard_trip_is_a_failure_on_the_timeline(built: BuiltJournal) -> None:
    app = make_app(built, run=RUN_IDS["guard"])
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press(pilot, "f")
        timeline = app.screen.query_one(Timeline)
        assert timeline.selected is not None and timeline.selected.kind == "guard.tripped"


async def test_row_diff_of_a_conflict_then_back(built: BuiltJournal) -> None:
    app = make_app(built, run=PAUSED)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "2", "slash")
        await type_text(pilot, "conflict")
        await press(pilot, "enter")
        await settle(pilot)
        ops = app.screen.query_one(OperationList)
        assert ops.total == 1
        await press(pilot, "enter")
        await settle(pilot)
        assert isinstance(app.screen, RowDiffScreen)
        text = screen_text(app)
        assert "now" in text and "99.99" in text
        assert "⚠ 4 changed since by someone else" in text
        assert "≠⚠" in text  # price: changed by us and by someone else
        await press(pilot, "escape")
        assert isinstance(app.screen, RunScreen)
        assert app.screen.query_one(TabBar).active == "operations"


async def test_help_lists_the_live_bindings(built: BuiltJournal) -> None:
    app = make_app(built, run=LARGE, keys={"list.last": "G,end,ctrl+e"})
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "2", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        items = {e.binding_id: e for e in app.screen.items}
        assert items["list.last"].keys.split(" / ") == ["G", "end", "^e"]
        assert "run.follow" in items and "app.palette" in items
        assert "timeline.next_failure" not in items  # not focused: not live
        assert items["list.last"].group == "Operations"
        await press(pilot, "escape")
        assert isinstance(app.screen, RunScreen)
        # The remapped key works.
        await press(pilot, "ctrl+e")
        await settle(pilot)
        assert "20,000 / 20,000" in status_text(app)
        await press(pilot, "1", "f1")
        assert isinstance(app.screen, HelpScreen)
        assert "timeline.next_failure" in {e.binding_id for e in app.screen.items}


async def test_palette_opens_with_context_commands(built: BuiltJournal) -> None:
    app = make_app(built)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "colon")
        assert isinstance(app.screen, CommandPalette)
        await type_text(pilot, "paused runs")
        await pilot.pause(0.5)
        await press(pilot, "enter")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        assert app.screen.query_one(RunList).total == 2
        await press(pilot, "ctrl+p")
        assert isinstance(app.screen, CommandPalette)


async def test_live_update_when_another_writer_appends(built: BuiltJournal) -> None:
    app = make_app(built, poll_interval=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        runs = app.screen.query_one(RunList)
        assert runs.total == 9

        def other_process() -> None:
            clock = FixedClock(T0.replace(hour=3))
            other = built.open(actor="n8n-bot")
            other.clock = clock
            planned_run(other, clock, "new0run0live")
            other.close()

        writer = threading.Thread(target=other_process)
        writer.start()
        writer.join()
        await wait_for(pilot, lambda: runs.total == 10, timeout=3, what="the new run")
        await settle(pilot)
        assert runs.row_at(0) is not None and runs.row_at(0).id == "new0run0live"  # type: ignore[union-attr]


async def test_run_screen_follows_a_running_run(built: BuiltJournal) -> None:
    app = make_app(built, run=RUN_IDS["running"], poll_interval=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        timeline = app.screen.query_one(Timeline)
        assert timeline.follow
        assert "▶ follow" in status_text(app)
        await press(pilot, "g")
        assert not timeline.follow
        await press(pilot, "w")
        assert timeline.follow
        await press(pilot, "2")
        await settle(pilot)
        await press(pilot, "w")
        ops = app.screen.query_one(OperationList)
        assert ops.follow
        await settle(pilot)
        assert "200 / 200" in status_text(app)


async def test_readonly_by_default_and_forced(built: BuiltJournal) -> None:
    app = make_app(built)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "read-only" in status_text(app)
        await press(pilot, "A")
        assert app.armed and "ARMED" in status_text(app)
        await press(pilot, "A")
        assert not app.armed
    forced = make_app(built, readonly=True)
    async with forced.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "A")
        assert not forced.armed
        assert "read-only (forced)" in status_text(forced)


async def test_unknown_run_is_reported(built: BuiltJournal) -> None:
    app = make_app(built, run="nosuchrun")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "no run 'nosuchrun'" in screen_text(app)


async def test_events_filter_by_kind(built: BuiltJournal) -> None:
    app = make_app(built, run=PAUSED)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "3", "slash")
        await type_text(pilot, "segment")
        await press(pilot, "enter")
        await settle(pilot)
        events = app.screen.query_one("#event-list", EventList)
        assert events.total == 6  # 3 intents, 2 applied, 1 failed
        await press(pilot, "slash", "ctrl+u")
        await type_text(pilot, "!segment !checkpoint")
        await press(pilot, "enter")
        await settle(pilot)
        assert events.total == 6
        await press(pilot, "escape")
        await settle(pilot)
        assert events.total == 14
        await press(pilot, "enter")
        await settle(pilot)
        assert "run.created" in screen_text(app)


async def test_runbook_tab_lists_approvals_and_the_denial(built: BuiltJournal) -> None:
    app = make_app(built, run=RUN_IDS["rolled_back"])
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await press(pilot, "5")
        await settle(pilot)
        text = screen_text(app)
        assert "DENIED step approve" in text and "wait for the ERP export" in text
        assert text.count("APPROVED step approve") == 2
        assert "owner1" in text and "ic1" in text
        # The executions' state, from the runbook projections.
        assert "exec rbx000000001  ⊗ denied" in text
        assert "exec rbx000000002  ▶ running  at rollback" in text
        await press(pilot, "6")
        await settle(pilot)
        audit = app.screen.query_one(AuditPane)
        kinds = {audit.list.row_at(i).kind for i in range(audit.list.total)}  # type: ignore[union-attr]
        assert {"approval.denied", "approval.granted", "run.status"} <= kinds


async def test_theme_and_keymap_from_settings(built: BuiltJournal) -> None:
    app = make_app(built, theme="textual-light", keys={"runs.filter": "f", "no.such": "x"})
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme == "textual-light"
        assert any("no.such" in n.message for n in app._notifications)  # names the bad id
        await press(pilot, "f")
        assert app.screen.query_one("#runs-filter").has_class("-open")


async def test_pause_a_running_run_from_the_console(built: BuiltJournal) -> None:
    """P on a run: refused read-only and on a run that is not running; armed, a confirmation,
    then the same request `backout pause` journals, by the console's user."""
    from console.tui.screens.confirm import ConfirmScreen

    def requests(run_id: str) -> list[str]:
        j = built.open(actor="reader")
        try:
            return [e.actor for e in j.events(run_id, kinds=["run.pause_requested"])]
        finally:
            j.close()

    running = RUN_IDS["running"]
    app = make_app(built, run=running)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "P")  # read-only: nothing asked, nothing written
        assert not isinstance(app.screen, ConfirmScreen)
        await press(pilot, "A")
        await press(pilot, "P")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "escape")  # cancel writes nothing
        await settle(pilot)
        assert requests(running) == []
        await press(pilot, "P")
        await press(pilot, "y")
        await settle(pilot)
        assert requests(running) == ["oncall1"]
    paused = make_app(built, run=RUN_IDS["paused"])
    async with paused.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "A")
        await press(pilot, "P")  # a paused run: nothing to pause, nothing asked
        assert not isinstance(paused.screen, ConfirmScreen)
    assert requests(RUN_IDS["paused"]) == []
