"""Real ``TableInfo``s for the tests: reflect real SQLite tables with SQLAlchemy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import types as sqltypes

from console.errors import BadInput
from console.targets.types import ColumnInfo, ColumnKind, TableInfo

SCHEMA = """
CREATE TABLE products (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    price NUMERIC(10, 2) NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    updated DATETIME,
    note TEXT
);
CREATE TABLE stock (
    warehouse TEXT NOT NULL,
    sku TEXT NOT NULL,
    qty INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (warehouse, sku)
);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    born DATE,
    opens TIME,
    data JSON,
    photo BLOB,
    ratio REAL
);
"""


def _kind(type_: sqltypes.TypeEngine[object]) -> ColumnKind:
    checks: list[tuple[type[sqltypes.TypeEngine[object]], ColumnKind]] = [
        (sqltypes.Boolean, "bool"),
        (sqltypes.Integer, "int"),
        (sqltypes.Float, "float"),
        (sqltypes.Numeric, "decimal"),
        (sqltypes.DateTime, "datetime"),
        (sqltypes.Date, "date"),
        (sqltypes.Time, "time"),
        (sqltypes.LargeBinary, "bytes"),
        (sqltypes.JSON, "json"),
        (sqltypes.String, "text"),
    ]
    for cls, kind in checks:
        if isinstance(type_, cls):
            return kind
    return "other"


def reflect_table(engine: sa.Engine, name: str) -> TableInfo:
    inspector = sa.inspect(engine)
    if not inspector.has_table(name):
        raise BadInput(f"the target has no table {name}; check the step's table.")
    primary = tuple(inspector.get_pk_constraint(name)["constrained_columns"])
    columns: dict[str, ColumnInfo] = {}
    for c in inspector.get_columns(name):
        kind = _kind(c["type"])
        rowid = primary == (c["name"],) and kind == "int"
        columns[c["name"]] = ColumnInfo(
            name=c["name"],
            kind=kind,
            nullable=bool(c["nullable"]),
            primary_key=c["name"] in primary,
            scale=getattr(c["type"], "scale", None) if kind == "decimal" else None,
            has_default=c.get("default") is not None or rowid,
            type_name=str(c["type"]),
        )
    return TableInfo(name, columns, primary)


def sqlite_tables(path: Path) -> Callable[[str | None, str], TableInfo]:
    """Create the test schema in a SQLite file; return the ``tables`` lookup validation takes."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    infos = {name: reflect_table(engine, name) for name in ("products", "stock", "customers")}
    engine.dispose()

    def tables(target: str | None, table: str) -> TableInfo:
        if table not in infos:
            raise BadInput(f"the target has no table {table}; check the step's table.")
        return infos[table]

    return tables
