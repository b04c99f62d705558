"""Failures: statement timeouts, locks, lost connections, and how each is classified."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pymysql
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from console.targets.sql import SqlTarget, classify
from console.targets.types import RowWrite, SegmentError, TransientError

from .helpers import dialect_of, dump, run_sql

DDL = [
    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance NUMERIC(12, 2) NOT NULL)",
    "INSERT INTO accounts VALUES (1, 100.00), (2, 50.00)",
]


def _bump(target: SqlTarget, id_: int = 1) -> list[RowWrite]:
    row = target.read_rows("accounts", ["id"], [{"id": id_}])[(id_,)]
    return [RowWrite(1, "update", {"id": id_}, row, {"balance": "1.00"})]


@contextmanager
def _row_locked(url: str) -> Iterator[Connection]:
    """Another session holding a lock on account 1 until the block ends."""
    engine = create_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM accounts WHERE id = 1 FOR UPDATE")
        try:
            yield conn
        finally:
            conn.rollback()
    engine.dispose()


def test_statement_timeout_fires_under_a_row_lock(target_url: str) -> None:
    if dialect_of(target_url) == "sqlite":
        pytest.skip("SQLite has no statement timeout; its busy timeout is tested below")
    run_sql(target_url, DDL)
    target = SqlTarget(target_url, statement_timeout_ms=400)
    try:
        writes = _bump(target)
        before = dump(target_url, "accounts")
        with _row_locked(target_url):
            started = time.monotonic()
            with pytest.raises((SegmentError, TransientError)) as err:
                target.write_segment("accounts", ["id"], writes)
            elapsed = time.monotonic() - started
        assert elapsed < 3, f"waited {elapsed:.1f}s for a 0.4s timeout"
        assert "timeout" in str(err.value)
        assert dump(target_url, "accounts") == before
        # The timeout is scoped to the segment: nothing lingers on pooled connections.
        with target.engine.connect() as conn:
            probe = (
                "SHOW statement_timeout"
                if target.dialect == "postgresql"
                else "SELECT @@session.max_statement_time"
            )
            assert float(conn.exec_driver_sql(probe).scalar() or 0) == 0
        # Once the lock is gone the same segment applies.
        assert target.write_segment("accounts", ["id"], writes)[0].status == "applied"
    finally:
        target.close()


def test_sqlite_locked_is_transient(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    run_sql(url, DDL)
    target = SqlTarget(url, statement_timeout_ms=200)
    writes = _bump(target)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(TransientError, match="locked"):
            target.write_segment("accounts", ["id"], writes)
        assert time.monotonic() - started < 3
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert target.write_segment("accounts", ["id"], writes)[0].status == "applied"
    target.close()


def test_postgres_connection_lost_mid_segment_is_transient(pg_url: str) -> None:
    run_sql(
        pg_url,
        [
            *DDL,
            """CREATE FUNCTION die() RETURNS trigger AS $$ BEGIN
                 PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$
               LANGUAGE plpgsql""",
            """CREATE TRIGGER die BEFORE UPDATE ON accounts FOR EACH ROW
                 WHEN (NEW.balance = 666) EXECUTE FUNCTION die()""",
        ],
    )
    target = SqlTarget(pg_url)
    try:
        row = target.read_rows("accounts", ["id"], [{"id": 1}])[(1,)]
        with pytest.raises(TransientError):
            target.write_segment(
                "accounts", ["id"], [RowWrite(1, "update", {"id": 1}, row, {"balance": 666})]
            )
        assert target.read_rows("accounts", ["id"], [{"id": 1}])[(1,)] == row
        # The pool recovers: the next segment runs on a fresh connection.
        writes = [RowWrite(2, "update", {"id": 1}, row, {"balance": 7})]
        assert target.write_segment("accounts", ["id"], writes)[0].status == "applied"
    finally:
        target.close()


def test_deadlock_is_transient(target_url: str) -> None:
    """Two segments locking two rows in opposite orders: the loser may retry."""
    if dialect_of(target_url) == "sqlite":
        pytest.skip("SQLite serialises writers: no deadlocks")
    run_sql(target_url, DDL)
    target = SqlTarget(target_url, statement_timeout_ms=5000)
    other_engine = create_engine(target_url)
    try:
        rows = target.read_rows("accounts", ["id"], [{"id": 1}, {"id": 2}])
        writes = [
            RowWrite(1, "update", {"id": 2}, rows[(2,)], {"balance": "2.00"}),
            RowWrite(2, "update", {"id": 1}, rows[(1,)], {"balance": "1.00"}),
        ]
        errors: list[BaseException] = []
        with other_engine.connect() as other:
            other.exec_driver_sql("UPDATE accounts SET balance = 3 WHERE id = 2")

            def finish_other() -> None:
                time.sleep(0.5)  # the segment has locked row 1 and waits for row 2
                try:
                    other.exec_driver_sql("UPDATE accounts SET balance = 4 WHERE id = 1")
                except Exception as exc:  # one of the two is chosen as the victim
                    errors.append(exc)

            thread = threading.Thread(target=finish_other)
            thread.start()
            try:
                target.write_segment("accounts", ["id"], writes)
            except TransientError as exc:
                errors.append(exc)
            thread.join()
            other.rollback()
        assert errors, "no deadlock was detected"
        assert any(
            isinstance(e, TransientError) or classify(target.dialect, e) == "transient"
            for e in errors
        )
    finally:
        other_engine.dispose()
        target.close()


@pytest.mark.parametrize(
    ("dialect", "exc", "verdict"),
    [
        ("sqlite", sqlite3.OperationalError("database is locked"), "transient"),
        ("sqlite", sqlite3.IntegrityError("FOREIGN KEY constraint failed"), "error"),
        ("sqlite", sqlite3.OperationalError("interrupted"), "timeout"),
        ("postgresql", psycopg.errors.SerializationFailure("x"), "transient"),
        ("postgresql", psycopg.errors.DeadlockDetected("x"), "transient"),
        ("postgresql", psycopg.errors.AdminShutdown("x"), "transient"),
        ("postgresql", psycopg.OperationalError("the connection is closed"), "transient"),
        ("postgresql", psycopg.errors.QueryCanceled("statement timeout"), "timeout"),
        ("postgresql", psycopg.errors.ForeignKeyViolation("x"), "error"),
        ("postgresql", psycopg.errors.NotNullViolation("x"), "error"),
        ("mysql", pymysql.err.OperationalError(1213, "Deadlock found"), "transient"),
        ("mysql", pymysql.err.OperationalError(1205, "Lock wait timeout"), "transient"),
        ("mysql", pymysql.err.OperationalError(2006, "MySQL server has gone away"), "transient"),
        ("mysql", pymysql.err.OperationalError(2013, "Lost connection"), "transient"),
        ("mysql", pymysql.err.InterfaceError(0, ""), "transient"),
        ("mysql", pymysql.err.OperationalError(1969, "max_statement_time exceeded"), "timeout"),
        ("mysql", pymysql.err.IntegrityError(1452, "foreign key constraint fails"), "error"),
    ],
)
def test_classify(dialect: str, exc: BaseException, verdict: str) -> None:
    assert classify(dialect, exc) == verdict


def test_a_locked_sqlite_target_is_busy_not_a_bad_url(tmp_path: Path) -> None:
    """Another process holds the file exclusively: that is worth a retry (the engine's loops
    retry it; the CLI says so, exit 1), not "check the URL"."""
    import sqlite3

    from console.errors import BackoutError, Exit
    from console.targets.types import TargetBusy, TransientError

    path = tmp_path / "t.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")
    holder.execute("BEGIN EXCLUSIVE")
    target = SqlTarget(f"sqlite:///{path}", statement_timeout_ms=200)
    try:
        with pytest.raises(TargetBusy, match="is busy") as err:
            target.table("items")
        assert isinstance(err.value, TransientError) and isinstance(err.value, BackoutError)
        assert err.value.exit_code == Exit.FAILED
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        target.close()
    assert SqlTarget(f"sqlite:///{path}").table("items").primary_key == ("id",)
