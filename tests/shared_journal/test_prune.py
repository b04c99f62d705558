"""``journal prune`` on a team journal: only the owner role prunes, enforced by PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from console.errors import Blocked
from console.journal import Journal
from console.journal.copy import copy_journal
from console.journal.prune import PRUNED_KIND, prune
from console.journal.setup import open_journal
from console.journal.verify import verify
from tests.journal.gen import populate, ticking_clock
from tests.shared_journal.conftest import Team

LATER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_only_the_owner_prunes(team: Team) -> None:
    admin = open_journal(team.url, "ignored")
    populate(admin, seed=2, runs=2, max_segments=2)
    head = admin.head()
    for user in (team.operator, team.auditor, team.approver):
        j = open_journal(team.url_as(user), "x")
        try:
            with pytest.raises(Blocked, match="owner role"):
                prune(j, LATER)
            # Around the CLI's check, the database refuses too.
            refused = "journal_head" if user == team.auditor else "may not write journal.pruned"
            with pytest.raises(Blocked, match=refused):
                j.append(PRUNED_KIND, {"ranges": []})
            with pytest.raises(DBAPIError), j.engine.begin() as conn:
                conn.execute(text("INSERT INTO prune_permits (lo, hi) VALUES (1, 1000)"))
        finally:
            j.close()
    assert admin.head() == head
    keeper = open_journal(team.url_as(team.add_user("owner")), "x")
    try:
        report = prune(keeper, LATER, reason="test")
    finally:
        keeper.close()
    assert report.plan.events > 0
    assert admin.events(kinds=[PRUNED_KIND], limit=1)[0].actor == keeper.actor
    auditor = open_journal(team.url_as(team.auditor), "x")
    try:
        checked = verify(auditor, remember=False, trusted=None)
        assert checked.ok, checked.problem
    finally:
        auditor.close()
        admin.close()


def test_a_pruned_journal_copies_to_postgres_and_verifies(tmp_path: Path, pg_url: str) -> None:
    src = Journal(str(tmp_path / "solo.db"), actor="alice", clock=ticking_clock())
    populate(src, seed=4, runs=2, max_segments=2)
    assert prune(src, LATER).plan.events > 0
    src.close()
    counts, report = copy_journal(str(tmp_path / "solo.db"), pg_url)
    assert report.ok, report.problem
    assert counts["pruned_state"] > 0
