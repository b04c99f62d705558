"""The console's journal watcher: polling on SQLite, LISTEN/NOTIFY on PostgreSQL, and a
reconnect with backoff (said in the status bar) when the PostgreSQL connection is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from console.tui.app import BackoutApp
from console.tui.widgets.run_list import RunList
from tests.tui.helpers import make_app, settle, status_text, wait_for
from tests.tui.journal_builder import T0, BuiltJournal, FixedClock, build_journal_at, planned_run


def _append_run(built: BuiltJournal, run_id: str) -> None:
    """Another process's writer adds a run (in a thread: its own connection)."""

    def other() -> None:
        clock = FixedClock(T0.replace(hour=3))
        j = built.open(actor="n8n-bot")
        j.clock = clock
        planned_run(j, clock, run_id)
        j.close()

    t = threading.Thread(target=other)
    t.start()
    t.join()


def _watching() -> bool:
    return any(t.name == "backout-journal-watch" for t in threading.enumerate())


def _admin(pg_url: str, *statements: str) -> None:
    """Run statements from the server's maintenance database (not the journal's)."""
    url = make_url(pg_url).set(database="postgres")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for s in statements:
            conn.execute(text(s))
    engine.dispose()


async def test_polling_on_sqlite(built: BuiltJournal) -> None:
    app = make_app(built, poll_interval=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: "◌ polling" in status_text(app), what="polling state")
        runs = app.screen.query_one(RunList)
        total = runs.total
        _append_run(built, "new0run0poll")
        await wait_for(pilot, lambda: runs.total == total + 1, timeout=2, what="the new run")
    # Quitting stops the watcher: its thread ends within a poll interval.
    deadline = time.monotonic() + 2
    while _watching() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _watching()


async def test_listen_on_postgres_then_reconnect_after_terminate(
    pg_url: str, tmp_path: Path
) -> None:
    built = build_journal_at(pg_url, tmp_path / "unused", large_ops=200)
    app = make_app(built, poll_interval=0.1)
    assert isinstance(app, BackoutApp)
    db = make_url(pg_url).database
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: "● live" in status_text(app), what="the live state")
        runs = app.screen.query_one(RunList)
        total = runs.total
        start = time.monotonic()
        _append_run(built, "pg0run0listen")
        await wait_for(pilot, lambda: runs.total == total + 1, timeout=1, what="the new run")
        assert time.monotonic() - start < 1.0

        # The server refuses new connections to the journal and ends the console's sessions.
        _admin(
            pg_url,
            f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false',
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{db}' AND pid <> pg_backend_pid()",
        )
        try:
            await wait_for(
                pilot,
                lambda: "⚠ reconnecting (attempt 2" in status_text(app),
                timeout=5,
                what="the reconnecting state",
            )
            assert app.live_state is not None and app.live_state.mode == "reconnecting"
            assert app.live_state.retry_in == 0.2  # backoff doubles: 0.1, 0.2, ...
        finally:
            _admin(pg_url, f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
        await wait_for(pilot, lambda: "● live" in status_text(app), timeout=5, what="live again")
        assert "reconnecting" not in status_text(app)

        # Events committed after the outage appear; the console kept running throughout.
        _append_run(built, "pg0run0after")
        await wait_for(pilot, lambda: runs.total == total + 2, timeout=2, what="the next run")
        await settle(pilot)
        ids = {runs.row_at(i).id for i in range(2)}  # type: ignore[union-attr]
        assert ids == {"pg0run0after", "pg0run0listen"}
