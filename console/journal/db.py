"""Connections and schema for the journal database (SQLite embedded, PostgreSQL shared)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from console.errors import BadInput
from console.journal import models
from console.journal.chain import genesis_hash

READONLY = {"backout_readonly": True}


def resolve_url(url_or_path: str) -> str:
    """A SQLAlchemy URL for a URL or a plain file path (a path means a SQLite file)."""
    if "://" not in url_or_path:
        return f"sqlite:///{Path(url_or_path).expanduser().resolve()}"
    if url_or_path.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url_or_path.split("://", 1)[1]
    return url_or_path


def _sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk when it returns. NORMAL survives a process crash but not
        # a power loss, which could drop an intent whose target write (another database)
        # stayed: rows written with no journaled inverse. One fsync per segment, the
        # write-ahead protocol's price (0.1 ms each on this machine's disk).
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front so that reading the chain head and appending
        # cannot interleave with another writer (a deferred upgrade would fail with BUSY).
        readonly = conn.get_execution_options().get("backout_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    url = resolve_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _sqlite_hooks(engine)
        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4)
    raise BadInput(
        f"journal URL '{url}' is not supported; use a SQLite path or sqlite:/// URL, "
        "or postgresql+psycopg://."
    )


# The one exception to append-only: ``journal prune`` replaces payloads of the seq ranges it
# permits (``prune_permits``, inside its own transaction) by a tombstone, every other column
# unchanged (``prune.py``). PostgreSQL grants that table to the journal's owner only.
_PRUNE_OK = """EXISTS (SELECT 1 FROM prune_permits p WHERE OLD.seq BETWEEN p.lo AND p.hi)
       AND NEW.seq = OLD.seq AND NEW.ts = OLD.ts AND NEW.kind = OLD.kind
       AND NEW.run_id IS NOT DISTINCT FROM OLD.run_id AND NEW.corr IS NOT DISTINCT FROM OLD.corr
       AND NEW.actor = OLD.actor AND NEW.hash = OLD.hash
       AND substr(NEW.payload, 1, 19) = '{"payload_sha256":"'"""

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
       WHEN NOT ({_PRUNE_OK.replace("IS NOT DISTINCT FROM", "IS")})
       BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
       BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END""",
]

_PG_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION backout_events_append_only() RETURNS trigger AS $$
       BEGIN
         IF TG_OP = 'UPDATE' THEN
           IF {_PRUNE_OK} THEN
             RETURN NEW;
           END IF;
         END IF;
         RAISE EXCEPTION 'journal events are append-only';
       END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
       FOR EACH ROW EXECUTE FUNCTION backout_events_append_only()""",
    """CREATE OR REPLACE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
       FOR EACH STATEMENT EXECUTE FUNCTION backout_events_append_only()""",
]


# Team journal objects (PostgreSQL): created when missing only, so that a member of the owning
# role who does not own these functions (e.g. they were made by a superuser) can still connect.
# (name, DDL): a name ending in "()" is a function, else a trigger on events.
_PG_TEAM: list[tuple[str, str]] = [
    # Identity is the authenticated role: the actor is hashed into the chain, so the client
    # must send it, and the database refuses a row that names anyone else. Superusers and
    # members of the table's owner role are exempt (they administer the journal; `journal
    # copy` carries actors over from a SQLite journal).
    (
        "backout_events_actor()",
        """CREATE OR REPLACE FUNCTION backout_events_actor() RETURNS trigger AS $$
       BEGIN
         IF NEW.actor IS DISTINCT FROM session_user::text
            AND NEW.actor IS DISTINCT FROM current_user::text
            AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
            AND NOT pg_has_role(current_user, (SELECT relowner FROM pg_class
                                               WHERE oid = TG_RELID), 'MEMBER') THEN
           RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
             MESSAGE = 'journal actor "' || NEW.actor
               || '" is not the connected role "' || current_user || '"';
         END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    ),
    (
        "events_actor",
        """CREATE OR REPLACE TRIGGER events_actor BEFORE INSERT ON events
       FOR EACH ROW EXECUTE FUNCTION backout_events_actor()""",
    ),
    # Consoles LISTEN on this channel; one notification per appending statement, with the
    # largest seq it wrote (delivered at commit, so listeners never see uncommitted events).
    (
        "backout_events_notify()",
        """CREATE OR REPLACE FUNCTION backout_events_notify() RETURNS trigger AS $$
       BEGIN
         PERFORM pg_notify('backout_events', (SELECT max(seq) FROM new_events)::text);
         RETURN NULL;
       END $$ LANGUAGE plpgsql""",
    ),
    (
        "events_notify",
        """CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON events
       REFERENCING NEW TABLE AS new_events
       FOR EACH STATEMENT EXECUTE FUNCTION backout_events_notify()""",
    ),
]

# Upgrades from an older schema version to the next one, in order.
_MIGRATIONS: dict[int, list[str]] = {}


