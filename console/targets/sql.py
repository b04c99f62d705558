"""SQL targets (SQLite, PostgreSQL, MariaDB) through SQLAlchemy Core.

Values cross this boundary untouched by SQLAlchemy types (the reflected mirror is typed
NullType): rows are read as the driver returns them and turned into canonical images by
``values.from_db``; images are bound back through ``values.to_db``. That is what makes a
rollback byte-for-byte exact (see ``values.py`` and ``reflect.py`` for the per-database cases).

``write_segment`` is the hot path of every apply and rollback: one transaction, one locking
re-read, conflicts decided in Python, consecutive same-shaped writes sent as one executemany
of a statement compiled once per shape.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import psycopg
import pymysql
from psycopg.adapt import Loader
from psycopg.pq import Format
from sqlalchemy import (
    Engine,
    Numeric,
    bindparam,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, RootTransaction, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql import Select

from console.canonical import mask_url
from console.errors import BackoutError, BadInput, TargetUnavailable
from console.targets.reflect import Reflected, reflect
from console.targets.types import (
    Aggregates,
    ColumnInfo,
    KeyTuple,
    Row,
    RowWrite,
    SegmentError,
    TableInfo,
    TargetBusy,
    TransientError,
    WriteOutcome,
)
from console.targets.values import (
    Dialect,
    float32_image,
    from_db,
    key_tuple,
    same,
    to_db,
)

__all__ = ["SqlTarget", "classify", "key_tuple", "sqlalchemy_url"]

Verdict = Literal["transient", "timeout", "error"]

# PostgreSQL SQLSTATEs worth a retry: serialization failure, deadlock, lock not available,
# admin/crash shutdown, cannot connect now, too many connections (class 08 too, below).
_PG_TRANSIENT = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"}
# MariaDB: deadlock, lock wait timeout, gone away, lost connection, can't connect, killed,
# too many connections, disconnected for inactivity.
_MYSQL_TRANSIENT = {1213, 1205, 2006, 2013, 2003, 1927, 1040, 4031}
_MYSQL_TIMEOUT = {1969, 3024}  # max_statement_time (MariaDB), max_execution_time (MySQL)


def sqlalchemy_url(url_or_path: str) -> str:
    """A SQLAlchemy URL for a target URL or a plain file path (a path means SQLite)."""
    text = url_or_path.strip()
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    scheme, rest = text.split("://", 1)
    base = scheme.lower().split("+", 1)[0]
    if base in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + rest
    if base in ("mysql", "mariadb"):
        return "mysql+pymysql://" + rest
    if base == "sqlite":
        return text
    raise TargetUnavailable(
        f"target URL '{mask_url(text)}' is not supported; use a SQLite file path or "
        "sqlite:///, postgresql:// or mysql:// (MariaDB)."
    )


def classify(dialect: str, exc: BaseException) -> Verdict:
    """Is a database error worth a retry, a statement timeout, or a plain failure?"""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return "transient"
        orig: BaseException | None = exc.orig
    else:
        orig = exc
    if dialect == "sqlite":
        code = getattr(orig, "sqlite_errorcode", None)
        message = str(orig).lower()
        if (code is not None and code & 0xFF in (5, 6)) or "locked" in message:
            return "transient"  # SQLITE_BUSY / SQLITE_LOCKED
        return "timeout" if "interrupted" in message else "error"
    if dialect == "postgresql":
        state = getattr(orig, "sqlstate", None) or ""
        if state == "57014":
            return "timeout"
        if state in _PG_TRANSIENT or state.startswith("08"):
            return "transient"
        # No SQLSTATE on an OperationalError: the connection itself broke.
        if not state and isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError):
            return "transient"
        return "error"
    args = getattr(orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    if code in _MYSQL_TIMEOUT:
        return "timeout"
    if code in _MYSQL_TRANSIENT or isinstance(orig, pymysql.err.InterfaceError):
        return "transient"
    return "error"


def _driver_message(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return f"{args[1]} ({args[0]})"  # PyMySQL: (code, message)
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return "; ".join(lines[:2]) or type(orig).__name__


def _sum_text(value: Any) -> str:
    if value is None:
        return "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _exact(value: Any) -> Decimal:
    """A stored SQLite value as SUM() counts it, exactly (SUM of REALs rounds)."""
    if isinstance(value, bool | int):
        return Decimal(int(value))
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return Decimal(0)  # SQLite sums non-numeric text as 0


# SQLite sums (``_sqlite_sums``): a REAL is summed in SQL as the integer N = round(v * 10**s)
# when v is exactly the double nearest to N / 10**s (IEEE division is correctly rounded, so
# comparing v with N / 10.0**s decides it) and |v| * 10**s < 2**50 (then no other decimal
# with at most s places rounds to v, so Decimal(repr(v)) == N / 10**s: what ``_exact`` adds).
_SUM_BOUND = 2**50
_DEFAULT_PLACES = 6  # float and unscaled decimal columns: values with more places go by Python


def _places(col: ColumnInfo) -> int:
    if col.kind == "int":
        return 0
    if col.kind == "decimal" and col.scale is not None and 0 <= col.scale <= 9:
        return col.scale
    return _DEFAULT_PLACES


def _scaled(q: str, s: int) -> str:
    return f"CAST(ROUND({q} * {10**s}) AS INTEGER)"


def _places_expr(n: str, s: int) -> str:
    """Places of repr(v) for an exact REAL v = n / 10**s: s less n's trailing zeros, at
    least one ('12.0'): 1 + the number of k < s with n % 10**k != 0."""
    return " + ".join(["1", *(f"({n} % {10**k} != 0)" for k in range(1, s))])


def _sqlite_fast_columns(q: str, s: int, kind: str, declared: bool) -> list[str]:
    """One column's part of the one-scan query.

    An integer column: its SUM (an integer result is exact). Others: the sum of
    n = round(v * 10**s), the rows where v is exactly n / 10**s, the non-NULL rows, the
    largest magnitude and, without a declared scale, the most places of a REAL.
    """
    if kind == "int":
        return [f"SUM({q})"]
    n = _scaled(q, s)
    exprs = [f"SUM({n})", f"SUM({q} = {n} / {10**s}.0)", f"COUNT({q})", f"MAX(ABS({q}))"]
    if not declared:
        exprs.append(f"MAX((typeof({q}) = 'real') * ({_places_expr(n, s)}))")
    return exprs


def _sqlite_exact_where(q: str, s: int) -> str:
    n = _scaled(q, s)
    return (
        f"typeof({q}) = 'integer' OR (typeof({q}) = 'real' AND ABS({q}) < "
        f"{_SUM_BOUND // 10**s} AND {q} = {n} / {10**s}.0)"
    )


def _sqlite_sums(conn: Connection, t: Reflected, names: Sequence[str]) -> tuple[int, list[Any]]:
    """Count and exact sums on SQLite, equal to adding every stored value with ``_exact``.

    One scan in SQL sums each column as scaled integers and proves that exact (every value
    an integer or an exact REAL, none too large); a column it cannot prove is summed again
    with its exact rows in SQL and only the others (text, blobs, REALs with more places than
    the column declares, huge values) read and added in Python.
    """
    prep = conn.dialect.identifier_preparer
    table = prep.format_table(t.table)
    cols = [t.info.columns[c] for c in names]
    quoted = [prep.quote(c) for c in names]
    places = [_places(c) for c in cols]
    # A declared scale: the sum has that scale, as PostgreSQL and MariaDB give it.
    declared = [c.kind == "decimal" and p == c.scale for c, p in zip(cols, places, strict=True)]
    parts = [
        _sqlite_fast_columns(q, s, c.kind, d)
        for q, s, c, d in zip(quoted, places, cols, declared, strict=True)
    ]
    try:
        row = conn.exec_driver_sql(
            f"SELECT {', '.join(['COUNT(*)', *(e for p in parts for e in p)])} FROM {table}"
        ).one()
    except DBAPIError as exc:
        if "overflow" not in str(exc.orig):
            raise
        conn.rollback()
        row = None
    values: list[Any] = []
    at = 1
    for q, s, c, d, p in zip(quoted, places, cols, declared, parts, strict=True):
        got, at = (row[at : at + len(p)] if row is not None else None), at + len(p)
        if got is not None and c.kind == "int":
            if got[0] is None or type(got[0]) is int:
                values.append(got[0])
                continue
        elif got is not None:
            scaled, exact, present, largest = got[:4]
            bounded = isinstance(largest, int | float) and largest < _SUM_BOUND // 10**s
            if exact == present and (present == 0 or bounded):
                # Every term has at most `most` places (s when declared): quantize is exact.
                most = s if d else got[4]
                total = Decimal(0)
                if present:
                    total += Decimal(int(scaled)).scaleb(-s).quantize(Decimal(1).scaleb(-most))
                values.append(total)
                continue
        values.append(_sqlite_slow_sum(conn, table, q, s))
    if row is None:
        return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()), values
    return int(row[0]), values


def _sqlite_slow_sum(conn: Connection, table: str, q: str, s: int) -> Decimal:
    """Exact rows summed in SQL as above, the others in Python."""
    exact = _sqlite_exact_where(q, s)
    n = _scaled(q, s)
    sql = (
        f"SELECT SUM(CASE WHEN typeof({q}) = 'integer' THEN {q} END), "
        f"SUM(CASE WHEN typeof({q}) = 'real' THEN {n} END), "
        f"MAX(CASE WHEN typeof({q}) = 'real' THEN {_places_expr(n, s)} END) "
        f"FROM {table} WHERE {exact}"
    )
    try:
        ints, scaled, most = conn.exec_driver_sql(sql).one()
    except DBAPIError as exc:
        if "overflow" not in str(exc.orig):
            raise
        conn.rollback()
        return _python_sum(conn, table, q, None)
    total = Decimal(0)
    if ints is not None:
        total += Decimal(int(ints))
    if scaled is not None:
        total += Decimal(int(scaled)).scaleb(-s).quantize(Decimal(1).scaleb(-int(most)))
    return total + _python_sum(conn, table, q, f"{q} IS NOT NULL AND NOT ({exact})")


def _python_sum(conn: Connection, table: str, q: str, where: str | None) -> Decimal:
    cond = where or f"{q} IS NOT NULL"
    stored = conn.exec_driver_sql(f"SELECT {q} FROM {table} WHERE {cond}")
    return sum((_exact(v) for (v,) in stored), Decimal(0))


_PLAIN = frozenset({int, str, type(None)})  # driver values that are already images
_NO_KEY: Mapping[str, Any] = {}  # an insert has no WHERE


class _Refused(Exception):
    """A write that cannot be bound or executed as asked (rolled back as a SegmentError)."""

    def __init__(self, message: str, op_no: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.op_no = op_no


@dataclass(frozen=True)
class _Statement:
    sql: str
    binds: tuple[str, ...] | None  # named paramstyle: bind names; None: positional
    kind: str
    order: tuple[int, ...] | None = None  # positional: value indexes in bind order


@dataclass
class _Batch:
    stmt: _Statement
    params: list[Any] = field(default_factory=list)
    op_nos: list[int] = field(default_factory=list)


def _sqlite_hooks(engine: Engine, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A segment takes the write lock up front, so its re-read is already locked.
        write = conn.get_execution_options().get("backout_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _lenient(type_name: str) -> type[Loader]:
    """psycopg's loader for ``type_name``, except that a value Python cannot hold ('infinity',
    a BC date, a year past 9999, the time 24:00:00) comes back as PostgreSQL's text for it
    instead of failing the whole read: such a row is read, compared and written back as that
    text."""
    found = psycopg.adapters.get_loader(psycopg.adapters.types[type_name].oid, Format.TEXT)
    if found is None:  # pragma: no cover - psycopg always has these
        raise RuntimeError(f"psycopg has no loader for {type_name}")
    base = found  # psycopg.abc.Loader: the C loader is not a psycopg.adapt.Loader subclass

    class Lenient(Loader):
        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._inner = base(oid, context)  # the C loader, which cannot be subclassed

        def load(self, data: Any) -> Any:
            try:
                return self._inner.load(data)
            except psycopg.DataError:
                return bytes(data).decode()

    return Lenient


_PG_LENIENT = {
    name: _lenient(name) for name in ("timestamp", "timestamptz", "date", "time", "timetz")
}


def _pg_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Timestamps with time zone come back in UTC whoever's server this is.
        with dbapi_conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
        dbapi_conn.commit()
        for name, loader in _PG_LENIENT.items():
            dbapi_conn.adapters.register_loader(name, loader)


def _sqlite_file_exists(url: str) -> None:
    """A target is never created: connecting to a mistyped SQLite path would leave an empty
    file behind and blame the table."""
    if not url.startswith("sqlite"):
        return
    path = make_url(url).database
    if path and path != ":memory:" and not path.startswith("file:") and not Path(path).is_file():
        raise TargetUnavailable(
            f"target database file {path} does not exist; check the path (backout never "
            "creates a target database)."
        )


def _make_engine(url: str, timeout_ms: int) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": timeout_ms / 1000, "check_same_thread": False}
        )
        _sqlite_hooks(engine, timeout_ms)
        return engine
    if url.startswith("postgresql"):
        engine = create_engine(url, pool_pre_ping=True)
        _pg_hooks(engine)
        return engine
    # MariaDB TIMESTAMP columns convert through the session time zone: pin it.
    return create_engine(
        url, pool_pre_ping=True, connect_args={"init_command": "SET time_zone = '+00:00'"}
    )


def _dialect(engine: Engine) -> Dialect:
    name = engine.dialect.name
    if name == "sqlite":
        return "sqlite"
    return "postgresql" if name == "postgresql" else "mysql"


class SqlTarget:
    """One target database: reflect tables, read keyed rows, apply segments."""

    def __init__(self, url: str, *, statement_timeout_ms: int = 5000) -> None:
        self.url = sqlalchemy_url(url)
        self.display_url = mask_url(self.url)
        self.statement_timeout_ms = statement_timeout_ms
        _sqlite_file_exists(self.url)
        self.engine = _make_engine(self.url, statement_timeout_ms)
        self.dialect: Dialect = _dialect(self.engine)
        self._tables: dict[str, Reflected] = {}
        self._statements: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> SqlTarget:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqlTarget({self.display_url!r})"

    def close(self) -> None:
        self.engine.dispose()

    # --- reflection -----------------------------------------------------------------

    def _reflected(self, name: str) -> Reflected:
        found = self._tables.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self._tables.get(name)
            if found is None:
                try:
                    with self.engine.connect() as conn:
                        found = reflect(conn, name, self.display_url)
                except SQLAlchemyError as exc:
                    locked = self.dialect == "sqlite" and classify(self.dialect, exc) == "transient"
                    if locked:  # another process holds the file: try again, not "check the URL"
                        raise TargetBusy(
                            f"{self.display_url} is busy ({_driver_message(exc)}); another "
                            "process holds it: try again once it is done."
                        ) from exc
                    raise TargetUnavailable(
                        f"cannot read the schema of {self.display_url}: "
                        f"{_driver_message(exc)}; check the URL and that the database is up."
                    ) from None
                if self.dialect == "postgresql" and any(
                    c.kind == "other" for c in found.info.columns.values()
                ):
                    respell = functools.partial(self.respell, name)
                    found = replace(found, info=replace(found.info, respell=respell))
                self._tables[name] = found
        return found

    def respell(
        self, table: str, column: str, texts: Sequence[str]
    ) -> list[tuple[Any, str | None]]:
        """Each text as PostgreSQL stores it in ``column`` (its image), or the reason it
        refuses it: one query for them all, and one per text only when some text is refused.
        Nothing is written: the values are cast, as an insert would cast them."""
        t = self._reflected(table)
        try:
            with self._tx(write=False, timeout=False) as (conn, _):
                type_sql = self._type_sql(conn, t, column)
                # Read back as text, as every read of such a column is (``reflect``).
                many = (
                    f"SELECT CAST(CAST(x AS {type_sql}) AS text) FROM unnest(CAST(%s AS text[])) "
                    "WITH ORDINALITY AS u(x, n) ORDER BY n"
                )
                one = f"SELECT CAST(CAST(CAST(%s AS text) AS {type_sql}) AS text)"
                try:
                    with conn.begin_nested():
                        raws = conn.exec_driver_sql(many, (list(texts),)).scalars().all()
                    return [(raw, None) for raw in raws]
                except DBAPIError:
                    pass  # some text is refused: find which, one by one
                out: list[tuple[Any, str | None]] = []
                for text_ in texts:
                    try:
                        with conn.begin_nested():
                            raw = conn.exec_driver_sql(one, (text_,)).scalar()
                        out.append((raw, None))
                    except DBAPIError as exc:
                        diag = getattr(exc.orig, "diag", None)
                        reason = getattr(diag, "message_primary", None) or _driver_message(exc)
                        out.append((None, str(reason)))
                return out
        except SQLAlchemyError as exc:
            raise self._read_error(exc, f"checking values for '{table}'") from exc

    def _type_sql(self, conn: Connection, t: Reflected, column: str) -> str:
        """The column's type as PostgreSQL spells it (``format_type``: quoted, with its
        modifiers), to cast to; read from the catalogue (once), never from input."""
        ck = ("type", t.info.name, column)
        found = self._statements.get(ck)
        if found is None:
            name = self.engine.dialect.identifier_preparer.format_table(t.table)
            found = conn.exec_driver_sql(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = CAST(%s AS regclass) AND attname = %s AND NOT attisdropped",
                (name, column),
            ).scalar_one()
            self._statements[ck] = found
        return str(found)

    def table(self, name: str) -> TableInfo:
        """The reflected table (cached); ``BadInput`` if it does not exist."""
        return self._reflected(name).info

    def unique_keys(self, name: str) -> tuple[tuple[str, ...], ...]:
        """Primary key, unique constraints and unique indexes of a table."""
        return self._reflected(name).unique_keys

    def forget(self, name: str | None = None) -> None:
        """Drop cached reflection (after DDL)."""
        with self._lock:
            if name is None:
                self._tables.clear()
                self._statements.clear()
            else:
                self._tables.pop(name, None)
                for k in [k for k in self._statements if k[1] == name]:
                    del self._statements[k]

    def _key_columns(self, t: Reflected, key_columns: Sequence[str]) -> tuple[str, ...]:
        keys = tuple(key_columns)
        if not keys:
            raise BadInput(f"table '{t.info.name}': no key columns given; name the key.")
        for k in keys:
            if k not in t.info.columns:
                raise BadInput(
                    f"key column '{k}' does not exist in table '{t.info.name}' of "
                    f"{self.display_url}; check the key."
                )
        if len(set(keys)) != len(keys):
            raise BadInput(f"table '{t.info.name}': key columns {list(keys)} repeat a column.")
        return keys

    # --- transactions ---------------------------------------------------------------

    @contextmanager
    def _tx(self, *, write: bool, timeout: bool) -> Iterator[tuple[Connection, RootTransaction]]:
        """A transaction that is rolled back unless the caller commits it."""
        with self.engine.connect() as conn:
            if write:
                conn.execution_options(backout_write=True)
            tx = conn.begin()
            reset = False
            try:
                if timeout:
                    reset = self._set_timeout(conn)
                yield conn, tx
            finally:
                try:
                    if tx.is_active:
                        tx.rollback()
                    if reset:
                        conn.exec_driver_sql("SET SESSION max_statement_time = DEFAULT")
                except SQLAlchemyError:
                    conn.invalidate()  # a broken connection never goes back to the pool

    def _set_timeout(self, conn: Connection) -> bool:
        ms = self.statement_timeout_ms
        if self.dialect == "postgresql":
            conn.exec_driver_sql(
                "SELECT set_config('statement_timeout', %(ms)s, true)", {"ms": str(ms)}
            )
        elif self.dialect == "mysql":
            conn.exec_driver_sql("SET SESSION max_statement_time = %(s)s", {"s": ms / 1000})
            return True
        return False

    # --- reading --------------------------------------------------------------------

    def _image(self, t: Reflected, row: Sequence[Any]) -> Row:
        image = dict(zip(t.names, row, strict=True))
        for name, raw in image.items():
            if type(raw) not in _PLAIN:
                image[name] = from_db(None, raw)
        for name in t.float32:
            value = image[name]
            if isinstance(value, float):
                image[name] = float32_image(value)
        return image

    def _select(self, t: Reflected, keys: tuple[str, ...], lock: bool, n: int) -> _Statement:
        """SELECT the rows of ``n`` keys, compiled once per size (sizes come in few buckets)."""
        ck = ("select", t.info.name, keys, lock, n)
        found: _Statement | None = self._statements.get(ck)
        if found is not None:
            return found
        cols = [t.table.c[k] for k in keys]
        names = [f"k{i}_{j}" for i in range(n) for j in range(len(keys))]
        marks: Iterator[Any] = iter([bindparam(b) for b in names])
        if len(cols) == 1:
            where = cols[0].in_([next(marks) for _ in range(n)])
        else:
            where = tuple_(*cols).in_([tuple_(*(next(marks) for _ in cols)) for _ in range(n)])
        stmt = select(*t.reads).where(where)
        if lock and self.dialect != "sqlite":
            stmt = stmt.with_for_update()
        compiled = stmt.compile(dialect=self.engine.dialect)
        if compiled.positional and list(compiled.positiontup or ()) != names:
            raise AssertionError(f"unexpected bind order in {compiled.string!r}")
        found = _Statement(compiled.string, None if compiled.positional else tuple(names), "select")
        self._statements[ck] = found
        return found

    def _fetch(
        self,
        conn: Connection,
        t: Reflected,
        keys: tuple[str, ...],
        wanted: Sequence[Mapping[str, Any]],
        *,
        lock: bool,
        kts: Sequence[KeyTuple] | None = None,
    ) -> dict[KeyTuple, Row]:
        """The rows of ``wanted`` keys (``kts``: their key tuples, if already known)."""
        info = t.info
        key_infos = [info.columns[k] for k in keys]
        as_is = [t.as_is[k] for k in keys]
        dialect = self.dialect
        bound: dict[KeyTuple, tuple[Any, ...]] = {}
        for i, key in enumerate(wanted):
            kt = kts[i] if kts is not None else key_tuple(info, keys, key)
            if kt not in bound:
                values = []
                for c, plain in zip(key_infos, as_is, strict=True):
                    v = key.get(c.name)
                    values.append(v if type(v) in plain else to_db(c, v, dialect))
                bound[kt] = tuple(values)
        params = list(bound.values())
        chunk = max(1, (512 if dialect == "sqlite" else 1024) // len(keys))
        found: dict[KeyTuple, Row] = {}
        for start in range(0, len(params), chunk):
            part = params[start : start + chunk]
            # Pad to a power of two (repeating a key is harmless) so few sizes get compiled.
            size = min(chunk, max(8, 1 << (len(part) - 1).bit_length()))
            part += [part[-1]] * (size - len(part))
            stmt = self._select(t, keys, lock, size)
            flat = [v for values in part for v in values]
            args = tuple(flat) if stmt.binds is None else dict(zip(stmt.binds, flat, strict=True))
            for row in conn.exec_driver_sql(stmt.sql, args).all():
                image = self._image(t, row)
                kt = key_tuple(info, keys, image)
                if kt not in bound:
                    continue  # matched only by the database's looser comparison ('1x' = 1)
                if kt in found:
                    raise _Refused(
                        f"table '{info.name}': key {list(keys)} = {list(kt)} matches more than "
                        "one row; use a unique key."
                    )
                found[kt] = image
        return found

    def _read_error(self, exc: SQLAlchemyError, what: str) -> Exception:
        message = f"{self.display_url}: {what} failed: {_driver_message(exc)}"
        if classify(self.dialect, exc) == "transient":
            return TransientError(message)
        return BackoutError(message)

    def read_rows(
        self, table: str, key_columns: Sequence[str], keys: Sequence[Mapping[str, Any]]
    ) -> dict[KeyTuple, Row]:
        """Current full rows of these keys (absent keys are missing), by ``key_tuple``."""
        t = self._reflected(table)
        kc = self._key_columns(t, key_columns)
        if not keys:
            return {}
        try:
            with self._tx(write=False, timeout=False) as (conn, _):
                return self._fetch(conn, t, kc, keys, lock=False)
        except _Refused as exc:
            raise BadInput(exc.message) from None
        except SQLAlchemyError as exc:
            raise self._read_error(exc, f"reading '{table}'") from exc

    def scan(self, table: str, key_columns: Sequence[str], *, batch: int = 10_000) -> Iterator[Row]:
        """Every row, ordered by the key, streamed (server-side cursor where there is one)."""
        t = self._reflected(table)
        kc = self._key_columns(t, key_columns)
        stmt = select(*t.reads).order_by(*(t.table.c[k] for k in kc))
        return self._stream(t, stmt, batch)

    def _stream(self, t: Reflected, stmt: Select[Any], batch: int) -> Iterator[Row]:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(yield_per=batch)
                with conn.begin():
                    for row in conn.execute(stmt):
                        yield self._image(t, row)
        except SQLAlchemyError as exc:
            raise self._read_error(exc, f"scanning '{t.info.name}'") from exc

    def aggregates(self, table: str, numeric: Sequence[str] | None = None) -> Aggregates:
        """Row count and exact sums (decimal text) of numeric columns (default: int, decimal)."""
        t = self._reflected(table)
        cols = t.info.columns
        names = (
            [c for c, i in cols.items() if i.kind in ("int", "decimal")]
            if numeric is None
            else list(numeric)
        )
        for c in names:
            if c not in cols or cols[c].kind not in ("int", "decimal", "float"):
                raise BadInput(f"table '{table}': '{c}' is not a numeric column to sum.")
        if self.dialect == "sqlite":
            try:
                with self._tx(write=False, timeout=False) as (conn, _):
                    count, values = _sqlite_sums(conn, t, names)
            except SQLAlchemyError as exc:
                raise self._read_error(exc, f"aggregating '{table}'") from exc
            return Aggregates(
                count=count, sums={c: _sum_text(v) for c, v in zip(names, values, strict=True)}
            )
        tbl = t.table
        sums = [
            func.sum(cast(tbl.c[c], Numeric))
            if self.dialect == "postgresql" and cols[c].kind == "float"
            else func.sum(tbl.c[c])  # PostgreSQL: float8 -> numeric is exact and order-free
            for c in names
        ]
        try:
            with self._tx(write=False, timeout=False) as (conn, _):
                row = conn.execute(select(func.count(), *sums).select_from(tbl)).one()
                values = list(row[1:])
                count = int(row[0])
        except SQLAlchemyError as exc:
            raise self._read_error(exc, f"aggregating '{table}'") from exc
        return Aggregates(
            count=count, sums={c: _sum_text(v) for c, v in zip(names, values, strict=True)}
        )

    def scalar(self, sql: str) -> Any:
        """First column of the first row of a trusted query, run read-only and rolled back."""
        try:
            with self.engine.connect() as conn:
                return self._scalar(conn, sql)
        except (SQLAlchemyError, psycopg.Error) as exc:
            message = _driver_message(exc)
            if classify(self.dialect, exc) == "transient":
                raise TransientError(f"{self.display_url}: {message}") from exc
            raise BadInput(
                f"invariant query failed on {self.display_url}: {message}; an invariant must "
                "be a single read-only SELECT."
            ) from None

    def _scalar(self, conn: Connection, sql: str) -> Any:
        if self.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
            try:
                return conn.exec_driver_sql(sql).scalar()
            finally:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA query_only = OFF")
                conn.rollback()
        if self.dialect == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")  # first in the transaction
            self._set_timeout(conn)
            try:
                with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
                    # prepare=True: the extended protocol runs exactly one statement.
                    cur.execute(sql, prepare=True)
                    first = cur.fetchone()
                return None if first is None else first[0]
            finally:
                conn.rollback()
        self._set_timeout(conn)
        try:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")  # for the next transaction
            result = conn.exec_driver_sql(sql, execution_options={"no_parameters": True})
            return result.scalar()
        finally:
            conn.rollback()
            conn.exec_driver_sql("SET SESSION max_statement_time = DEFAULT")

    # --- writing --------------------------------------------------------------------

    def _statement(self, t: Reflected, keys: tuple[str, ...], shape: tuple[Any, ...]) -> _Statement:
        ck = ("write", t.info.name, keys, shape)
        found: _Statement | None = self._statements.get(ck)
        if found is not None:
            return found
        kind, names = shape
        for c in names:
            if c not in t.info.columns:
                raise _Refused(f"column '{c}' does not exist in table '{t.info.name}'")
        tbl = t.table
        prefix = "bo_"
        while any(c.startswith(prefix) for c in t.names):
            prefix += "_"  # bind names must not collide with column names
        sets: dict[Any, Any] = {tbl.c[c]: bindparam(f"{prefix}p{i}") for i, c in enumerate(names)}
        where = [tbl.c[k] == bindparam(f"{prefix}k{j}") for j, k in enumerate(keys)]
        if kind == "insert":
            stmt: Any = insert(tbl).values(sets)
            binds = [f"{prefix}p{i}" for i in range(len(names))]
        elif kind == "update":
            stmt = update(tbl).values(sets).where(*where)
            binds = [f"{prefix}p{i}" for i in range(len(names))]
            binds += [f"{prefix}k{j}" for j in range(len(keys))]
        else:
            stmt = delete(tbl).where(*where)
            binds = [f"{prefix}k{j}" for j in range(len(keys))]
        compiled = stmt.compile(dialect=self.engine.dialect)
        sql = compiled.string
        if kind == "insert" and self.dialect == "postgresql" and t.identity_always & set(names):
            # Re-inserting a deleted row (a rollback) must keep its identity value.
            sql = sql.replace(") VALUES (", ") OVERRIDING SYSTEM VALUE VALUES (", 1)
        if compiled.positional:
            # SQLAlchemy renders SET/VALUES in table order: map our order onto it.
            order = tuple(binds.index(b) for b in compiled.positiontup or ())
            identity = order == tuple(range(len(binds)))
            found = _Statement(sql, None, kind, None if identity else order)
        else:
            found = _Statement(sql, tuple(binds), kind)
        self._statements[ck] = found
        return found

    def _plan(
        self,
        t: Reflected,
        keys: tuple[str, ...],
        writes: Sequence[RowWrite],
        kts: Sequence[KeyTuple],
        current: dict[KeyTuple, Row],
    ) -> tuple[list[WriteOutcome], list[_Batch]]:
        """Decide every write against the locked rows; batch consecutive same-shaped ones.

        ``current`` follows the segment's own writes, so a key written twice is checked
        against what the first write left.
        """
        info = t.info
        cols = info.columns
        dialect = self.dialect
        as_is = t.as_is
        key_parts = [(k, cols[k], as_is[k]) for k in keys]
        keyset = set(keys)
        computed = t.computed
        # Rows need tracking through the segment only when a key comes back.
        repeats = len(set(kts)) != len(kts)
        outcomes: list[WriteOutcome] = []
        batches: list[_Batch] = []
        last: tuple[Any, ...] | None = None
        for w, kt in zip(writes, kts, strict=True):
            now = current.get(kt)
            if not _admissible(cols, w, now):
                outcomes.append(WriteOutcome(w.op_no, "conflict", now=now))
                continue
            data = w.write or {}
            kind = w.kind
            where: Mapping[str, Any] = _NO_KEY
            if kind == "update":
                assert now is not None
                where = now  # the key exactly as stored
                if computed or not keyset.isdisjoint(data):
                    names = tuple(
                        c
                        for c in data
                        if c not in computed
                        and not (c in keyset and same(cols.get(c), data[c], now.get(c)))
                    )
                else:
                    names = tuple(data)
                shape: tuple[Any, ...] | None = (kind, names) if names else None
                if not keyset.isdisjoint(names):  # the key itself changes: follow the row
                    moved = {**now, **data}
                    del current[kt]
                    current[key_tuple(info, keys, moved)] = moved
                    repeats = True
                elif repeats:
                    current[kt] = {**now, **data}
            elif kind == "insert":
                names = tuple(c for c in data if c not in computed) if computed else tuple(data)
                shape = (kind, names)
                if repeats:
                    current[kt] = dict(data)
            else:
                assert now is not None
                where = now
                names = ()
                shape = (kind, names)
                if repeats:
                    del current[kt]
            if shape is not None:
                if shape != last:
                    try:
                        batches.append(_Batch(self._statement(t, keys, shape)))
                    except _Refused as exc:
                        raise _Refused(exc.message, w.op_no) from None
                    last = shape
                batch = batches[-1]
                values = []
                for c in names:
                    v = data[c]
                    values.append(v if type(v) in as_is[c] else to_db(cols[c], v, dialect))
                if where is not _NO_KEY:
                    for k, col, plain in key_parts:
                        v = where[k]
                        values.append(v if type(v) in plain else to_db(col, v, dialect))
                stmt = batch.stmt
                if stmt.binds is not None:
                    batch.params.append(dict(zip(stmt.binds, values, strict=True)))
                elif stmt.order is not None:
                    batch.params.append(tuple([values[i] for i in stmt.order]))
                else:
                    batch.params.append(tuple(values))
                batch.op_nos.append(w.op_no)
            outcomes.append(WriteOutcome(w.op_no, "applied"))
        return outcomes, batches

    def _refuse_cascades(
        self,
        conn: Connection,
        t: Reflected,
        writes: Sequence[RowWrite],
        kts: Sequence[KeyTuple],
        current: Mapping[KeyTuple, Row],
    ) -> None:
        """Refuse a delete whose row other rows depend on through an ON DELETE CASCADE (or
        SET NULL, SET DEFAULT) foreign key: the database would write rows that no journal
        holds and no rollback restores. Checked in the segment's transaction, under its locks."""
        cols = t.info.columns
        for cascade in t.cascades:
            wanted: dict[tuple[Any, ...], int] = {}
            for w, kt in zip(writes, kts, strict=True):
                row = current.get(kt) if w.kind == "delete" else None
                if row is None or not all(row.get(c) is not None for c in cascade.referred):
                    continue
                values = tuple(to_db(cols[c], row[c], self.dialect) for c in cascade.referred)
                wanted.setdefault(values, w.op_no)
            if not wanted:
                continue
            child = cascade.child
            refs = [child.c[c] for c in cascade.columns]
            probe = select(*refs).where(tuple_(*refs).in_(list(wanted))).limit(1)
            hit = conn.execute(probe).first()
            if hit is not None:
                op_no = wanted.get(tuple(hit), next(iter(wanted.values())))
                raise _Refused(
                    f"a row to delete has dependent rows in {cascade.describe()}, which the "
                    "delete would write without a journal; delete or update those rows first "
                    "(an earlier step)",
                    op_no,
                )

    def _run(self, conn: Connection, batch: _Batch) -> None:
        params = batch.params
        many = len(params) > 1
        result = conn.exec_driver_sql(batch.stmt.sql, params if many else params[0])
        if (
            batch.stmt.kind != "insert"
            and (not many or self.engine.dialect.supports_sane_multi_rowcount)
            and result.rowcount != len(params)
        ):
            raise _Refused(
                f"{batch.stmt.kind} matched {result.rowcount} rows for {len(params)} keys; "
                "the key columns may not be unique",
                batch.op_nos[0] if not many else None,
            )

    def write_segment(
        self,
        table: str,
        key_columns: Sequence[str],
        writes: Sequence[RowWrite],
        *,
        dry_run: bool = False,
        probes: Sequence[str] = (),
        probed: list[Any] | None = None,
    ) -> list[WriteOutcome]:
        """Apply one segment in one transaction (see module docstring and DESIGN.md).

        A dry run runs ``probes`` (trusted read-only SQL: the step's invariants) inside the
        transaction, after the writes and before rolling them back, and puts each first value
        in ``probed``: what the invariants would see, had the segment been written.

        Raises ``TransientError`` (retry) or ``SegmentError`` (nothing of it was written).
        """
        t = self._reflected(table)
        keys = self._key_columns(t, key_columns)
        if not writes:
            return []
        try:
            with self._tx(write=True, timeout=True) as (conn, tx):
                if dry_run and self.dialect == "postgresql":
                    conn.exec_driver_sql("SET CONSTRAINTS ALL IMMEDIATE")
                kts = [key_tuple(t.info, keys, w.key) for w in writes]
                current = self._fetch(conn, t, keys, [w.key for w in writes], lock=True, kts=kts)
                if t.cascades:
                    self._refuse_cascades(conn, t, writes, kts, current)
                outcomes, batches = self._plan(t, keys, writes, kts, current)
                for batch in batches:
                    self._run(conn, batch)
                if dry_run:
                    if probed is not None:
                        probed[:] = [conn.exec_driver_sql(sql).scalar() for sql in probes]
                    tx.rollback()
                else:
                    tx.commit()
            return outcomes
        except _Refused as exc:
            raise SegmentError(f"{table}: {exc.message}", exc.op_no) from None
        except SQLAlchemyError as exc:
            verdict = classify(self.dialect, exc)
            message = f"{table}: {_driver_message(exc)}"
            if verdict == "transient":
                raise TransientError(f"{self.display_url}: {message}") from exc
            if verdict == "timeout":
                raise SegmentError(
                    f"{table}: a statement ran past the {self.statement_timeout_ms} ms statement "
                    "timeout (a row locked by another session, or a slow statement)"
                ) from exc
            raise SegmentError(message, self._failing_op(t, keys, writes)) from exc

    def _failing_op(
        self, t: Reflected, keys: tuple[str, ...], writes: Sequence[RowWrite]
    ) -> int | None:
        """Replay the failed segment row by row (rolled back) to name the row at fault."""
        try:
            with self._tx(write=True, timeout=True) as (conn, _):
                if self.dialect == "postgresql":
                    conn.exec_driver_sql("SET CONSTRAINTS ALL IMMEDIATE")
                kts = [key_tuple(t.info, keys, w.key) for w in writes]
                current = self._fetch(conn, t, keys, [w.key for w in writes], lock=True, kts=kts)
                _, batches = self._plan(t, keys, writes, kts, current)
                for batch in batches:
                    for params, op_no in zip(batch.params, batch.op_nos, strict=True):
                        try:
                            conn.exec_driver_sql(batch.stmt.sql, params)
                        except DBAPIError:
                            return op_no
        except (SQLAlchemyError, _Refused):
            return None
        return None


def _admissible(cols: Mapping[str, ColumnInfo], w: RowWrite, now: Row | None) -> bool:
    """Does the row found match what the write expects (NULL-safe, by meaning)?"""
    expect = w.expect
    if expect is None:
        if now is not None:
            return False
    else:
        if now is None:
            return False
        names = w.compare if w.compare is not None else expect.keys()
        for c in names:
            a, b = now.get(c), expect.get(c)
            # Identical values of one type are `same`; only differing ones need normalizing.
            if type(a) is type(b) and a == b:
                continue
            if not same(cols.get(c), a, b):
                return False
    return now is None if w.kind == "insert" else now is not None
