"""The Reconciliation tab over a run applied by the real engine to a real SQLite target, then
edited out of band: summary by class, findings worst first, a finding's three-way row diff,
and ``r`` reconciling again in a worker (journaled only when armed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from textual.widgets import Static

from console.changes import load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.journal import Journal
from console.reconcile.report import SEVERITY
from console.reconcile.service import reconcile_run
from console.tui.app import BackoutApp
from console.tui.screens.finding_diff import FindingDiffScreen
from console.tui.screens.run import RunScreen
from console.tui.tabs.reconciliation import FindingList, ReconciliationPane
from tests.engine.helpers import changeset_doc, make_items, write_changeset
from tests.tui.helpers import press, screen_text, settle, wait_for


@pytest.fixture
def edited_run(tmp_path: Path) -> tuple[str, str]:
    """A clean apply of ids 1-10, then hand edits: id 3 changed, id 4 deleted, id 20 (outside
    the change set) changed. Returns the journal URL and the run id."""
    target = f"sqlite:///{tmp_path / 't.db'}"
    make_items(target, 40)
    journal_url = f"sqlite:///{tmp_path / 'journal.db'}"
    journal = Journal(journal_url, actor="tester")
    cs = load_changeset(
        write_changeset(tmp_path / "cs.yaml", changeset_doc(target, updates=range(1, 11)))
    )
    run_id = Engine(journal, Settings()).apply(cs).run_id
    assert run_id
    journal.close()
    engine = create_engine(target)
    with engine.begin() as conn:
        conn.execute(text("UPDATE items SET note = 'hand edit' WHERE id = 3"))
        conn.execute(text("DELETE FROM items WHERE id = 4"))
        conn.execute(text("UPDATE items SET amount = amount + 1 WHERE id = 20"))
    engine.dispose()
    return journal_url, run_id


def _app(journal_url: str, run_id: str, **kw: Any) -> BackoutApp:
    journal = Journal(journal_url, actor="oncall1", create=False)
    return BackoutApp(journal, user="oncall1", run=run_id, poll_interval=None, **kw)


async def _open_tab(pilot: Any) -> ReconciliationPane:
    await settle(pilot)
    await press(pilot, "4")
    await settle(pilot)
    return pilot.app.screen.query_one(ReconciliationPane)


def _worst_first(classes: Any) -> list[str]:
    return sorted(classes, key=SEVERITY.index)


def _classes(pane: ReconciliationPane) -> list[str]:
    assert pane.rec is not None
    return [r.finding.cls for r in pane.rec.findings]


async def test_tab_shows_the_journaled_reconciliation_by_class(edited_run: tuple[str, str]) -> None:
    journal_url, run_id = edited_run
    journal = Journal(journal_url, actor="tester", create=False)
    truth = reconcile_run(journal, Settings(), run_id)
    journal.close()
    app = _app(journal_url, run_id)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open_tab(pilot)
        assert pane.rec is not None and pane.rec.seq is not None and not pane.rec.complete
        assert list(pane.rec.counts) == _worst_first(pane.rec.counts)
        assert {"wrong_value", "missing_row"} <= set(pane.rec.counts)
        assert pane.rec.counts == truth.counts
        shown = screen_text(app)
        applied = f"✓ applied {truth.counts['applied']}"
        for words in ("⚠ needs review", "✗ wrong value 1", "− missing row 1", applied):
            assert words in shown, words
        assert "worst findings the journal kept" in shown
        # The journal keeps only findings needing review, worst first.
        assert _classes(pane)[0] == "wrong_value" and "missing_row" in _classes(pane)
        assert _classes(pane) == _worst_first(_classes(pane)) and "applied" not in _classes(pane)
        assert pane.query_one(FindingList).has_focus
        # Only the journal's copy is in memory: the service recomputes this key to explain it.
        await press(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, FindingDiffScreen)
        await wait_for(pilot, lambda: screen.explained is not None, what="the explanation")
        assert screen.explained is not None and screen.explained["class"] == "wrong_value"
        assert "explained by DeepDiff" in screen_text(app)


async def test_r_reconciles_in_a_worker_read_only_then_armed(edited_run: tuple[str, str]) -> None:
    journal_url, run_id = edited_run
    app = _app(journal_url, run_id)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open_tab(pilot)
        assert pane.rec is None
        assert "not reconciled yet" in screen_text(app)
        pane.action_reconcile()  # what r does: the work is in a thread, the loop goes on
        assert pane.running_since is not None
        assert [w.name for w in app.workers if w.group == "reconcile"] == ["reconcile"]
        assert "reconciling against the target" in str(
            pane.query_one("#recon-progress", Static).render()
        )
        await wait_for(pilot, lambda: pane.running_since is None, what="the reconciliation")
        await settle(pilot)
        assert pane.rec is not None and pane.rec.complete and pane.rec.seq is None
        assert _classes(pane)[0] == "wrong_value" and "missing_row" in _classes(pane)
        assert _classes(pane) == _worst_first(_classes(pane))
        assert _classes(pane).count("applied") == pane.rec.counts["applied"] >= 8
        assert pane.query_one(FindingList).total == len(pane.rec.findings)
        assert "computed here, not journaled" in screen_text(app)
        assert app.journal.events(run_id, kinds=["reconcile.finished"]) == []  # read-only

        await press(pilot, "A")  # arm: the result is journaled as the CLI does
        await pilot.press("r")
        await wait_for(pilot, lambda: pane.running_since is None, what="the reconciliation")
        await settle(pilot)
        journaled = app.journal.events(run_id, kinds=["reconcile.finished"])
        assert len(journaled) == 1 and pane.rec.seq == journaled[0].seq
        assert pane.rec.complete  # the journal moving does not replace the full list
        assert app.journal.get_run(run_id).drifted


async def test_opening_a_finding_shows_the_three_way_diff(edited_run: tuple[str, str]) -> None:
    journal_url, run_id = edited_run
    app = _app(journal_url, run_id)
    async with app.run_test(size=(140, 40)) as pilot:
        pane = await _open_tab(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: pane.running_since is None, what="the reconciliation")
        await settle(pilot)
        await press(pilot, "enter")  # the worst: id 3, wrong_value on note
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, FindingDiffScreen)
        await wait_for(pilot, lambda: screen.explained is not None, what="the explanation")
        await settle(pilot)
        shown = screen_text(app)
        for words in ("before", "expected", "actual", "hand edit", "v2", "✗ wrong value"):
            assert words in shown, words
        assert "explained by DeepDiff" in shown
        note = next(f for f in screen.explained["fields"] if f["column"] == "note")
        assert note["class"] == "wrong_value" and note["actual"] == "hand edit"
        await press(pilot, "escape")
        pane.list.move_to(_classes(pane).index("missing_row"))  # id 4
        await press(pilot, "enter")
        await settle(pilot)
        assert isinstance(app.screen, FindingDiffScreen)
        assert "no row in: actual" in screen_text(app)


async def test_palette_reconciles_from_another_tab(edited_run: tuple[str, str]) -> None:
    journal_url, run_id = edited_run
    app = _app(journal_url, run_id)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen) and screen.active_tab == "timeline"
        command = next(
            c for c in screen.palette_commands() if c.title == "Reconciliation: reconcile now"
        )
        command.run()  # the tab is not mounted yet: it reconciles once it is
        pane = screen.query_one(ReconciliationPane)
        await wait_for(pilot, lambda: pane.rec is not None, what="the reconciliation")
        assert screen.active_tab == "reconciliation" and pane.rec is not None
        assert pane.rec.complete and pane.rec.needs_review
