"""The console on a shared PostgreSQL journal: same screens, same keys, live updates."""

from __future__ import annotations

import threading
from pathlib import Path

from console.tui.widgets.operation_list import OperationList
from console.tui.widgets.run_list import RunList
from console.tui.widgets.timeline import Timeline
from tests.tui.helpers import make_app, press, settle, status_text, wait_for
from tests.tui.journal_builder import RUN_IDS, T0, FixedClock, build_journal_at, planned_run


async def test_console_on_postgres(pg_url: str, tmp_path: Path) -> None:
    built = build_journal_at(pg_url, tmp_path / "unused", large_ops=2_000)
    app = make_app(built, poll_interval=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        runs = app.screen.query_one(RunList)
        assert runs.total == 9
        await press(pilot, "slash")
        await pilot.press(*"status:paused")
        await press(pilot, "enter")
        await settle(pilot)
        assert runs.total == 2
        await press(pilot, "escape")
        await settle(pilot)

        def other_console() -> None:
            clock = FixedClock(T0.replace(hour=3))
            other = built.open(actor="n8n-bot")
            other.clock = clock
            planned_run(other, clock, "pg0run0live0")
            other.close()

        writer = threading.Thread(target=other_console)
        writer.start()
        writer.join()
        await wait_for(pilot, lambda: runs.total == 10, timeout=5, what="the new run")
        app.open_run(RUN_IDS["paused"])
        await settle(pilot)
        await press(pilot, "f")
        timeline = app.screen.query_one(Timeline)
        assert timeline.selected is not None and timeline.selected.kind == "op.conflict"
        await press(pilot, "2")
        await settle(pilot)
        await press(pilot, "G")
        await settle(pilot)
        assert "300 / 300" in status_text(app)
        assert app.screen.query_one(OperationList).current is not None
