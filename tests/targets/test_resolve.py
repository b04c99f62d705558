"""Naming targets: backout.toml names, URLs and SQLite paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.config import Settings, TargetConfig
from console.errors import BadInput
from console.targets.resolve import environment_of, open_target
from console.targets.sql import SqlTarget, sqlalchemy_url


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        targets={
            "crm": TargetConfig(
                url=f"sqlite:///{tmp_path / 'crm.db'}",
                environment="staging",
                statement_timeout_ms=1234,
            )
        },
        source=str(tmp_path / "backout.toml"),
    )


def test_url_forms() -> None:
    assert sqlalchemy_url("postgresql://u:pw@h/db") == "postgresql+psycopg://u:pw@h/db"
    assert sqlalchemy_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert sqlalchemy_url("mysql://h/db") == "mysql+pymysql://h/db"
    assert sqlalchemy_url("mariadb://h/db") == "mysql+pymysql://h/db"
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"
    assert sqlalchemy_url("data/crm.db") == f"sqlite:///{Path('data/crm.db').resolve()}"
    with pytest.raises(BadInput, match="not supported"):
        sqlalchemy_url("oracle://scott:tiger@h/db")


def test_target_attributes(tmp_path: Path) -> None:
    t = SqlTarget("postgresql://alice:s3cret@127.0.0.1:1/nothing", statement_timeout_ms=50)
    assert t.url == "postgresql+psycopg://alice:s3cret@127.0.0.1:1/nothing"
    assert t.display_url == "postgresql+psycopg://alice:***@127.0.0.1:1/nothing"
    assert "s3cret" not in repr(t)
    assert (t.dialect, t.statement_timeout_ms) == ("postgresql", 50)
    with pytest.raises(BadInput, match="cannot read the schema") as err:
        t.table("x")  # nothing listens on port 1
    assert "s3cret" not in err.value.message
    t.close()
    assert SqlTarget("mariadb://root@h/db").dialect == "mysql"
    (tmp_path / "a.db").touch()
    assert SqlTarget(str(tmp_path / "a.db")).dialect == "sqlite"


def test_open_by_name_url_or_path(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    (tmp_path / "crm.db").touch()
    by_name = open_target("crm", settings)
    assert by_name.statement_timeout_ms == 1234
    assert by_name.url == f"sqlite:///{tmp_path / 'crm.db'}"
    # The same database by URL or path still gets its configured settings.
    assert open_target(f"sqlite:///{tmp_path / 'crm.db'}", settings).statement_timeout_ms == 1234
    assert open_target(str(tmp_path / "crm.db"), settings).statement_timeout_ms == 1234
    other = tmp_path / "other.db"
    other.touch()
    assert open_target(str(other), settings).statement_timeout_ms == 5000
    assert open_target(f"sqlite:///{other}", settings).dialect == "sqlite"


def test_unknown_names_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = _settings(tmp_path)
    with pytest.raises(BadInput, match=r"target 'sales' is not defined in .*backout\.toml"):
        open_target("sales", settings)
    with pytest.raises(BadInput, match=r"target 'sales' is not defined in backout\.toml"):
        open_target("sales", Settings())
    with pytest.raises(BadInput, match="does not exist"):
        open_target("./missing/crm.db", settings)
    assert not (tmp_path / "missing").exists()
    (tmp_path / "sales").touch()  # an existing file of that name is a SQLite path
    assert open_target("sales", settings).dialect == "sqlite"
    with pytest.raises(BadInput, match="no target"):
        open_target("  ", settings)


def test_environment_of(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert environment_of("crm", settings) == "staging"
    assert environment_of(f"sqlite:///{tmp_path / 'crm.db'}", settings) == "staging"
    assert environment_of("postgresql://h/other", settings) == "production"
    assert environment_of("nowhere", settings) == "production"


def test_a_missing_sqlite_target_is_refused_and_not_created(tmp_path: Path) -> None:
    typo = tmp_path / "crm-typo.db"
    with pytest.raises(BadInput, match=r"crm-typo\.db does not exist; check the path"):
        SqlTarget(f"sqlite:///{typo}")
    assert not typo.exists()
