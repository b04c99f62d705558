"""Rollback on real SQLite, PostgreSQL and MariaDB targets."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from console.changes import load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.engine.reapply import reapply
from console.errors import Blocked, Exit
from console.journal import Journal
from console.journal.verify import verify
from console.rollback.execute import Options, Rollback
from console.rollback.plan import Scope
from console.rollback.readiness import check
from tests.engine.helpers import (
    changeset_doc,
    dump,
    make_items,
    sqlite_dump,
    write_changeset,
    write_counts,
)
from tests.targets.helpers import dialect_of


def _applied(url: str, tmp: Path, **ranges: range) -> tuple[Journal, str]:
    j = Journal(f"sqlite:///{tmp / 'journal.db'}", actor="oncall")
    cs = load_changeset(write_changeset(tmp / "cs.yaml", changeset_doc(url, **ranges)))
    report = Engine(j, Settings()).apply(cs)
    assert report.exit_code == Exit.DONE, report.message
    return j, report.run_id or ""


def test_rollback_restores_baseline_exactly(target_url: str, tmp_path: Path) -> None:
    make_items(target_url, 120)
    baseline = dump(target_url)
    j, run_id = _applied(
        target_url, tmp_path, updates=range(1, 61), inserts=range(500, 520), deletes=range(100, 111)
    )
    assert dump(target_url) != baseline
    report = Rollback(j, Settings()).execute(run_id, Options())
    assert report.exit_code == Exit.DONE, report.message
    assert report.extra["counts"] == {"reverted": 91, "conflicts": 0, "skipped": 0}
    assert dump(target_url) == baseline
    run = j.get_run(run_id)
    assert run.status == "rolled_back" and run.rows_reverted == 91
    assert j.count_operations(run_id, ["reverted"]) == 91
    assert all(n == 2 for n in write_counts(target_url).values())  # apply + rollback, once each
    assert verify(j, remember=False).ok


def test_sqlite_rollback_is_byte_for_byte(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 80)
    before = sqlite_dump(tmp_path / "t.db")
    j, run_id = _applied(url, tmp_path, updates=range(1, 50), deletes=range(60, 70))
    Rollback(j, Settings()).execute(run_id, Options())
    assert sqlite_dump(tmp_path / "t.db") == before  # values AND storage classes


def test_conflicts_are_not_overwritten(target_url: str, tmp_path: Path) -> None:
    make_items(target_url, 50)
    baseline = {r[0]: r for r in dump(target_url)}
    j, run_id = _applied(target_url, tmp_path, updates=range(1, 31), deletes=range(40, 43))
    other = create_engine(target_url)
    with other.begin() as conn:
        conn.execute(text("UPDATE items SET note = 'hand fix' WHERE id IN (3, 17)"))
        conn.execute(text("INSERT INTO items VALUES (41, 'someone', 2.00, NULL, NULL)"))
    other.dispose()
    plan = Rollback(j, Settings()).plan(run_id, Options())
    assert sorted(i.parent_op for i in plan.conflicts) == sorted(
        i.parent_op for i in plan.items if i.key["id"] in (3, 17, 41)
    )
    report = Rollback(j, Settings()).execute(run_id, Options())
    assert report.exit_code == Exit.REVIEW
    assert report.extra["counts"]["conflicts"] == 3
    keys = sorted(c["key"]["id"] for c in report.extra["conflicts"])
    assert keys == [3, 17, 41]
    c3 = next(c for c in report.extra["conflicts"] if c["key"]["id"] == 3)
    assert c3["now"]["note"] == "hand fix" and c3["ours"]["note"] == "v2"
    rows = {r[0]: r for r in dump(target_url)}
    assert rows[3][3] == "hand fix" and rows[17][3] == "hand fix" and rows[41][1] == "someone"
    for i in (*range(1, 31), 40, 42):
        if i not in (3, 17):
            assert rows[i] == baseline[i]
    assert j.get_run(run_id).status == "rollback_partial"


def test_skip_and_force(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 20)
    baseline = dump(url)
    j, run_id = _applied(url, tmp_path, updates=range(1, 11))
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("UPDATE items SET note = 'x' WHERE id = 4"))
    eng.dispose()
    skipped = Rollback(j, Settings()).execute(run_id, Options(on_conflict="skip"))
    assert skipped.exit_code == Exit.DONE and skipped.extra["counts"]["skipped"] == 1
    assert j.get_run(run_id).status == "rollback_partial"
    forced = Rollback(j, Settings()).execute(run_id, Options(force=True))
    assert forced.exit_code == Exit.DONE, forced.message
    assert dump(url) == baseline
    assert j.get_run(run_id).status == "rolled_back"
    events = j.events(None, kinds=["op.forced"])
    assert len(events) == 1 and events[0].actor == "oncall"


def test_plan_writes_nothing_and_digest_tracks_conflicts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 20)
    j, run_id = _applied(url, tmp_path, updates=range(1, 11))
    head = j.head()
    target = sqlite_dump(tmp_path / "t.db")
    first = Rollback(j, Settings()).plan(run_id, Options())
    second = Rollback(j, Settings()).plan(run_id, Options())
    assert first.digest == second.digest and len(first.items) == 10
    assert j.head() == head and sqlite_dump(tmp_path / "t.db") == target
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("UPDATE items SET note = 'late' WHERE id = 2"))
    eng.dispose()
    assert Rollback(j, Settings()).plan(run_id, Options()).digest != first.digest


def test_dry_run_leaves_target_byte_identical(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 30)
    j, run_id = _applied(url, tmp_path, updates=range(1, 21), inserts=range(90, 95))
    after_apply = sqlite_dump(tmp_path / "t.db")
    report = Rollback(j, Settings()).execute(run_id, Options(dry_run=True))
    assert report.exit_code == Exit.DONE and report.applied == 25
    assert sqlite_dump(tmp_path / "t.db") == after_apply
    assert j.get_run(run_id).status == "completed"


def test_a_dry_run_marks_nothing_reverted_and_the_real_rollback_still_restores(
    target_url: str, tmp_path: Path
) -> None:
    make_items(target_url, 40)
    baseline = dump(target_url)
    j, run_id = _applied(target_url, tmp_path, updates=range(1, 21), inserts=range(90, 95))
    dry = Rollback(j, Settings()).execute(run_id, Options(dry_run=True))
    assert dry.exit_code == Exit.DONE and dry.applied == 25, dry.message
    run = j.get_run(run_id)
    assert run.status == "completed" and run.rows_reverted == 0
    assert j.count_operations(run_id, ["reverted"]) == 0
    assert len(Rollback(j, Settings()).plan(run_id, Options()).items) == 25
    report = Rollback(j, Settings()).execute(run_id, Options())
    assert report.exit_code == Exit.DONE and report.applied == 25, report.message
    assert dump(target_url) == baseline
    assert j.get_run(run_id).rows_reverted == 25
    assert verify(j, remember=False).ok


def test_scoped_rollback_then_rest_then_reapply(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 30)
    baseline = {r[0]: r for r in dump(url)}
    j, run_id = _applied(url, tmp_path, updates=range(1, 21))
    applied_state = {r[0]: r for r in dump(url)}
    scope = Scope(keys=({"id": "3"}, {"id": "7"}))
    report = Rollback(j, Settings()).execute(run_id, Options(scope=scope))
    assert report.exit_code == Exit.DONE and report.applied == 2
    rows = {r[0]: r for r in dump(url)}
    assert rows[3] == baseline[3] and rows[7] == baseline[7] and rows[4] == applied_state[4]
    assert j.get_run(run_id).status == "rollback_partial"
    rest = Rollback(j, Settings()).execute(run_id, Options())
    assert rest.applied == 18 and j.get_run(run_id).status == "rolled_back"
    assert {r[0]: r for r in dump(url)} == baseline
    again = reapply(j, Settings(), run_id, keys=({"id": "5"},))
    assert again.exit_code == Exit.DONE and again.applied == 1
    rows = {r[0]: r for r in dump(url)}
    assert rows[5] == applied_state[5] and rows[6] == baseline[6]


def test_rollback_of_a_rollback_reapplies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 20)
    j, run_id = _applied(url, tmp_path, updates=range(1, 11), deletes=range(15, 17))
    applied_state = dump(url)
    rb = Rollback(j, Settings()).execute(run_id, Options())
    rb_run = rb.extra["rollback_run"]
    undo = Rollback(j, Settings()).execute(rb_run, Options())
    assert undo.exit_code == Exit.DONE, undo.message
    assert dump(url) == applied_state


def test_foreign_keys_hold_in_reverse_order(tmp_path: Path) -> None:
    path = tmp_path / "fk.db"
    url = f"sqlite:///{path}"
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT)")
        conn.exec_driver_sql(
            "CREATE TABLE child (id INTEGER PRIMARY KEY, "
            "parent_id INTEGER NOT NULL REFERENCES parent(id), v TEXT)"
        )
    eng.dispose()
    doc = {
        "changeset": "fk",
        "version": 1,
        "target": url,
        "options": {"segment_size": 3},
        "steps": [
            {
                "name": "parents",
                "table": "parent",
                "key": ["id"],
                "operations": [
                    {"op": "insert", "row": {"id": i, "name": f"p{i}"}} for i in range(1, 6)
                ],
            },
            {
                "name": "children",
                "table": "child",
                "key": ["id"],
                "operations": [
                    {"op": "insert", "row": {"id": i, "parent_id": 1 + i % 5, "v": "c"}}
                    for i in range(1, 11)
                ],
            },
        ],
    }
    j = Journal(f"sqlite:///{tmp_path / 'j.db'}", actor="oncall")
    run = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "fk.yaml", doc)))
    assert run.exit_code == Exit.DONE, run.message
    report = Rollback(j, Settings()).execute(run.run_id or "", Options())
    assert report.exit_code == Exit.DONE, report.message
    assert dump(url, "parent") == [] and dump(url, "child") == []


def test_policy_requires_runbook(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 10)
    j, run_id = _applied(url, tmp_path, updates=range(1, 5))
    settings = Settings.model_validate(
        {"policy": {"version": 3, "rollback": {"require_runbook": True}}}
    )
    with pytest.raises(Blocked) as err:
        Rollback(j, settings).execute(run_id, Options())
    assert err.value.exit_code == Exit.BLOCKED and "rollback-batch" in err.value.message
    assert "v3" in err.value.message


def test_check_reports_schema_drift_and_conflicts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 10)
    j, run_id = _applied(url, tmp_path, updates=range(1, 5))
    ready = check(Rollback(j, Settings()), j.get_run(run_id), Options())
    assert ready.ready and ready.inverses == 4
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE items DROP COLUMN note")
    eng.dispose()
    drift = check(Rollback(j, Settings()), j.get_run(run_id), Options())
    assert not drift.ready and any("note" in r for r in drift.reasons)


def test_apply_and_rollback_run_without_cyclic_collection_and_restore_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run holds its plan for its whole length; the collector would walk it over and over
    (13-20 % of a 100,000-row run). Every segment runs with it paused, and the run leaves it
    as it found it."""
    import gc

    from console.engine.segments import SegmentRunner

    seen: list[bool] = []
    real = SegmentRunner.execute

    def spy(self: SegmentRunner, *args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SegmentRunner, "execute", spy)
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 40)
    baseline = dump(url)
    assert gc.isenabled()
    j, run_id = _applied(url, tmp_path, updates=range(1, 31))
    assert gc.isenabled()
    applied = len(seen)
    gc.disable()  # a caller that keeps the collector off (the console's own policy) keeps it off
    try:
        report = Rollback(j, Settings()).execute(run_id, Options())
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert report.exit_code == Exit.DONE, report.message
    assert dump(url) == baseline
    assert applied >= 1 and len(seen) > applied and not any(seen)


