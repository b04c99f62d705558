"""Snapshots of every screen at 80x24 and 160x50 (fixed clock: no wall-clock text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.helpers import make_app, press, settle, type_text
from tests.tui.journal_builder import RUN_IDS, BuiltJournal

SMALL = (80, 24)
LARGE = (160, 50)
PAUSED = RUN_IDS["paused"]


def snap(
    snap_compare: Callable[..., bool],
    built: BuiltJournal,
    size: tuple[int, int],
    *keys: str,
    run: str | None = None,
    text: str | None = None,
    after: tuple[str, ...] = (),
) -> bool:
    app = make_app(built, run=run)

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await press(pilot, *keys)
        if text is not None:
            await type_text(pilot, text)
            await press(pilot, *after)
        await settle(pilot)

    return bool(snap_compare(app, terminal_size=size, run_before=before))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x50"])
def test_runs(
    snap_compare: Callable[..., bool], built: BuiltJournal, size: tuple[int, int]
) -> None:
    assert snap(snap_compare, built, size, "j", "j")


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x50"])
def test_timeline_on_a_failure(
    snap_compare: Callable[..., bool], built: BuiltJournal, size: tuple[int, int]
) -> None:
    assert snap(snap_compare, built, size, "f", "f", run=PAUSED)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x50"])
def test_operations(
    snap_compare: Callable[..., bool], built: BuiltJournal, size: tuple[int, int]
) -> None:
    assert snap(snap_compare, built, size, "2", "j", "j", run=PAUSED)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x50"])
def test_events(
    snap_compare: Callable[..., bool], built: BuiltJournal, size: tuple[int, int]
) -> None:
    assert snap(snap_compare, built, size, "3", "G", run=PAUSED)


def test_reconciliation_before_any(snap_compare: Callable[..., bool], built: BuiltJournal) -> None:
    assert snap(snap_compare, built, SMALL, "4", run=RUN_IDS["completed"])


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x50"])
def test_runbook_with_a_denied_approval(
    snap_compare: Callable[..., bool], built: BuiltJournal, size: tuple[int, int]
) -> None:
    assert snap(snap_compare, built, size, "5", "j", "j", run=RUN_IDS["rolled_back"])


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x50"])
def test_audit(
    snap_compare: Callable[..., bool], built: BuiltJournal, size: tuple[int, int]
) -> None:
    assert snap(snap_compare, built, size, "6", run=RUN_IDS["rolled_back"])


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x50"])
def test_conflict_row_diff(
    snap_compare: Callable[..., bool], built: BuiltJournal, size: tuple[int, int]
) -> None:
    assert snap(
        snap_compare,
        built,
        size,
        "2",
        "slash",
        run=PAUSED,
        text="conflict",
        after=("enter", "enter"),
    )


def test_help(snap_compare: Callable[..., bool], built: BuiltJournal) -> None:
    assert snap(snap_compare, built, SMALL, "2", "question_mark", run=PAUSED)


def test_large_run_timeline(snap_compare: Callable[..., bool], built: BuiltJournal) -> None:
    assert snap(snap_compare, built, LARGE, "f", "plus", "plus", run=RUN_IDS["large"])
