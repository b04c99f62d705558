"""Driving the console in tests: build the app, wait for its workers, read the screen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from console.config import ConsoleConfig
from console.tui.app import BackoutApp
from console.tui.widgets.status_bar import StatusBar
from tests.tui.journal_builder import BuiltJournal


def make_app(
    built: BuiltJournal,
    *,
    run: str | None = None,
    readonly: bool = False,
    poll_interval: float | None = None,
    keys: dict[str, str] | None = None,
    theme: str | None = None,
) -> BackoutApp:
    journal = built.open(actor="oncall1")
    now = built.clock.now
    return BackoutApp(
        journal,
        user="oncall1",
        console=ConsoleConfig(keys=keys or {}, theme=theme),
        readonly=readonly,
        run=run,
        clock=lambda: now,
        poll_interval=poll_interval,
    )


async def settle(pilot: Pilot[Any], rounds: int = 3) -> None:
    """Let every worker finish and every message land (workers post to the loop)."""
    for _ in range(rounds):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def press(pilot: Pilot[Any], *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot, 1)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type into the focused input (no waiting between characters)."""
    await pilot.press(*text)


async def wait_for(
    pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 5.0, what: str = ""
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)


def status_text(app: BackoutApp) -> str:
    bar = app.screen.query_one(StatusBar)
    return str(bar.render())


def screen_text(app: BackoutApp) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)