def test_a_pause_request_stops_a_rollback_at_a_segment_boundary(
    target_url: str, tmp_path: Path
) -> None:
    """`backout pause` on a rollback run stops it as it stops an apply; resume finishes it,
    and nothing is reverted twice."""
    make_items(target_url, 60)
    baseline = dump(target_url)
    j, run_id = _applied(target_url, tmp_path, updates=range(1, 51))  # 5 segments of 10
    pauser = Journal(j.url, actor="carol")
    asked: list[str] = []

    def after_segment(done: int, total: int) -> None:
        if not asked:  # as `backout pause RB` from another terminal, after the first segment
            rb = j.runs(kind="rollback", limit=1)[0]
            report = Engine(pauser, Settings()).request_pause(rb.id)
            assert report.exit_code == Exit.DONE, report.message
            asked.append(rb.id)

    report = Rollback(j, Settings(), progress=after_segment).execute(run_id, Options())
    rb_id = asked[0]
    assert report.exit_code == Exit.FAILED and "paused by carol" in report.message
    rb = j.get_run(rb_id)
    assert rb.status == "paused" and rb.rows_applied == 10  # the first segment only
    assert dump(target_url) != baseline
    done = Rollback(j, Settings()).resume(rb_id)
    assert done.exit_code == Exit.DONE, done.message
    assert dump(target_url) == baseline
    assert all(n == 2 for n in write_counts(target_url).values())  # apply + rollback, once each
    assert j.get_run(run_id).status == "rolled_back"
    assert verify(j, remember=False).ok
    pauser.close()


