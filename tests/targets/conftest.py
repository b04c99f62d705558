"""Target fixtures. Creating a server database per test costs seconds, so each worker keeps
one PostgreSQL and one MariaDB database and empties it before every test: the tests still
start from an empty database of each kind (the contract of tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from console.targets.sql import SqlTarget
from tests.conftest import (
    drop_mariadb_database,
    drop_pg_database,
    make_mariadb_database,
    make_pg_database,
)


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str]:
    url = make_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def _mariadb_database() -> Iterator[str]:
    url = make_mariadb_database()
    yield url
    drop_mariadb_database(url)


def _empty_pg(url: str) -> str:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url


def _empty_mariadb(url: str) -> str:
    name = url.rsplit("/", 1)[1]
    engine = create_engine(url)
    with engine.connect() as conn:
        others = conn.exec_driver_sql(
            "SELECT id FROM information_schema.PROCESSLIST "
            "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        ).scalars()
        for pid in others:
            conn.exec_driver_sql(f"KILL {int(pid)}")
        conn.exec_driver_sql(f"DROP DATABASE `{name}`")
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    engine.dispose()
    return url


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    return _empty_pg(request.getfixturevalue("_pg_database"))


@pytest.fixture
def mariadb_url(request: pytest.FixtureRequest) -> str:
    return _empty_mariadb(request.getfixturevalue("_mariadb_database"))


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty target database of each kind backout writes to."""
    if request.param == "sqlite":
        (tmp_path / "target.db").touch()  # an empty SQLite database (backout creates none)
        return f"sqlite:///{tmp_path / 'target.db'}"
    if request.param == "postgres":
        return _empty_pg(request.getfixturevalue("_pg_database"))
    return _empty_mariadb(request.getfixturevalue("_mariadb_database"))


@pytest.fixture
def target(target_url: str) -> Iterator[SqlTarget]:
    t = SqlTarget(target_url, statement_timeout_ms=2000)
    yield t
    t.close()
