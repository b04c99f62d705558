"""The second line of defence: the database itself refuses to edit or delete events."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from console.journal import Journal
from console.journal.verify import verify

STATEMENTS = [
    "UPDATE events SET payload = '{}' WHERE seq = 1",
    "UPDATE events SET hash = hash",
    "DELETE FROM events WHERE seq = 2",
    "DELETE FROM events",
]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_update_and_delete_on_events_are_refused(journal: Journal, statement: str) -> None:
    with journal.write() as w:
        w.append("annotation", {"text": "one"})
        w.append("annotation", {"text": "two"})
    before = journal.events()
    with pytest.raises(DBAPIError) as refused, journal.engine.begin() as conn:
        conn.execute(text(statement))
    # A clean, named refusal from the database, not a crash or a silent success.
    assert "journal events are append-only" in str(refused.value.orig)
    assert journal.events() == before
    assert verify(journal).ok


def test_truncate_is_refused_on_postgresql(journal: Journal) -> None:
    if journal.dialect != "postgresql":
        pytest.skip("TRUNCATE is a PostgreSQL statement (SQLite has DELETE only)")
    journal.append("annotation", {})
    with pytest.raises(DBAPIError, match="append-only"), journal.engine.begin() as conn:
        conn.execute(text("TRUNCATE events"))
    assert journal.count_events() == 1


def test_inserting_is_still_allowed(journal: Journal) -> None:
    """The triggers guard edits only: appends through the store keep working."""
    journal.append("annotation", {"n": 1})
    journal.append("annotation", {"n": 2})
    assert journal.count_events() == 2


def test_triggers_survive_reopening(journal_url: str) -> None:
    """``ensure_schema`` is idempotent and keeps (or restores) the triggers."""
    Journal(journal_url).close()
    j = Journal(journal_url)
    j.append("annotation", {})
    with pytest.raises(DBAPIError, match="append-only"), j.engine.begin() as conn:
        conn.execute(text("DELETE FROM events"))
    j.close()