_TOUCHED_DDL = {
    "sqlite": [
        """CREATE TABLE p (id INTEGER PRIMARY KEY, price NUMERIC(10, 2), note TEXT,
             updated_at TEXT DEFAULT '2000-01-01 00:00:00')""",
        """CREATE TRIGGER p_touch AFTER UPDATE OF price, note ON p BEGIN
             UPDATE p SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = NEW.id;
           END""",
    ],
    "postgresql": [
        """CREATE TABLE p (id INTEGER PRIMARY KEY, price NUMERIC(10, 2), note TEXT,
             updated_at TIMESTAMP DEFAULT now(),
             doubled NUMERIC(12, 2) GENERATED ALWAYS AS (price * 2) STORED)""",
        """CREATE FUNCTION p_touch() RETURNS trigger AS $$ BEGIN
             NEW.updated_at = clock_timestamp(); RETURN NEW; END $$ LANGUAGE plpgsql""",
        "CREATE TRIGGER p_touch BEFORE UPDATE ON p FOR EACH ROW EXECUTE FUNCTION p_touch()",
    ],
    "mysql": [
        """CREATE TABLE p (id INTEGER PRIMARY KEY, price DECIMAL(10, 2), note TEXT,
             updated_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6)
               ON UPDATE CURRENT_TIMESTAMP(6),
             doubled DECIMAL(12, 2) AS (price * 2) STORED)""",
    ],
}


