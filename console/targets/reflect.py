"""Reflect a target table: column kinds, keys, and the mirror that statements are built from.

Every identifier that reaches SQL comes from here: a table name is looked up in the
database's own list of tables, column names come from the reflection, and statements are
built from SQLAlchemy objects that quote them. Nothing from input is interpolated.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, MetaData, Table, Text, cast, inspect, literal_column, text
from sqlalchemy import types as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.exc import DBAPIError, SAWarning
from sqlalchemy.sql.elements import ColumnElement

from console.errors import BadInput, TargetUnavailable
from console.targets.types import ColumnInfo, ColumnKind, TableInfo
from console.targets.values import Dialect, passthrough

_JSON_CHECK = re.compile(r"^\s*json_valid\(\s*`?([^`)]+)`?\s*\)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Reflected:
    """A reflected table and what statements need beyond ``TableInfo``."""

    info: TableInfo
    names: tuple[str, ...]  # columns in table order (the order of ``reads``)
    # Columns typed NullType: binds and results pass through untouched (see values.py).
    table: Table
    reads: tuple[ColumnElement[Any], ...]  # the select list, in table order
    float32: frozenset[str]  # MariaDB FLOAT columns, read widened to DOUBLE
    computed: frozenset[str]  # generated columns: read, never written
    identity_always: frozenset[str]  # PostgreSQL GENERATED ALWAYS AS IDENTITY
    unique_keys: tuple[tuple[str, ...], ...]  # primary key first
    as_is: Mapping[str, frozenset[type]]  # per column: value types bound without to_db
    cascades: tuple[Cascade, ...] = ()  # deleting our rows writes theirs


def kind_of(type_: Any) -> tuple[ColumnKind, int | None]:
    """The column kind (and decimal scale) of a reflected SQLAlchemy type."""
    if isinstance(type_, sa.Boolean):
        return "bool", None
    if isinstance(type_, mysql.TINYINT) and getattr(type_, "display_width", None) == 1:
        return "bool", None  # MariaDB's BOOLEAN is TINYINT(1)
    if isinstance(type_, sa.Integer | mysql.YEAR):
        return "int", None
    if isinstance(type_, sa.Float):  # before Numeric: Float is a Numeric
        return "float", None
    if isinstance(type_, sa.Numeric):
        return "decimal", type_.scale
    if isinstance(type_, sa.DateTime):
        return "datetime", None
    if isinstance(type_, sa.Date):
        return "date", None
    if isinstance(type_, sa.Time):
        return "time", None
    if isinstance(type_, sa._Binary | mysql.BIT):
        return "bytes", None
    if isinstance(type_, sa.JSON):
        return "json", None
    if isinstance(type_, sa.String):  # VARCHAR, TEXT, CHAR, ENUM, SET, CITEXT
        return "text", None
    return "other", None


def _int_bytes(type_: Any) -> int:
    if isinstance(type_, mysql.TINYINT):
        return 1
    if isinstance(type_, sa.SmallInteger):
        return 2
    if isinstance(type_, mysql.MEDIUMINT):
        return 3
    return 8 if isinstance(type_, sa.BigInteger) else 4


def limits(type_: Any, kind: ColumnKind, rounds: bool = True) -> dict[str, Any]:
    """What PostgreSQL and MariaDB refuse (or, outside strict mode, truncate) on write, and the
    fractional seconds they keep: the ``ColumnInfo`` fields ``length``, ``digits``,
    ``int_range`` and ``fraction`` of a reflected type. ``rounds``: whether the database
    rounds extra fractional seconds away (else it truncates them)."""
    if kind in ("datetime", "time"):
        if isinstance(type_, mysql.DATETIME | mysql.TIMESTAMP | mysql.TIME):
            fraction: Any = type_.fsp or 0  # MariaDB's default precision is whole seconds
        else:
            fraction = getattr(type_, "precision", None)  # PostgreSQL's default is 6
        if fraction is not None and 0 <= fraction < 6:
            return {"fraction": int(fraction), "fraction_rounds": rounds}
        return {}
    if kind == "int" and isinstance(type_, sa.Integer):
        bits = 8 * _int_bytes(type_)
        if getattr(type_, "unsigned", False):
            return {"int_range": (0, 2**bits - 1)}
        return {"int_range": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)}
    if kind == "decimal" and isinstance(type_, sa.Numeric) and type_.precision:
        return {"digits": int(type_.precision)}
    if (
        kind == "text"
        and isinstance(type_, sa.String)
        and not isinstance(type_, sa.Text | sa.Enum | mysql.SET)
        and type_.length
    ):
        return {"length": int(type_.length)}
    return {}


def _type_name(type_: Any, conn: Connection) -> str:
    try:
        return str(type_.compile(dialect=conn.dialect))
    except Exception:
        return type(type_).__name__


_JOURNAL_TABLES = {"meta", "journal_head", "events"}


def locate(conn: Connection, name: str, where: str) -> tuple[str | None, str]:
    """(schema, table) of an existing table named ``name`` (or ``schema.table``)."""
    insp = inspect(conn)
    names = insp.get_table_names()
    if set(names) >= _JOURNAL_TABLES:
        raise TargetUnavailable(
            f"{where} holds a backout journal; a target must be another database than the "
            "journal (give the application's database as the target)."
        )
    if name in names:
        return None, name
    schema, dot, table = name.partition(".")
    if dot and schema in insp.get_schema_names() and table in insp.get_table_names(schema):
        return schema, table
    hint = difflib.get_close_matches(name, names, n=1)
    also = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise BadInput(f"table '{name}' does not exist in {where}; check the name{also}.")


def _mariadb_json_columns(conn: Connection, schema: str | None, table: str) -> set[str]:
    """MariaDB's JSON is LONGTEXT with a column CHECK (json_valid(col)) (not reflected)."""
    query = text(
        "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table"
    )
    try:
        clauses = conn.execute(query, {"schema": schema, "table": table}).scalars().all()
    except DBAPIError:
        return set()  # MySQL has no TABLE_NAME there, and a native JSON type anyway
    return {m.group(1) for c in clauses if (m := _JSON_CHECK.search(str(c)))}


