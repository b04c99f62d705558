"""The console on a replay (Pilot): play unfolds the run, pause stops it, seek jumps, and the
drill banner is on every screen."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from console.config import ConsoleConfig
from console.drill.clock import SimClock
from console.drill.replay import Recording, Replayer, build_sandbox
from console.journal import Journal
from console.tui.app import BackoutApp
from console.tui.replay import DrillApp, ReplayApp, start_replay
from console.tui.screens.run import RunScreen
from console.tui.screens.runs import RunsScreen
from console.tui.widgets.drill_banner import DrillBanner
from console.tui.widgets.replay_bar import ReplayBar
from tests.drill.test_replay import record
from tests.tui.helpers import press, screen_text, settle, wait_for


def make_replay(
    tmp_path: Path, *, fake_wall: list[float] | None = None, keys: dict[str, str] | None = None
) -> ReplayApp:
    rec = record(tmp_path, f"sqlite:///{tmp_path / 'journal.db'}")
    source = Journal(rec.journal_url, create=False)
    try:
        recording = Recording.read(source, rec.run_id)
    finally:
        source.close()
    replayer = Replayer(recording, build_sandbox(recording, tmp_path / "drill"), speed=1e6)
    if fake_wall is not None:  # the simulated time moves only when the test moves it
        replayer.clock = SimClock(replayer.start_time, speed=1, wall=lambda: fake_wall[0])
    journal = start_replay(replayer, "trainee")
    return ReplayApp(
        replayer,
        journal,
        user="trainee",
        console=ConsoleConfig(keys=keys or {}),
        poll_interval=0.05,
        tick=0.02,
    )


def bar_text(app: ReplayApp) -> str:
    return str(app.screen.query_one(ReplayBar).render())


async def test_play_unfolds_the_run_at_speed(tmp_path: Path) -> None:
    app = make_replay(tmp_path)
    replayer = app.replayer
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RunScreen)
        assert app.screen.query(DrillBanner)
        assert f"DRILL {replayer.sandbox.drill_id}" in screen_text(app)
        assert "not production" in screen_text(app)
        assert "paused" in bar_text(app)
        assert f"event 1/{replayer.total} run.created" in bar_text(app)
        assert "✓ 0" in screen_text(app)
        await press(pilot, "space")
        await wait_for(pilot, lambda: replayer.finished, what="the replay to finish")
        await wait_for(pilot, lambda: "completed" in screen_text(app), what="run completed")
        assert "✓ 17" in screen_text(app)  # 12 updates, 3 inserts, 2 deletes
        assert f"event {replayer.total}/{replayer.total} run.completed" in bar_text(app)
        # The banner follows to every console screen (the runs list here).
        await press(pilot, "escape")
        assert app.screen.query(DrillBanner) and "not production" in screen_text(app)
    app.journal.close()
    replayer.close()


async def test_pause_stops_and_seek_jumps(tmp_path: Path) -> None:
    wall = [0.0]
    app = make_replay(tmp_path, fake_wall=wall)
    replayer = app.replayer
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "space")
        assert replayer.clock.playing
        # Half the recorded span later, part of the run has unfolded.
        span = (replayer.time_of(replayer.total - 1) - replayer.start_time).total_seconds()
        wall[0] += span / 2
        await wait_for(pilot, lambda: replayer.position > 1, what="events replayed")
        await settle(pilot)
        await press(pilot, "space")
        assert not replayer.clock.playing
        paused_at = replayer.position
        assert 1 < paused_at < replayer.total
        wall[0] += span * 10  # paused: the simulated time stands still
        await pilot.pause(0.2)
        await settle(pilot)
        assert replayer.position == paused_at
        assert "paused" in bar_text(app)
        # Seek one event forward, one back (rebuilds the sandbox), then to the end and start.
        await press(pilot, "right")
        assert replayer.position == paused_at + 1
        await press(pilot, "left")
        await press(pilot, "left")
        assert replayer.position == paused_at - 1
        await press(pilot, "end")
        assert replayer.finished and replayer.position == replayer.total
        await wait_for(pilot, lambda: "completed" in screen_text(app), what="run completed")
        await press(pilot, "home")
        assert replayer.position == 1 and not replayer.finished
        await wait_for(pilot, lambda: "planned" in screen_text(app), what="run back to planned")
        assert f"event 1/{replayer.total}" in bar_text(app)
        # Every event of the drill journal names the drill.
        events = app.journal.events(limit=1000)
        assert events and {e.payload.get("drill") for e in events} == {replayer.sandbox.drill_id}
    app.journal.close()
    replayer.close()


async def test_console_keys_rebind_the_replay_keys(tmp_path: Path) -> None:
    app = make_replay(tmp_path, keys={"replay.play": "p", "nope.nothing": "x"})
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert app._unknown_keys == ["nope.nothing"]
        await press(pilot, "p")
        assert app.replayer.clock.playing
    app.journal.close()
    app.replayer.close()


def test_the_simulated_clock_is_the_consoles_clock(tmp_path: Path) -> None:
    wall = [0.0]
    app = make_replay(tmp_path, fake_wall=wall)
    try:
        assert app.now() == app.replayer.clock.now() == app.replayer.time_of(0)
        app.replayer.clock.play()
        wall[0] += 90
        assert app.now() - app.replayer.time_of(0) == dt.timedelta(seconds=90)
    finally:
        app.journal.close()
        app.replayer.close()


async def test_a_drill_runs_screen_has_the_banner_a_real_one_not(tmp_path: Path) -> None:
    app = make_replay(tmp_path)
    replayer = app.replayer
    replayer.seek(replayer.total)
    app.journal.close()
    replayer.close()
    seen: dict[str, bool] = {}
    for name, url in (
        ("drill", replayer.sandbox.journal_url),
        ("real", f"sqlite:///{tmp_path / 'journal.db'}"),
    ):
        journal = Journal(url, create=False)
        console = BackoutApp(journal, user="oncall1", run=replayer.rec.run.id, poll_interval=None)
        async with console.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            assert isinstance(console.screen, RunScreen) and console.screen.bundle is not None
            seen[name] = bool(console.screen.query(DrillBanner))
            assert ("not production" in screen_text(console)) is seen[name]
        journal.close()
    assert seen == {"drill": True, "real": False}


async def test_the_console_on_a_drill_journal_shows_the_banner_everywhere(
    tmp_path: Path,
) -> None:
    """``backout console`` on a replay sandbox's journal: the runs list has the banner too."""
    app = make_replay(tmp_path)
    replayer = app.replayer
    replayer.seek(replayer.total)
    app.journal.close()
    replayer.close()
    journal = Journal(replayer.sandbox.journal_url, create=False, drill=replayer.sandbox.drill_id)
    console = DrillApp(journal, user="trainee", poll_interval=None)
    async with console.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert isinstance(console.screen, RunsScreen)
        assert f"DRILL {replayer.sandbox.drill_id}" in screen_text(console)
        await press(pilot, "enter")
        assert isinstance(console.screen, RunScreen)
        assert len(console.screen.query(DrillBanner)) == 1
        assert f"DRILL {replayer.sandbox.drill_id}" in screen_text(console)
    journal.close()