def test_columns_the_database_maintains_are_not_conflicts(target_url: str, tmp_path: Path) -> None:
    """A trigger's updated_at, MariaDB's ON UPDATE and a generated column change with every
    write: the rollback answers for the columns the run set, so only a later write to one of
    those is a conflict, and a later write to another column is kept, not clobbered."""
    dialect = (
        "sqlite"
        if "sqlite" in target_url
        else "postgresql"
        if "postgres" in target_url
        else "mysql"
    )
    eng = create_engine(target_url)
    with eng.begin() as conn:
        for ddl in _TOUCHED_DDL[dialect]:
            conn.exec_driver_sql(ddl)
        conn.execute(text("INSERT INTO p (id, price, note) VALUES (1, 1.00, 'a'), "
                          "(2, 2.00, 'b'), (3, 3.00, 'c'), (4, 4.00, 'd')"))  # fmt: skip
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="oncall")
    doc = {
        "changeset": "touched", "version": 1, "target": target_url,
        "steps": [{"name": "s", "table": "p", "key": ["id"], "operations": [
            {"op": "update", "key": {"id": i}, "set": {"price": f"{i}9.00"}} for i in range(1, 5)
        ]}],
    }  # fmt: skip
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "c.yaml", doc)))
    assert report.exit_code == Exit.DONE, report.message
    with eng.begin() as conn:
        conn.execute(text("UPDATE p SET note = 'kept' WHERE id = 2"))  # not a column we set
        conn.execute(text("UPDATE p SET price = 33.33 WHERE id = 3"))  # ours: a conflict
    rb = Rollback(j, Settings()).execute(report.run_id or "", Options())
    assert rb.exit_code == Exit.REVIEW, rb.message
    assert rb.extra["counts"] == {"reverted": 3, "conflicts": 1, "skipped": 0}
    with eng.connect() as conn:
        rows = {
            r[0]: (Decimal(str(r[1])), r[2])
            for r in conn.execute(text("SELECT id, price, note FROM p"))
        }
    eng.dispose()
    prices = {1: "1", 2: "2", 3: "33.33", 4: "4"}
    assert rows == {i: (Decimal(v), "kept" if i == 2 else "abcd"[i - 1]) for i, v in prices.items()}
    assert verify(j, remember=False).ok


_FRACTION_DDL = {
    "sqlite": "CREATE TABLE f (id INTEGER PRIMARY KEY, due TIMESTAMP, at TIME, seen TIMESTAMP)",
    "postgresql": """CREATE TABLE f (id INTEGER PRIMARY KEY, due TIMESTAMP(0), at TIME(0),
                       seen TIMESTAMPTZ(3))""",
    "mysql": "CREATE TABLE f (id INTEGER PRIMARY KEY, due DATETIME, at TIME, seen DATETIME(3))",
}