def _mysql_rounds_fractions(conn: Connection) -> bool:
    """MariaDB truncates extra fractional seconds unless sql_mode has TIME_ROUND_FRACTIONAL;
    MySQL rounds them unless it has TIME_TRUNCATE_FRACTIONAL."""
    mode = str(conn.exec_driver_sql("SELECT @@sql_mode").scalar() or "").upper()
    if getattr(conn.dialect, "is_mariadb", False):
        return "TIME_ROUND_FRACTIONAL" in mode
    return "TIME_TRUNCATE_FRACTIONAL" not in mode


def _is_sqlite_rowid(col: ReflectedColumn, pk: list[str], dialect: Dialect) -> bool:
    # An INTEGER PRIMARY KEY aliases the rowid: an insert may omit it.
    return dialect == "sqlite" and pk == [col["name"]] and str(col["type"]).upper() == "INTEGER"


_CHANGES_CHILDREN = ("CASCADE", "SET NULL", "SET DEFAULT")


@dataclass(frozen=True)
class Cascade:
    """A foreign key of another table whose ON DELETE writes that table's rows when one of
    ours is deleted: rows no journal would hold, so such a delete is refused while they
    exist (``SqlTarget.write_segment``)."""

    child: Table  # the child table's referencing columns (NullType: values bound as given)
    columns: tuple[str, ...]  # in the child
    referred: tuple[str, ...]  # in this table
    action: str

    def describe(self) -> str:
        return f"{self.child.name}({', '.join(self.columns)}) ON DELETE {self.action}"


def _cascades(insp: Any, schema: str | None, table: str) -> tuple[Cascade, ...]:
    found: list[Cascade] = []
    try:
        every = insp.get_multi_foreign_keys(schema=schema)
    except Exception:  # a role that may not read the catalog: nothing known, nothing claimed
        return ()
    for (child_schema, child), fks in sorted(every.items(), key=lambda kv: str(kv[0])):
        for fk in fks:
            action = str((fk.get("options") or {}).get("ondelete") or "").upper()
            if fk.get("referred_table") != table or action not in _CHANGES_CHILDREN:
                continue
            columns = tuple(fk.get("constrained_columns") or ())
            mirror = Table(
                child, MetaData(), *(Column(c, sa.NullType()) for c in columns),
                schema=child_schema,
            )  # fmt: skip
            found.append(Cascade(mirror, columns, tuple(fk["referred_columns"]), action))
    return tuple(found)


