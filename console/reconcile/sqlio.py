"""Reading what reconciliation compares from SQL: table references, engines that attach a
baseline file, rows by key (duplicates included), key hygiene, exact aggregates, and a
full-table baseline copy. Used by ``pushdown`` and, later, the ``backout reconcile`` wiring."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from console.errors import BadInput
from console.targets.sql import _SUM_BOUND, _exact, _places, _sqlite_fast_columns
from console.targets.types import Aggregates, KeyTuple, Row, TableInfo

Bind = Engine | Connection


@dataclass(frozen=True)
class TableRef:
    """A table in the connection: ``schema`` is an attached database (SQLite) or a schema."""

    name: str
    schema: str | None = None

    def sa_table(self, columns: Iterable[str]) -> sa.TableClause:
        return sa.table(self.name, *(sa.column(c) for c in columns), schema=self.schema)


@dataclass(frozen=True)
class Hygiene:
    duplicate_keys: list[KeyTuple]
    null_rows: list[Row]


def sqlite_engine(path: str, attach: Mapping[str, str] | None = None) -> Engine:
    """An engine on a SQLite file whose every connection attaches ``attach`` (alias -> file),
    so detection can compare across files and run on several connections at once."""
    engine = sa.create_engine(f"sqlite:///{path}")
    aliases = dict(attach or {})

    @sa.event.listens_for(engine, "connect")
    def _onconnect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        for alias, file in aliases.items():
            name = alias.replace('"', "")
            cur.execute(f'ATTACH DATABASE ? AS "{name}"', (file,))
        cur.execute("PRAGMA mmap_size=1073741824")  # reads only: fewer copies on big scans
        cur.close()

    return engine


def connect(bind: Bind) -> AbstractContextManager[Connection]:
    """A Connection for a ``with`` block: a new one from an Engine (closed after), or the
    given one (left open)."""
    if isinstance(bind, Engine):
        return bind.connect()
    return nullcontext(bind)


def _unique_key(conn: Connection, ref: TableRef, key_columns: Sequence[str]) -> bool:
    """Whether the database enforces uniqueness of exactly these key columns."""
    insp = sa.inspect(conn)
    want = set(key_columns)
    pk = insp.get_pk_constraint(ref.name, schema=ref.schema)
    if set(pk.get("constrained_columns") or []) == want:
        return True
    for uc in insp.get_unique_constraints(ref.name, schema=ref.schema):
        if set(uc["column_names"]) == want:
            return True
    return any(
        ix.get("unique") and {c for c in ix["column_names"] if c} == want
        for ix in insp.get_indexes(ref.name, schema=ref.schema)
    )


def key_hygiene(
    conn: Connection, info: TableInfo, ref: TableRef, key_columns: Sequence[str]
) -> Hygiene:
    """Duplicate keys (skipped when the database enforces the key) and rows with a NULL key
    part, found in SQL; their rows are then read by key so none is collapsed."""
    t = ref.sa_table(info.columns)
    keys = [t.c[k] for k in key_columns]
    dups: list[KeyTuple] = []
    if not _unique_key(conn, ref, key_columns):
        q = (
            sa.select(*keys)
            .where(*(k.is_not(None) for k in keys))
            .group_by(*keys)
            .having(sa.func.count() > 1)
        )
        dups = [tuple(r) for r in conn.execute(q).fetchall()]
    q_null = sa.select(*(t.c[c] for c in info.columns)).where(sa.or_(*(k.is_(None) for k in keys)))
    nulls = [dict(r._mapping) for r in conn.execute(q_null).fetchall()]
    return Hygiene(dups, nulls)


def count_rows(conn: Connection, ref: TableRef) -> int:
    t = ref.sa_table([])
    return int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())


def fetch_rows(
    conn: Connection,
    info: TableInfo,
    ref: TableRef,
    key_columns: Sequence[str],
    keys: Sequence[KeyTuple],
    *,
    batch: int = 20_000,
) -> list[Row]:
    """Every row under these keys (duplicates included), all columns."""
    t = ref.sa_table(info.columns)
    cols = [t.c[c] for c in info.columns]
    names = list(info.columns)
    per = max(1, batch // len(key_columns))
    out: list[Row] = []
    for i in range(0, len(keys), per):
        chunk = keys[i : i + per]
        cond, params = keys_in(conn, t, key_columns, chunk)
        rows = conn.execute(sa.select(*cols).where(cond), params).fetchall()
        out.extend(dict(zip(names, r, strict=True)) for r in rows)
    return out


_JSON_SCALARS = (str, int, float)


def keys_in(
    conn: Connection, t: sa.TableClause, key_columns: Sequence[str], keys: Sequence[KeyTuple]
) -> tuple[Any, dict[str, Any]]:
    """``key IN (...)``. On SQLite the keys travel as one JSON parameter read by json_each:
    one bind instead of thousands (preparing a 20,000-parameter statement costs more than
    the lookups)."""
    target = (
        t.c[key_columns[0]] if len(key_columns) == 1 else sa.tuple_(*(t.c[k] for k in key_columns))
    )
    scalar = all(type(v) in _JSON_SCALARS for k in keys for v in k)
    if conn.dialect.name != "sqlite" or not scalar:
        values = [k[0] for k in keys] if len(key_columns) == 1 else [tuple(k) for k in keys]
        return target.in_(values), {}
    each = sa.func.json_each(sa.bindparam("keys")).table_valued("value")
    if len(key_columns) == 1:
        sub = sa.select(each.c.value)
        payload = json.dumps([k[0] for k in keys])
    else:
        sub = sa.select(
            *(sa.func.json_extract(each.c.value, f"$[{i}]") for i in range(len(key_columns)))
        )
        payload = json.dumps([list(k) for k in keys])
    return target.in_(sub), {"keys": payload}


def _sum_text(value: Any) -> str:
    if value is None:
        return "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _sqlite_aggregates(
    conn: Connection,
    info: TableInfo,
    ref: TableRef,
    numeric: Sequence[str],
    group_by: str | None,
) -> dict[Any, tuple[int, list[Any]]]:
    """Count and exact sums per group on SQLite, by the target's rules (``targets.sql``);
    SQLite sums REALs in floating point and raises on integer overflow, so each column is
    summed as scaled integers with the proof that this is exact (every value an integer or
    the exact double of a decimal with those places, none too large) in the same scan; a
    (group, column) it cannot prove is added again in Python from the stored values."""
    prep = conn.dialect.identifier_preparer
    table = prep.format_table(ref.sa_table(info.columns))
    cols = [info.columns[c] for c in numeric]
    quoted = [prep.quote(c) for c in numeric]
    places = [_places(c) for c in cols]
    declared = [c.kind == "decimal" and p == c.scale for c, p in zip(cols, places, strict=True)]
    # Float columns are compared with a relative tolerance (``aggregates``): their float
    # sum is enough, and proving it exact cost five times the scan.
    parts = [
        [f"TOTAL({q})"] if c.kind == "float" else _sqlite_fast_columns(q, s, c.kind, d)
        for q, s, c, d in zip(quoted, places, cols, declared, strict=True)
    ]
    head = [prep.quote(group_by)] if group_by else []
    select = ", ".join([*head, "COUNT(*)", *(e for p in parts for e in p)])
    grouping = f" GROUP BY {head[0]}" if head else ""
    try:
        rows = conn.exec_driver_sql(f"SELECT {select} FROM {table}{grouping}").fetchall()
        overflow = False
    except DBAPIError as exc:
        if "overflow" not in str(exc.orig):
            raise
        conn.rollback()
        sql = f"SELECT {', '.join([*head, 'COUNT(*)'])} FROM {table}{grouping}"
        rows, overflow = conn.exec_driver_sql(sql).fetchall(), True
    out: dict[Any, tuple[int, list[Any]]] = {}
    slow: list[tuple[Any, int]] = []  # (group, column index) left to Python
    for r in rows:
        g = (r[0],) if group_by else ()
        base = len(head)
        values: list[Any] = []
        at = base + 1
        for i, (s, c, d, p) in enumerate(zip(places, cols, declared, parts, strict=True)):
            got, at = (None if overflow else r[at : at + len(p)]), at + len(p)
            values.append(_proven_sum(got, s, c.kind, d))
            if values[-1] is _UNPROVEN:
                slow.append((g, i))
        out[g] = (int(r[base]), values)
    for i in sorted({i for _g, i in slow}):
        groups = {g for g, j in slow if j == i}
        for g, total in _python_sums(conn, table, quoted[i], head, groups).items():
            out[g][1][i] = total
    return out


_UNPROVEN = object()


def _proven_sum(got: Sequence[Any] | None, s: int, kind: str, declared: bool) -> Any:
    """A column's exact sum from its ``_sqlite_fast_columns`` results, or ``_UNPROVEN``."""
    if got is None:
        return _UNPROVEN
    if kind == "float":
        return got[0]
    if kind == "int":
        return got[0] if got[0] is None or type(got[0]) is int else _UNPROVEN
    scaled, exact, present, largest = got[:4]
    bounded = isinstance(largest, int | float) and largest < _SUM_BOUND // 10**s
    if exact != present or (present and not bounded):
        return _UNPROVEN
    if not present:
        return Decimal(0)
    most = s if declared else got[4]  # every term has at most `most` places: quantize is exact
    return Decimal(int(scaled)).scaleb(-s).quantize(Decimal(1).scaleb(-most))


