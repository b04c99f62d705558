"""A team's shared journal on PostgreSQL: schema, group roles, grants, people.

Everything here is enforced by the database, so a console that skips its own checks still
cannot exceed its role: events are insert-only for everyone but the owner, auditors only read,
and approval decisions (``approval.granted``/``approval.denied``) need the approver role;
``journal.pruned`` and the tables of ``journal prune`` are the owner's alone.
``approval.requested``/``approval.expired`` are written by the executor (an operator), so
they are not restricted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from console.errors import BadInput, Blocked
from console.journal import models
from console.journal.db import ensure_schema, make_engine, resolve_url
from console.journal.store import Journal, Writer

ROLES = ("owner", "operator", "approver", "auditor")
DECISION_KINDS = ("approval.granted", "approval.denied")
# Operational state written alongside appends but outside the chain and projections.
_WRITERS_READONLY = ("events", "meta", "pruned_state", "prune_permits")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


@dataclass(frozen=True)
class TeamRoles:
    """The group role names; tests use a unique prefix because roles are cluster-wide."""

    prefix: str = "backout"

    def __post_init__(self) -> None:
        if not _NAME.match(self.prefix):
            raise BadInput(f"role prefix '{self.prefix}' must be letters, digits and _.")

    def name(self, role: str) -> str:
        if role not in ROLES:
            raise BadInput(f"unknown role '{role}'; use one of {', '.join(ROLES)}.")
        return f"{self.prefix}_{role}"

    @property
    def owner(self) -> str:
        return self.name("owner")

    @property
    def operator(self) -> str:
        return self.name("operator")

    @property
    def approver(self) -> str:
        return self.name("approver")

    @property
    def auditor(self) -> str:
        return self.name("auditor")

    def all(self) -> list[str]:
        return [self.name(r) for r in ROLES]


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def pg_engine(url: str) -> Engine:
    full = resolve_url(url)
    if not full.startswith("postgresql"):
        raise BadInput(f"--postgres needs a postgresql:// URL, not '{url}'.")
    return make_engine(full)


def _role_exists(conn: Connection, name: str) -> bool:
    return bool(
        conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).scalar()
    )


def _tables(conn: Connection) -> list[str]:
    names = [models.table_of(m).name for m in models.ALL_MODELS]
    return [n for n in names if conn.execute(text("SELECT to_regclass(:n)"), {"n": n}).scalar()]


def setup(url: str, roles: TeamRoles | None = None) -> dict[str, Any]:
    """Create or bring up to date the schema, roles and grants (idempotent)."""
    roles = roles or TeamRoles()
    engine = pg_engine(url)
    try:
        with engine.connect() as conn:
            me, is_admin = conn.execute(
                text(
                    "SELECT rolname, rolsuper OR rolcreaterole FROM pg_roles "
                    "WHERE rolname = current_user"
                )
            ).one()
        if not is_admin:
            raise BadInput(
                f"journal setup needs a PostgreSQL superuser or a role with CREATEROLE; "
                f"{me} is neither."
            )
        journal_id = ensure_schema(engine)
        with engine.begin() as conn:
            # Several admins running setup at once would race on CREATE ROLE.
            conn.execute(text("SELECT pg_advisory_xact_lock(7262340002)"))
            me = str(conn.execute(text("SELECT current_user")).scalar_one())
            created = []
            for name in roles.all():
                if not _role_exists(conn, name):
                    conn.exec_driver_sql(f"CREATE ROLE {_q(name)} NOLOGIN")
                    created.append(name)
            is_super = bool(
                conn.execute(
                    text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                ).scalar()
            )
            if not is_super:  # ALTER ... OWNER TO needs membership in the new owner
                conn.exec_driver_sql(f"GRANT {_q(roles.owner)} TO {_q(me)}")
            _grant_all(conn, roles)
    finally:
        engine.dispose()
    return {"journal_id": journal_id, "roles": roles.all(), "created": created}


def _grant_all(conn: Connection, roles: TeamRoles) -> None:
    tables = _tables(conn)
    owner, op, ap, au = (_q(n) for n in roles.all())
    writers = f"{op}, {ap}"
    everyone = f"{op}, {ap}, {au}"
    db = str(conn.execute(text("SELECT current_database()")).scalar_one())
    schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
    ddl = [
        f"GRANT CONNECT ON DATABASE {_q(db)} TO {everyone}",
        f"GRANT USAGE ON SCHEMA {_q(schema)} TO {everyone}",
        # Members of the owner role keep the schema up to date when they connect (db.py).
        f"GRANT USAGE, CREATE ON SCHEMA {_q(schema)} TO {owner}",
    ]
    for t in tables:
        ddl += [
            f"ALTER TABLE {_q(t)} OWNER TO {owner}",
            f"REVOKE ALL ON {_q(t)} FROM PUBLIC, {everyone}",
            f"GRANT SELECT ON {_q(t)} TO {everyone}",
        ]
        if t == "events":
            # Insert-only: no UPDATE/DELETE/TRUNCATE for anyone but the owner.
            ddl.append(f"GRANT INSERT ON events TO {writers}")
        elif t == "journal_head":
            ddl.append(f"GRANT UPDATE ON journal_head TO {writers}")  # FOR UPDATE, new head
        elif t not in _WRITERS_READONLY:
            ddl.append(f"GRANT INSERT, UPDATE, DELETE ON {_q(t)} TO {writers}")
    ddl.append(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {_q(schema)} TO {writers}")
    kinds = ", ".join(_lit(k) for k in DECISION_KINDS)
    ddl += [
        f"""CREATE OR REPLACE FUNCTION backout_events_decisions() RETURNS trigger AS $$
        BEGIN
          IF NEW.kind IN ({kinds})
             AND NOT pg_has_role(current_user, {_lit(roles.approver)}, 'MEMBER')
             AND NOT pg_has_role(current_user, (SELECT relowner FROM pg_class
                                                WHERE oid = TG_RELID), 'MEMBER') THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
              MESSAGE = 'role "' || current_user || '" may not write ' || NEW.kind
                || ': only members of ' || {_lit(roles.approver)} || ' decide approvals';
          END IF;
          IF NEW.kind = 'journal.pruned'
             AND NOT pg_has_role(current_user, (SELECT relowner FROM pg_class
                                                WHERE oid = TG_RELID), 'MEMBER') THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
              MESSAGE = 'role "' || current_user || '" may not write journal.pruned: '
                || 'only members of ' || {_lit(roles.owner)} || ' prune the journal';
          END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql""",
        """CREATE OR REPLACE TRIGGER events_decisions BEFORE INSERT ON events
        FOR EACH ROW EXECUTE FUNCTION backout_events_decisions()""",
    ]
    for fn in (
        "backout_events_append_only",
        "backout_events_actor",
        "backout_events_notify",
        "backout_events_decisions",
    ):
        ddl.append(f"ALTER FUNCTION {fn}() OWNER TO {owner}")
    for stmt in ddl:
        conn.exec_driver_sql(stmt.replace("%", "%%"))


def grant(url: str, user: str, role: str, roles: TeamRoles | None = None) -> dict[str, Any]:
    """Create the LOGIN role ``user`` if missing and make it a member of the group ``role``."""
    roles = roles or TeamRoles()
    group = roles.name(role)
    if not _NAME.match(user):
        raise BadInput(f"user '{user}' must be a PostgreSQL role name (letters, digits, _).")
    engine = pg_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(7262340002)"))
            if not _role_exists(conn, group):
                raise BadInput(f"role {group} does not exist; run `backout journal setup` first.")
            created = not _role_exists(conn, user)
            if created:
                # No password: authentication is the server's business (peer, cert, LDAP...).
                conn.exec_driver_sql(f"CREATE ROLE {_q(user)} LOGIN")
            conn.exec_driver_sql(f"GRANT {_q(group)} TO {_q(user)}")
    finally:
        engine.dispose()
    return {"user": user, "role": group, "created": created}


def drop_roles(url: str, roles: TeamRoles, users: Sequence[str] = ()) -> None:
    """Remove people and group roles (tests; decommissioning). Objects owned go to the caller."""
    engine = pg_engine(url)
    try:
        with engine.begin() as conn:
            me = str(conn.execute(text("SELECT current_user")).scalar_one())
            for name in [*users, *roles.all()]:
                if _role_exists(conn, name):
                    conn.exec_driver_sql(f"REASSIGN OWNED BY {_q(name)} TO {_q(me)}")
                    conn.exec_driver_sql(f"DROP OWNED BY {_q(name)}")
                    conn.exec_driver_sql(f"DROP ROLE {_q(name)}")
    finally:
        engine.dispose()


def session_role(journal: Journal) -> str | None:
    """The authenticated role of a PostgreSQL journal (None on SQLite)."""
    if journal.dialect != "postgresql":
        return None
    with journal.read() as conn:
        return str(conn.execute(text("SELECT current_user")).scalar_one())


class TeamJournal(Journal):
    """A journal whose writes refused by the database's roles raise ``Blocked`` (one sentence)
    instead of a driver error."""

    @contextmanager
    def write(self) -> Iterator[Writer]:
        try:
            with super().write() as writer:
                yield writer
        except DBAPIError as exc:
            orig = exc.orig
            if getattr(orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                raise
            diag = getattr(orig, "diag", None)
            reason = getattr(diag, "message_primary", None) or str(orig).splitlines()[0]
            raise Blocked(
                f"the journal refused the write as {self.actor}: {reason.rstrip('.')}."
            ) from exc


_INSUFFICIENT_PRIVILEGE = "42501"


def open_journal(url: str, actor: str, **kwargs: Any) -> Journal:
    """A journal whose actor is the authenticated role on PostgreSQL (the database refuses any
    other, and the actor is hashed into the chain, so it must be known before appending);
    ``actor`` on SQLite."""
    journal = TeamJournal(url, actor=actor, **kwargs)
    role = session_role(journal)
    if role is not None:
        journal.actor = role
    return journal