def _not_a_foreign_database(conn: Connection) -> None:
    """A journal gets a file of its own: creating it inside an application's database (a
    target given as --journal by mistake) would mix the two."""
    names = {
        n
        for (n,) in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    own = {t.name for t in _tables()}
    if names and "journal_head" not in names and names - own:
        others = ", ".join(sorted(names - own)[:5])
        raise BadInput(
            f"{conn.engine.url.database} is not a journal: it holds other tables ({others}); "
            "give the journal a file of its own."
        )


def _sqlite_up_to_date(engine: Engine) -> str | None:
    """The journal id of a SQLite journal already at this schema version, read without the
    write lock (None: create or upgrade it): so that `backout runs` or `show` does not wait
    behind a writer, as the upgrade's write transaction would."""
    with engine.connect().execution_options(**READONLY) as conn, conn.begin():
        tables = conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).scalar_one()
        if not tables:
            return None
        meta = models.table_of(models.Meta)
        rows: dict[str, str] = dict(conn.execute(select(meta.c.key, meta.c.value)).all())
    if rows.get("schema_version") != str(models.SCHEMA_VERSION):
        return None
    return rows.get("journal_id")


def ensure_schema(engine: Engine) -> str:
    """Create or upgrade the schema (idempotent, safe when several processes race).

    Returns the journal id.
    """
    if engine.dialect.name == "sqlite":
        current = _sqlite_up_to_date(engine)
        if current is not None:
            return current
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7262340001)"))
            if not _pg_may_alter(conn):
                return _pg_journal_id(conn)
        if conn.dialect.name == "sqlite":
            _not_a_foreign_database(conn)
        SQLModel.metadata.create_all(conn, tables=_tables())
        if conn.dialect.name == "sqlite":
            _sqlite_prune_aware_trigger(conn)
        for ddl in _SQLITE_TRIGGERS if conn.dialect.name == "sqlite" else _PG_TRIGGERS:
            conn.exec_driver_sql(ddl)
        if conn.dialect.name == "postgresql":
            _pg_team_objects(conn)
        meta = models.table_of(models.Meta)
        rows: dict[str, str] = dict(conn.execute(select(meta.c.key, meta.c.value)).all())
        journal_id = rows.get("journal_id")
        if journal_id is None:
            journal_id = str(uuid.uuid4())
            conn.execute(meta.insert(), [{"key": "journal_id", "value": journal_id}])
            conn.execute(
                meta.insert(), [{"key": "schema_version", "value": str(models.SCHEMA_VERSION)}]
            )
            head = models.table_of(models.Head)
            conn.execute(head.insert(), [{"id": 1, "seq": 0, "hash": genesis_hash(journal_id)}])
        else:
            version = int(rows.get("schema_version", "1"))
            if version > models.SCHEMA_VERSION:
                raise BadInput(
                    f"the journal has schema version {version}, newer than this backout "
                    f"({models.SCHEMA_VERSION}); upgrade backout."
                )
            for v in range(version, models.SCHEMA_VERSION):
                for ddl in _MIGRATIONS.get(v, []):
                    conn.exec_driver_sql(ddl)
            if version < models.SCHEMA_VERSION:
                conn.execute(
                    meta.update()
                    .where(meta.c.key == "schema_version")
                    .values(value=str(models.SCHEMA_VERSION))
                )
        return journal_id


def _sqlite_prune_aware_trigger(conn: Connection) -> None:
    """Journals made before ``journal prune`` have an update trigger without its exception:
    drop it, so that the current one is created."""
    sql = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'events_no_update'"
    ).scalar()
    if sql is not None and "prune_permits" not in sql:
        conn.exec_driver_sql("DROP TRIGGER events_no_update")


def _tables() -> list[Any]:
    return [models.table_of(m) for m in models.ALL_MODELS]


def _pg_may_alter(conn: Connection) -> bool:
    """False for team members (operators, approvers, auditors) of an existing journal: only
    its owner can run DDL there, and they need none."""
    owner_ok = conn.execute(
        text(
            "SELECT pg_has_role(current_user, c.relowner, 'MEMBER') FROM pg_class c "
            "WHERE c.oid = to_regclass('events')"
        )
    ).scalar()
    return owner_ok is None or bool(owner_ok)


def _pg_journal_id(conn: Connection) -> str:
    meta = models.table_of(models.Meta)
    rows: dict[str, str] = dict(conn.execute(select(meta.c.key, meta.c.value)).all())
    if "journal_id" not in rows:
        raise BadInput(
            "this PostgreSQL journal has no id; its owner must run `backout journal setup`."
        )
    if int(rows.get("schema_version", "1")) != models.SCHEMA_VERSION:
        raise BadInput(
            f"the journal has schema version {rows.get('schema_version')}, this backout expects "
            f"{models.SCHEMA_VERSION}; its owner must run `backout journal setup` "
            "with a matching backout."
        )
    return rows["journal_id"]


def _pg_team_objects(conn: Connection) -> None:
    for name, ddl in _PG_TEAM:
        if name.endswith("()"):
            missing = conn.execute(text("SELECT to_regprocedure(:n) IS NULL"), {"n": name})
        else:
            missing = conn.execute(
                text(
                    "SELECT NOT EXISTS (SELECT 1 FROM pg_trigger "
                    "WHERE tgrelid = 'events'::regclass AND tgname = :n)"
                ),
                {"n": name},
            )
        if missing.scalar():
            conn.exec_driver_sql(ddl)