def reflect(conn: Connection, name: str, where: str) -> Reflected:
    """Reflect table ``name`` over ``conn``; ``where`` names the database in messages."""
    schema, table_name = locate(conn, name, where)
    insp = inspect(conn)
    dialect: Dialect = (
        "sqlite"
        if conn.dialect.name == "sqlite"
        else "postgresql"
        if conn.dialect.name == "postgresql"
        else "mysql"
    )
    with warnings.catch_warnings():  # a type SQLAlchemy does not know (xml, point) is "other"
        warnings.simplefilter("ignore", SAWarning)
        reflected = insp.get_columns(table_name, schema)
    pk = list(insp.get_pk_constraint(table_name, schema).get("constrained_columns") or [])
    json_text = _mariadb_json_columns(conn, schema, table_name) if dialect == "mysql" else set()
    timed = any(kind_of(c["type"])[0] in ("datetime", "time") for c in reflected)
    rounds = dialect != "mysql" or not timed or _mysql_rounds_fractions(conn)
    columns: dict[str, ColumnInfo] = {}
    float32: set[str] = set()
    computed: set[str] = set()
    identity_always: set[str] = set()
    for col in reflected:
        cname = col["name"]
        kind, scale = kind_of(col["type"])
        if cname in json_text and kind == "text":
            kind = "json"
        if dialect == "mysql" and type(col["type"]) is mysql.FLOAT:
            float32.add(cname)
        if col.get("computed"):
            computed.add(cname)
        identity = col.get("identity")
        if identity and identity.get("always"):
            identity_always.add(cname)
        columns[cname] = ColumnInfo(
            name=cname,
            kind=kind,
            nullable=bool(col.get("nullable", True)),
            primary_key=cname in pk,
            scale=scale,
            has_default=bool(
                col.get("default") is not None
                or col.get("autoincrement") is True
                or identity
                or col.get("computed")
                or _is_sqlite_rowid(col, pk, dialect)
            ),
            type_name=_type_name(col["type"], conn),
            **(
                {"verbatim": kind in ("date", "datetime", "time")}
                if dialect == "sqlite"
                else limits(col["type"], kind, rounds)
            ),
        )
    uniques: list[tuple[str, ...]] = [tuple(pk)] if pk else []
    for uc in insp.get_unique_constraints(table_name, schema):
        uniques.append(tuple(uc["column_names"]))
    for ix in insp.get_indexes(table_name, schema):
        cols = ix.get("column_names") or []
        if ix.get("unique") and cols and all(c is not None for c in cols):
            uniques.append(tuple(c for c in cols if c is not None))
    mirror = Table(
        table_name, MetaData(), *(Column(c, sa.NullType()) for c in columns), schema=schema
    )
    reads: list[ColumnElement[Any]] = []
    for cname, info in columns.items():
        c = mirror.c[cname]
        if dialect == "postgresql" and info.kind in ("json", "other"):
            # Text I/O is exact for every PostgreSQL type (intervals keep months, json its
            # spacing); written back as untyped text, the server casts it to the column type.
            reads.append(cast(c, Text).label(cname))
        elif cname in float32:
            # MariaDB prints FLOAT with 6 digits; widened, the stored value comes back whole.
            reads.append((c + literal_column("0")).label(cname))
        else:
            reads.append(c)
    return Reflected(
        info=TableInfo(name=name, columns=columns, primary_key=tuple(pk)),
        names=tuple(columns),
        table=mirror,
        reads=tuple(reads),
        float32=frozenset(float32),
        computed=frozenset(computed),
        identity_always=frozenset(identity_always),
        unique_keys=tuple(dict.fromkeys(uniques)),
        as_is={c: passthrough(i, dialect) for c, i in columns.items()},
        cascades=_cascades(insp, schema, table_name),
    )
