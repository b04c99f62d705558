"""The store coalesces the projection changes of one transaction into a few ``executemany``
statements. Property: the result is exactly what running the changes one by one gives (or both
fail), whatever the mix of inserts, value updates and increments, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from console.journal import Journal
from console.journal.projections import Change, Insert, Update
from console.journal.store import T_RUNS, _apply_changes

IDS = ["a", "b", "c", "d"]
EXISTING = {"a": 5, "b": 0}  # rows present before the transaction: id -> rows_applied


def _run_row(run_id: str, applied: int = 0) -> dict[str, Any]:
    return {
        "id": run_id,
        "status": "planned",
        "rows_applied": applied,
        "rows_failed": 0,
        "created_at": "2026-01-01T00:00:00.000000Z",
        "last_seq": 0,
    }


change = st.one_of(
    st.builds(
        lambda rid, n: Insert("runs", _run_row(rid, n)), st.sampled_from(IDS), st.integers(0, 9)
    ),
    st.builds(
        lambda rid, status, reason: Update(
            "runs", {"id": rid}, {"status": status, **({"reason": reason} if reason else {})}
        ),
        st.sampled_from(IDS),
        st.sampled_from(["running", "paused", "completed"]),
        st.sampled_from([None, "", "why"]),
    ),
    st.builds(
        lambda rid, col, n: Update("runs", {"id": rid}, {}, {col: n}),
        st.sampled_from(IDS),
        st.sampled_from(["rows_applied", "rows_failed"]),
        st.integers(-3, 5),
    ),
    st.builds(
        lambda rid, n, m: Update("runs", {"id": rid}, {"rows_applied": n}, {"rows_failed": m}),
        st.sampled_from(IDS),
        st.integers(0, 9),
        st.integers(-2, 2),
    ),
    st.builds(
        lambda rid, seq: Update("runs", {"id": rid}, {"last_seq": seq}),
        st.sampled_from(IDS),
        st.integers(1, 100),
    ),
)

COLUMNS = ["id", "status", "reason", "rows_applied", "rows_failed", "last_seq"]


def _outcome(journal: Journal, changes: list[Change], one_by_one: bool) -> Any:
    conn = journal.engine.connect()
    trans = conn.begin()
    try:
        conn.execute(delete(T_RUNS))
        conn.execute(insert(T_RUNS), [_run_row(k, v) for k, v in EXISTING.items()])
        try:
            if one_by_one:
                for ch in changes:
                    _apply_changes(conn, [ch])
            else:
                _apply_changes(conn, changes)
        except IntegrityError:
            return "IntegrityError"
        cols = [T_RUNS.c[c] for c in COLUMNS]
        return conn.execute(select(*cols).order_by(T_RUNS.c.id)).all()
    finally:
        trans.rollback()
        conn.close()


def test_coalesced_changes_equal_sequential_changes(journal: Journal) -> None:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(change, max_size=14))
    def run(changes: list[Change]) -> None:
        sequential = _outcome(journal, changes, one_by_one=True)
        batched = _outcome(journal, changes, one_by_one=False)
        assert batched == sequential

    run()


def test_update_before_insert_in_one_transaction_finds_no_row(journal: Journal) -> None:
    """Sequentially, an update of a row that is inserted later changes nothing."""
    changes: list[Change] = [
        Update("runs", {"id": "c"}, {"status": "completed"}, {"rows_applied": 4}),
        Insert("runs", _run_row("c", 1)),
        Update("runs", {"id": "c"}, {}, {"rows_applied": 2}),
        Update("runs", {"id": "a"}, {"status": "paused"}),
        Update("runs", {"id": "a"}, {}, {"rows_applied": 1}),
        Update("runs", {"id": "a"}, {"rows_applied": 0}),
        Update("runs", {"id": "a"}, {}, {"rows_applied": 7}),
    ]
    rows = _outcome(journal, changes, one_by_one=False)
    assert rows == _outcome(journal, changes, one_by_one=True)
    by_id = {r.id: r for r in rows}
    assert (by_id["c"].status, by_id["c"].rows_applied) == ("planned", 3)
    assert (by_id["a"].status, by_id["a"].rows_applied) == ("paused", 7)