def _round_trip(url: str, tmp: Path, table: str, ops: list[dict[str, Any]]) -> list[Any]:
    """Apply ``ops`` to ``table``, then roll them back: no conflict, every row as it was.
    Returns the table as the run left it."""
    before = dump(url, table)
    j = Journal(f"sqlite:///{tmp / 'journal.db'}", actor="oncall")
    doc = {
        "changeset": table, "version": 1, "target": url,
        "steps": [{"name": "s", "table": table, "key": ["id"], "operations": ops}],
    }  # fmt: skip
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp / "c.yaml", doc)))
    assert report.exit_code == Exit.DONE, report.message
    after = dump(url, table)
    rb = Rollback(j, Settings()).execute(report.run_id or "", Options())
    assert rb.exit_code == Exit.DONE, rb.message
    assert rb.extra["counts"] == {"reverted": len(ops), "conflicts": 0, "skipped": 0}
    assert dump(url, table) == before
    assert verify(j, remember=False).ok
    return after


def test_fractional_seconds_the_column_drops_are_not_conflicts(
    target_url: str, tmp_path: Path
) -> None:
    """An automation's timestamps carry milliseconds; a DATETIME or TIMESTAMP(0) column drops
    them (MariaDB truncates, PostgreSQL rounds). The journal holds what the column holds, so
    the run's own writes are not conflicts and the rollback restores every row."""
    dialect = dialect_of(target_url)
    eng = create_engine(target_url)
    with eng.begin() as conn:
        conn.exec_driver_sql(_FRACTION_DDL[dialect])
        for i in (1, 2):
            day = f"'2026-01-0{i} 08:00:00'"
            conn.exec_driver_sql(f"INSERT INTO f VALUES ({i}, {day}, '0{i}:00:00', {day})")
    eng.dispose()
    moment = {
        "due": "2026-03-01T10:00:00.789Z",
        "at": "10:30:00.5",
        "seen": "2026-03-01T10:00:00.12345Z",
    }
    after = _round_trip(target_url, tmp_path, "f", [
        {"op": "update", "key": {"id": 1}, "set": moment},
        {"op": "update", "key": {"id": 2}, "set": {"due": "2026-03-02 23:59:59.999"}},
        {"op": "insert", "row": {"id": 3, **moment}},
    ])  # fmt: skip
    if dialect == "sqlite":  # no date types: the text given is the value, never respelled
        assert [r[:3] for r in after] == [
            (1, moment["due"], moment["at"]),
            (2, "2026-03-02 23:59:59.999", "02:00:00"),
            (3, moment["due"], moment["at"]),
        ]
    else:  # the columns dropped the digits: rounded, or truncated
        rounds = dialect == "postgresql"
        due, due2 = (
            dt.datetime(2026, 3, 1, 10, 0, int(rounds)),
            dt.datetime(2026, 3, 3) if rounds else dt.datetime(2026, 3, 2, 23, 59, 59),
        )
        assert [(r[0], r[1]) for r in after] == [(1, due), (2, due2), (3, due)]


@pytest.mark.parametrize("keep_bytes", [None, 0])  # 0: the planner reads the change set again
def test_values_postgresql_respells_are_not_conflicts(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_bytes: int | None
) -> None:
    """PostgreSQL stores a UUID in lower case, inet '10.0.0.2/32' as '10.0.0.2', '90 minutes'
    as '01:30:00', money with its currency sign: the journal holds each value as the column
    stores it (keys too), so the run's own writes are not conflicts."""
    from console.engine.apply import Baseline

    if keep_bytes is not None:
        monkeypatch.setattr(Baseline, "KEEP_BYTES", keep_bytes)
    eng = create_engine(pg_url)
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE DOMAIN pct AS NUMERIC(5, 2) CHECK (VALUE <= 100)")
        conn.exec_driver_sql(
            "CREATE TABLE u (id UUID PRIMARY KEY, ref UUID, ip INET, net CIDR, span INTERVAL, "
            "price MONEY, share pct)"
        )
        conn.exec_driver_sql(
            "INSERT INTO u VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', NULL, '10.0.0.1', "
            "'10.0.0.0/8', '1 mon', 1, 5)"
        )
    eng.dispose()
    new = {
        "ref": "B0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "ip": "10.0.0.2/32",
        "net": "2001:DB8:0:0::/64",
        "span": "90 minutes",
        "price": "2.5",
        "share": "7.5",
    }
    key = {"id": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"}
    after = _round_trip(pg_url, tmp_path, "u", [{"op": "update", "key": key, "set": new}])
    assert [tuple(map(str, r)) for r in after] == [
        ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
         "10.0.0.2", "2001:db8::/64", "1:30:00", "$2.50", "7.50")
    ]  # fmt: skip
