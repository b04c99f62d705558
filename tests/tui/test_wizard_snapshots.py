"""Snapshots of the runbook wizard at 80x24: the approve confirm screen (the plan, its digest,
Cancel focused) and the state after a denial. The scene is fixed: the scenario journal's
clock, a runbook in ./runbooks, an execution id that does not vary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from console.config import Settings, load_settings
from console.runbook import service
from console.tui.app import BackoutApp
from tests.tui.helpers import press, settle, type_text
from tests.tui.journal_builder import RUN_IDS, BuiltJournal

SMALL = (80, 24)
RUN = RUN_IDS["completed"]
RUNBOOK = """\
runbook: sign-off
version: 1
title: Sign-off, then tell the channel
steps:
  - id: approve
    title: Two approvals, one from a data owner
    approval: {quorum: 2, require_roles: [data-owner], expires_after: 30m}
    on_denied: escalate
  - id: notify
    action: notify
    with: {message: signed off}
    next: end
  - id: escalate
    escalate: {page: [dba-oncall], message: the sign-off was denied}
"""
POLICY = """\
[policy]
version = 3

[policy.roles]
oncall = ["oncall1"]
data-owner = ["owner1", "owner2"]
incident-commander = ["ic1"]

[policy.approval]
quorum = 2
require_roles = ["data-owner"]
exclude = ["requester", "executor"]
expires_after = "30m"
"""


@pytest.fixture
def settings(built: BuiltJournal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """oncall1 has started the sign-off runbook for the completed run (id fixed)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "sign-off.yaml").write_text(RUNBOOK)
    (tmp_path / "backout.toml").write_text(POLICY)
    settings = load_settings(tmp_path / "backout.toml")
    monkeypatch.setattr("console.runbook.executor.new_id", lambda: "5e1f0ff00001")
    journal = built.open("oncall1")
    try:
        service.start(journal, settings, "sign-off", RUN)
    finally:
        journal.close()
    return settings


def snap(
    snap_compare: Callable[..., bool],
    built: BuiltJournal,
    settings: Settings,
    person: str,
    *keys: str,
    text: str | None = None,
    after: tuple[str, ...] = (),
) -> bool:
    now = built.clock.now
    app = BackoutApp(
        built.open(person),
        user=person,
        settings=settings,
        run=RUN,
        clock=lambda: now,
        poll_interval=None,
    )

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await press(pilot, "A", "5")
        await settle(pilot)
        app.clear_notifications()  # the arming toast
        await press(pilot, *keys)
        if text is not None:
            await type_text(pilot, text)
            await press(pilot, *after)
        await settle(pilot)
        app.clear_notifications()
        await settle(pilot)

    return bool(snap_compare(app, terminal_size=SMALL, run_before=before))


def test_approve_confirm_screen(
    snap_compare: Callable[..., bool], built: BuiltJournal, settings: Settings
) -> None:
    assert snap(snap_compare, built, settings, "owner1", "a")


def test_approval_denied(
    snap_compare: Callable[..., bool], built: BuiltJournal, settings: Settings
) -> None:
    assert snap(
        snap_compare,
        built,
        settings,
        "ic1",
        "d",
        "shift+tab",
        text="the plan touches prod",
        after=("enter", "y"),
    )
