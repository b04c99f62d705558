"""A team around one journal: a real run on a real target, a policy with roles, and a way
to call the CLI as each person (``--as`` on SQLite; on PostgreSQL each person is a database
role, so the journal authenticates them)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from console.changes import load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.journal import Journal
from tests.conftest import PG_ADMIN, drop_pg_database
from tests.engine.helpers import changeset_doc, make_items, write_changeset

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = ("oncall1", "oncall2", "owner1", "owner2", "ic1", "nobody")

POLICY = """
[policy]
version = 3

[policy.roles]
oncall = ["{oncall1}", "{oncall2}"]
data-owner = ["{owner1}", "{owner2}"]
incident-commander = ["{ic1}"]

[policy.approval]
quorum = 2
require_roles = ["data-owner"]
exclude = ["requester", "executor"]
expires_after = "30m"

[policy.rollback]
require_runbook = true
"""

# A rollback runbook that needs no reconciliation service (sql checks instead).
WALK = """
runbook: rb-walk
version: 1
title: Roll back, checked with SQL
prerequisites: [lock_target]
steps:
  - id: pause
    action: pause_run
  - id: assess
    check: sql
    sql: "SELECT COUNT(*) FROM items WHERE note = 'v2'"
    decide:
      - when: "result.value > 1000"
        goto: escalate
  - id: approve
    approval: {quorum: 2, require_roles: [data-owner], expires_after: 30m}
    on_denied: escalate
  - id: rollback
    action: rollback
    with: {on_conflict: review}
  - id: verify
    verify: sql
    sql: "SELECT COUNT(*) FROM items WHERE note = 'v2'"
    expect: 0
    on_fail: escalate
  - id: notify
    action: notify
    with: {message: rolled back}
    next: end
  - id: escalate
    escalate: {page: [dba-oncall], message: needs a DBA}
"""


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        import json

        return json.loads(self.out)


@dataclass
class Team:
    backend: str
    url: str  # the journal, as its administrator
    tmp: Path
    target: str
    names: dict[str, str]  # person -> user name (a database role on PostgreSQL)
    run_id: str = ""
    config: Path = field(default_factory=Path)

    def who(self, person: str) -> str:
        return self.names.get(person, person)

    def url_for(self, person: str) -> str:
        if self.backend == "sqlite":
            return self.url
        rest = self.url.split("@", 1)[1]
        return f"postgresql+psycopg://{self.who(person)}@{rest}"

    def argv(self, person: str, args: tuple[str, ...]) -> list[str]:
        base = ["--journal", self.url_for(person), "--config", str(self.config)]
        if self.backend == "sqlite":
            base += ["--as", self.who(person)]
        return [*base, *args]

    def cli(self, person: str, *args: str, env: dict[str, str] | None = None) -> Result:
        """The CLI in this process (same parsing, same code; no interpreter start-up)."""
        from console.cli import main

        out, err = io.StringIO(), io.StringIO()
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        code = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main(self.argv(person, args))
                except SystemExit as exc:
                    code = int(exc.code or 0)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return Result(code, out.getvalue(), err.getvalue())

    def proc(self, person: str, *args: str, env: dict[str, str] | None = None) -> Result:
        """The CLI as a new process: `python -m console ...`."""
        full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "console", *self.argv(person, args)],
            check=False,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=self.tmp,
            timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def journal(self) -> Journal:
        return Journal(self.url, actor="test")

    def refusals(self) -> list[dict[str, Any]]:
        j = self.journal()
        try:
            return [e.payload for e in j.events(kinds=["gate.refused"], limit=10_000)]
        finally:
            j.close()

    def write_runbook(self, name: str, body: str) -> Path:
        path = self.tmp / "runbooks" / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(body)
        return path

    def target_sql(self, sql: str) -> None:
        engine = create_engine(self.target)
        with engine.begin() as conn:
            conn.execute(text(sql))
        engine.dispose()


def _pg_team(url: str, names: dict[str, str]) -> str:
    """Roles for each person, all members of a group that owns the journal's objects."""
    group = f"team_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{group}" NOLOGIN'))
        for user in names.values():
            conn.execute(text(f'CREATE ROLE "{user}" LOGIN IN ROLE "{group}"'))
    admin.dispose()
    db = create_engine(url, isolation_level="AUTOCOMMIT")
    with db.connect() as conn:
        conn.execute(text(f'ALTER SCHEMA public OWNER TO "{group}"'))
        for (table,) in conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ):
            conn.execute(text(f'ALTER TABLE "{table}" OWNER TO "{group}"'))
        conn.execute(text(f'ALTER FUNCTION backout_events_append_only() OWNER TO "{group}"'))
    db.dispose()
    return group


def _drop_roles(url: str, roles: list[str]) -> None:
    drop_pg_database(url)
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for role in roles:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


def make_team(
    url: str,
    tmp: Path,
    *,
    rows: int = 20,
    updates: range = range(1, 11),
    inserts: range = range(0),
    extra_config: str = "",
    target_ref: str | None = None,
) -> Team:
    backend = "sqlite" if url.startswith("sqlite") else "postgres"
    suffix = uuid.uuid4().hex[:6]
    names = {p: f"{p}_{suffix}" for p in PEOPLE}
    target = f"sqlite:///{tmp / 'target.db'}"
    make_items(target, rows)
    team = Team(backend, url, tmp, target, names)
    team.config = tmp / "backout.toml"
    team.config.write_text(POLICY.format(**names) + extra_config.format(target=target))
    cs_path = write_changeset(
        tmp / "cs.yaml", changeset_doc(target_ref or target, updates=updates, inserts=inserts)
    )
    from console.config import load_settings

    journal = Journal(url, actor="automation")
    settings = load_settings(team.config) if target_ref else Settings()
    report = Engine(journal, settings).apply(load_changeset(str(cs_path)))
    assert report.exit_code == 0, report.message
    team.run_id = str(report.run_id)
    journal.close()
    team.write_runbook("rb-walk", WALK)
    return team


@pytest.fixture
def team(journal_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    monkeypatch.chdir(tmp_path)
    t = make_team(journal_url, tmp_path)
    group = _pg_team(journal_url, t.names) if t.backend == "postgres" else None
    yield t
    if group is not None:
        _drop_roles(journal_url, [*t.names.values(), group])


@pytest.fixture
def sqlite_team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Team:
    monkeypatch.chdir(tmp_path)
    return make_team(f"sqlite:///{tmp_path / 'journal.db'}", tmp_path)