def _python_sums(
    conn: Connection, table: str, q: str, head: Sequence[str], groups: set[Any]
) -> dict[Any, Decimal]:
    """Stored values added exactly in Python, per group."""
    select = ", ".join([*head, q])
    out: dict[Any, Decimal] = {g: Decimal(0) for g in groups}
    for r in conn.exec_driver_sql(f"SELECT {select} FROM {table} WHERE {q} IS NOT NULL"):
        g = (r[0],) if head else ()
        if g in out:
            out[g] += _exact(r[-1])
    return out


def copy_table(conn: Connection, source: TableRef, dest: TableRef) -> int:
    """A full-table baseline for detection: ``source`` copied into ``dest`` (an attached
    database) with the same definition, so the same keys are indexed. SQLite only."""
    if conn.dialect.name != "sqlite":
        raise BadInput("A full-table baseline copy is made on SQLite only.")
    master = f'"{source.schema}".sqlite_master' if source.schema else "sqlite_master"
    ddl = conn.execute(
        sa.text(f"SELECT sql FROM {master} WHERE type = 'table' AND name = :n"),
        {"n": source.name},
    ).scalar()
    if ddl is None:
        raise BadInput(f"No table {source.name} to copy.")
    prep = conn.dialect.identifier_preparer
    qualified = (
        prep.quote(dest.name)
        if not dest.schema
        else (f"{prep.quote(dest.schema)}.{prep.quote(dest.name)}")
    )
    _head, _, body = str(ddl).partition("(")
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {qualified}"))
    conn.execute(sa.text(f"CREATE TABLE {qualified} ({body}"))
    src = (
        prep.quote(source.name)
        if not source.schema
        else (f"{prep.quote(source.schema)}.{prep.quote(source.name)}")
    )
    conn.execute(sa.text(f"INSERT INTO {qualified} SELECT * FROM {src}"))
    return count_rows(conn, dest)


def table_aggregates(
    conn: Connection,
    info: TableInfo,
    ref: TableRef,
    numeric: Sequence[str],
    *,
    group_by: str | None = None,
) -> dict[Any, Aggregates]:
    """Row count and sums (exact text) per numeric column, in SQL: ``{(): Aggregates}`` for
    the whole table, or one entry per group value with ``group_by``."""
    if conn.dialect.name == "sqlite":
        found = _sqlite_aggregates(conn, info, ref, numeric, group_by)
    else:
        t = ref.sa_table(info.columns)
        head = [t.c[group_by]] if group_by else []
        q = sa.select(*head, sa.func.count(), *(sa.func.sum(t.c[c]) for c in numeric))
        q = q.select_from(t)
        if group_by:
            q = q.group_by(t.c[group_by])
        found = {}
        for r in conn.execute(q):
            g = (r[0],) if group_by else ()
            vals = r[1:] if group_by else r
            found[g] = (int(vals[0]), list(vals[1:]))
    out = {
        g: Aggregates(n, {c: _sum_text(v) for c, v in zip(numeric, sums, strict=True)})
        for g, (n, sums) in found.items()
    }
    if not group_by and () not in out:
        out[()] = Aggregates(0, dict.fromkeys(numeric, "0"))
    return out
