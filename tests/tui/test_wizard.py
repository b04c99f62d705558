"""The runbook wizard in the console: two identities on one real journal, each in its own
app, acting through the same runbook service and gate as the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, OptionList

from console.config import Settings, load_settings
from console.journal import Journal
from console.journal.setup import open_journal
from console.tui.app import BackoutApp
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.run import RunScreen
from console.tui.tabs.runbook import RunbookPane
from tests.conftest import make_pg_database
from tests.runbook.conftest import Team, _drop_roles, _pg_team, make_team
from tests.tui.helpers import press, screen_text, settle, type_text, wait_for


@pytest.fixture
def team(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Team]:
    """SQLite, or PostgreSQL (parametrize indirectly) where each person is a database role."""
    monkeypatch.chdir(tmp_path)  # ./runbooks holds the team's own runbook too
    if getattr(request, "param", "sqlite") == "sqlite":
        yield make_team(f"sqlite:///{tmp_path / 'journal.db'}", tmp_path)
        return
    url = make_pg_database()
    t = make_team(url, tmp_path)
    group = _pg_team(url, t.names)
    yield t
    _drop_roles(url, [*t.names.values(), group])


@pytest.fixture
def settings(team: Team) -> Settings:
    return load_settings(team.config)


class Console:
    """One person's console on the team's journal, armed, on the run's Runbook tab."""

    def __init__(self, team: Team, person: str, settings: Settings) -> None:
        self.journal = open_journal(team.url_for(person), actor=team.who(person))
        self.app = BackoutApp(
            self.journal,
            user=team.who(person),
            settings=settings,
            run=team.run_id,
            poll_interval=0.1,
        )

    @property
    def pane(self) -> RunbookPane:
        run_screen = next(s for s in self.app.screen_stack if isinstance(s, RunScreen))
        return run_screen.query_one(RunbookPane)

    def modal(self) -> ConfirmScreen:
        screen = self.app.screen
        assert isinstance(screen, ConfirmScreen), type(screen).__name__
        return screen

    async def open(self, pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await press(pilot, "A", "5")
        await settle(pilot)

    async def ask(self, pilot: Pilot[Any], key: str) -> ConfirmScreen:
        """Press an action key and wait for its confirm screen."""
        await press(pilot, key)
        await wait_for(pilot, lambda: isinstance(self.app.screen, ConfirmScreen), what="confirm")
        return self.modal()

    async def confirm(self, pilot: Pilot[Any], text: str | None = None) -> str:
        """Fill the text field if asked, confirm with y, return the outcome line."""
        before = self.pane.last
        if text is not None:
            self.modal().query_one(Input).focus()
            await type_text(pilot, text)
            await press(pilot, "enter")  # back to Cancel, never a confirmation
            assert self.app.focused is not None and self.app.focused.id == "confirm-cancel"
        await press(pilot, "y")
        await wait_for(
            pilot,
            lambda: self.pane.last is not before and not self.pane.busy,
            timeout=30,
            what="the action's outcome",
        )
        await settle(pilot)
        assert self.pane.last is not None
        return self.pane.last.plain

    async def step(self, pilot: Pilot[Any]) -> str:
        await self.ask(pilot, "n")
        return await self.confirm(pilot)

    def exec_status(self) -> str:
        ex = self.pane.execs[0] if self.pane.execs else None
        return f"{ex.status}@{ex.current_step}" if ex else "-"


def events(team: Team, kind: str) -> list[dict[str, Any]]:
    j = team.journal()
    try:
        return [
            {**e.payload, "actor": e.actor} for e in j.events(team.run_id, kinds=[kind], limit=100)
        ]
    finally:
        j.close()


def cli_plan_digest(team: Team) -> str:
    r = team.cli("oncall1", "rollback", team.run_id, "--plan")
    assert r.code == 0, r.err
    found = re.search(r"plan sha256 ([0-9a-f]{64})", r.out)
    assert found, r.out
    return found.group(1)


MANUAL = """
runbook: rb-manual
version: 1
prerequisites: [backup_reference]
steps:
  - id: backup
    manual: "Take a snapshot of the target and record its id."
    answer: {prompt: Snapshot id, pattern: "^snap-"}
  - id: notify
    action: notify
    with: {message: ok}
    next: end
"""


async def start_runbook(
    op: Console, pilot: Pilot[Any], name: str = "rollback-batch", text: str | None = None
) -> str:
    await press(pilot, "s")
    await wait_for(pilot, lambda: bool(op.app.screen.query(OptionList)), what="the runbook list")
    options = op.app.screen.query_one(OptionList)
    ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
    options.highlighted = ids.index(name)
    await press(pilot, "enter")
    await wait_for(pilot, lambda: isinstance(op.app.screen, ConfirmScreen), what="confirm")
    assert "runbook.started" in screen_text(op.app)
    return await op.confirm(pilot, text)


@pytest.fixture
def consoles(team: Team, settings: Settings) -> Iterator[dict[str, Console]]:
    made = {p: Console(team, p, settings) for p in ("oncall1", "owner1", "ic1")}
    yield made
    for c in made.values():
        c.journal.close()


@pytest.mark.parametrize(
    "team", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_wizard_two_identities_live_approval_and_self_approval_refused(
    team: Team, consoles: dict[str, Console]
) -> None:
    op, owner = consoles["oncall1"], consoles["owner1"]
    async with op.app.run_test(size=(120, 40)) as p1, owner.app.run_test(size=(120, 40)) as p2:
        await op.open(p1)
        await owner.open(p2)
        assert "armed" in op.pane.notice().plain

        out = await start_runbook(op, p1)
        assert out.startswith("✓ started runbook rollback-batch"), out
        assert (await op.step(p1)).startswith("✓ step 'pause'")
        assert (await op.step(p1)).startswith("✓ step 'assess'")
        assert op.exec_status() == "awaiting_approval@approve"

        # The approver's console sees the request arrive (journal head polling), untouched.
        await wait_for(
            p2, lambda: owner.exec_status() == "awaiting_approval@approve", what="live request"
        )
        assert "a approve" in owner.pane.notice().plain

        # Self-approval: the gate's refusal (rule, policy version), nothing granted.
        await op.ask(p1, "a")
        out = await op.confirm(p1)
        assert out.startswith("⊘ refused: policy v3 (approval.exclude.requester)"), out
        assert events(team, "approval.granted") == []

        # The approver sees the exact plan and its digest: the one `rollback --plan` prints.
        digest = cli_plan_digest(team)
        modal = await owner.ask(p2, "a")
        assert owner.app.focused is modal.query_one("#confirm-cancel", Button)
        assert f"plan sha256 {digest}" in screen_text(owner.app)
        out = await owner.confirm(p2, "plan read")
        assert out.startswith(f"✓ {team.who('owner1')} approved step 'approve'"), out
        granted = events(team, "approval.granted")
        assert [(g["actor"], g["plan_digest"], g["comment"]) for g in granted] == [
            (team.who("owner1"), digest, "plan read")
        ]

        # One approval of two: running the step is refused by the gate, journaled.
        out = await op.step(p1)
        assert out.startswith("⊘ refused:") and "approval.quorum" in out, out
        assert any(r["rule"] == "approval.quorum" for r in team.refusals())
        await wait_for(p1, lambda: "owner1" in screen_text(op.app), what="the vote shown")


async def test_denial_and_cancel_write_nothing(
    team: Team, consoles: dict[str, Console], settings: Settings
) -> None:
    op, ic = consoles["oncall1"], consoles["ic1"]
    async with op.app.run_test(size=(120, 40)) as p1, ic.app.run_test(size=(120, 40)) as p2:
        await op.open(p1)
        await ic.open(p2)
        await start_runbook(op, p1)

        # Cancel is focused: enter writes nothing.
        head = team.journal().head()
        modal = await op.ask(p1, "n")
        assert op.app.focused is modal.query_one("#confirm-cancel", Button)
        await press(p1, "enter")
        assert not isinstance(op.app.screen, ConfirmScreen)
        assert team.journal().head() == head
        assert op.exec_status() == "active@pause"

        await op.step(p1)
        await op.step(p1)
        await wait_for(p2, lambda: ic.exec_status() == "awaiting_approval@approve", what="live")

        # The plan changes between showing it and approving it: the gate refuses.
        await ic.ask(p2, "a")
        team.target_sql("UPDATE items SET name = 'fixed by hand' WHERE id = 3")
        out = await ic.confirm(p2)
        assert out.startswith("⊘ refused: policy v3 (approval.plan_digest)"), out
        assert events(team, "approval.granted") == []

        # A denial needs a reason: confirming without one keeps the screen open.
        await ic.ask(p2, "d")
        await press(p2, "y")
        assert isinstance(ic.app.screen, ConfirmScreen)
        assert "Why is required" in screen_text(ic.app)
        out = await ic.confirm(p2, "conflicts need a DBA")
        assert out.startswith(f"✓ {team.who('ic1')} denied step 'approve'"), out
        assert "Execution goes to 'escalate'" in out
        denied = events(team, "approval.denied")
        assert [(d["actor"], d["comment"]) for d in denied] == [
            (team.who("ic1"), "conflicts need a DBA")
        ]
        await wait_for(p1, lambda: op.exec_status() == "active@escalate", what="the branch")
        assert "⊗ " + team.who("ic1") in screen_text(op.app)


async def test_read_only_offers_no_write(team: Team, settings: Settings) -> None:
    journal = Journal(team.url, actor=team.who("oncall1"))
    app = BackoutApp(
        journal,
        user="oncall1",
        settings=settings,
        run=team.run_id,
        readonly=True,
        poll_interval=None,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "A", "5", "s", "n")
        pane = app.screen.query_one(RunbookPane)
        assert "read-only (--readonly)" in pane.notice().plain
        assert not isinstance(app.screen, ConfirmScreen)
        bindings = app.screen.active_bindings
        assert not bindings["s"].enabled and not bindings["n"].enabled
        # Help lists the wizard's keys with their ids; the palette offers its commands.
        await press(pilot, "question_mark")
        assert "runbook.approve" in screen_text(app) and "Run step" in screen_text(app)
        await press(pilot, "escape", "ctrl+p")
        await type_text(pilot, "Runbook: start")
        await wait_for(
            pilot,
            lambda: "Runbook: start a runbook for this run" in screen_text(app),
            what="the palette command",
        )
    journal.close()
    assert events(team, "runbook.started") == []


async def test_manual_step_answer(team: Team, consoles: dict[str, Console]) -> None:
    team.write_runbook("rb-manual", MANUAL)
    op = consoles["oncall1"]
    async with op.app.run_test(size=(120, 40)) as pilot:
        await op.open(pilot)
        out = await start_runbook(op, pilot, "rb-manual", "snap-0400")
        assert out.startswith("✓ started runbook rb-manual"), out
        assert [e["backup_ref"] for e in events(team, "runbook.started")] == ["snap-0400"]
        await op.ask(pilot, "n")
        assert "Take a snapshot of the target" in screen_text(op.app)
        await press(pilot, "y")
        assert "Snapshot id is required" in screen_text(op.app)
        out = await op.confirm(pilot, "oops")
        assert out.startswith("✗ step 'backup': the answer does not match"), out
        assert events(team, "runbook.step.started") == []
        await op.ask(pilot, "n")
        out = await op.confirm(pilot, "snap-0412")
        assert out.startswith("✓ step 'backup' (manual)"), out
        done = events(team, "runbook.step.finished")
        assert [(d["step"], d["result"]["answer"]) for d in done] == [("backup", "snap-0412")]
        assert op.exec_status() == "active@notify"


APPROVE_FIRST = """
runbook: rb-approve-first
version: 1
steps:
  - id: approve
    approval: {quorum: 2}
  - id: rollback
    action: rollback
    next: end
"""


async def test_role_duplicate_and_expiry_refusals(
    team: Team, settings: Settings, consoles: dict[str, Console], monkeypatch: pytest.MonkeyPatch
) -> None:
    team.write_runbook("rb-approve-first", APPROVE_FIRST)
    op, owner, nobody = consoles["oncall1"], consoles["owner1"], Console(team, "nobody", settings)
    async with (
        op.app.run_test(size=(120, 40)) as p1,
        owner.app.run_test(size=(120, 40)) as p2,
        nobody.app.run_test(size=(120, 40)) as p3,
    ):
        for console, pilot in ((op, p1), (owner, p2), (nobody, p3)):
            await console.open(pilot)
        await start_runbook(op, p1, "rb-approve-first")
        for console, pilot in ((owner, p2), (nobody, p3)):
            await wait_for(pilot, lambda c=console: c.exec_status() == "awaiting_approval@approve")

        await nobody.ask(p3, "a")
        assert (await nobody.confirm(p3)).startswith("⊘ refused: policy v3 (policy.roles)")
        await owner.ask(p2, "a")
        assert (await owner.confirm(p2)).startswith("✓ ")
        await owner.ask(p2, "a")
        assert (await owner.confirm(p2)).startswith("⊘ refused: policy v3 (approval.duplicate)")

        monkeypatch.setenv("BACKOUT_CLOCK", "+31m")  # the clock the runbook commands use
        out = await op.step(p1)
        assert out.startswith("⊘ refused: policy v3 (approval.expires_after)"), out
        await wait_for(p1, lambda: "expired" in op.exec_status() or "blocked" in op.exec_status())
    nobody.journal.close()
    assert [g["actor"] for g in events(team, "approval.granted")] == [team.who("owner1")]
    assert [e["exec"] for e in events(team, "approval.expired")]
