"""Test helpers: dialect names, trusted DDL, and exact dumps of a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import create_engine, inspect


def dialect_of(url: str) -> str:
    if url.startswith("sqlite"):
        return "sqlite"
    return "postgresql" if url.startswith("postgresql") else "mysql"


def run_sql(url: str, statements: Sequence[str], params: Sequence[Any] | None = None) -> None:
    """Run trusted test DDL/DML in one transaction."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for i, stmt in enumerate(statements):
                if params is not None and params[i] is not None:
                    conn.exec_driver_sql(stmt, params[i])
                else:  # no parameters: '%' in the SQL is literal
                    conn.exec_driver_sql(stmt, execution_options={"no_parameters": True})
    finally:
        engine.dispose()


def quote(url: str, name: str) -> str:
    return f"`{name}`" if dialect_of(url) == "mysql" else f'"{name}"'


def dump(url: str, table: str, order_by: str = "1") -> list[tuple[Any, ...]]:
    """The table exactly as stored: SQLite values with typeof(), PostgreSQL rows as text,
    MariaDB driver values with FLOAT widened to DOUBLE (its text form rounds)."""
    engine = create_engine(url)
    try:
        cols = list(inspect(engine).get_columns(table))
        d = dialect_of(url)
        q = quote(url, table)
        if d == "sqlite":
            parts = [f'"{c["name"]}", typeof("{c["name"]}")' for c in cols]
            sql = f"SELECT {', '.join(parts)} FROM {q} ORDER BY {order_by}"
        elif d == "postgresql":
            sql = f"SELECT CAST(t AS TEXT) FROM {q} t ORDER BY {order_by}"
        else:
            parts = [
                f"`{c['name']}` + 0" if type(c["type"]).__name__ == "FLOAT" else f"`{c['name']}`"
                for c in cols
            ]
            sql = f"SELECT {', '.join(parts)} FROM {q} ORDER BY {order_by}"
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()
