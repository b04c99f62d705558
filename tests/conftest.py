"""Shared fixtures: real SQLite files, and throwaway databases on the real PostgreSQL and
MariaDB servers. With BACKOUT_REQUIRE_SERVERS=1 (CI) a missing server fails instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

# CI explores the same examples every run (a failure reproduces from the log); developers'
# runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

PG_ADMIN = os.environ.get("BACKOUT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN = os.environ.get("BACKOUT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")
REQUIRE = os.environ.get("BACKOUT_REQUIRE_SERVERS") == "1"


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable ({type(exc).__name__}: {exc})"
    if REQUIRE:
        pytest.fail(message + "; BACKOUT_REQUIRE_SERVERS=1 makes this a failure.")
    pytest.skip(message + "; start it to run these tests.")


def _replace_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(autouse=True)
def _isolated_user_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trusted journal heads and other per-user state never leak between tests."""
    state = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_STATE_HOME", str(state / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(state / "data"))
    monkeypatch.delenv("BACKOUT_JOURNAL", raising=False)
    monkeypatch.delenv("BACKOUT_CONFIG", raising=False)
    monkeypatch.delenv("BACKOUT_USER", raising=False)


def make_pg_database() -> str:
    name = f"backout_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    finally:
        admin.dispose()
    return _replace_db(PG_ADMIN, name)


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_mariadb_database() -> str:
    name = f"backout_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(MARIADB_ADMIN)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except Exception as exc:
        _unavailable("MariaDB", exc)
    finally:
        admin.dispose()
    return _replace_db(MARIADB_ADMIN, name)


def drop_mariadb_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(MARIADB_ADMIN)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    url = make_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database; dropped afterwards."""
    url = make_mariadb_database()
    yield url
    drop_mariadb_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'target.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A journal on a real SQLite file and on the real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.db'}"
        return
    url = make_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty target database of each kind backout writes to."""
    if request.param == "sqlite":
        (tmp_path / "target.db").touch()  # an empty SQLite database (backout creates none)
        yield f"sqlite:///{tmp_path / 'target.db'}"
    elif request.param == "postgres":
        url = make_pg_database()
        yield url
        drop_pg_database(url)
    else:
        url = make_mariadb_database()
        yield url
        drop_mariadb_database(url)
