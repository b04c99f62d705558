"""Fractional seconds a column does not keep: the database drops them silently (PostgreSQL
rounds, MariaDB truncates), so ``coerce`` must cut an input value the same way, or the
journal's after-image differs from the row the run wrote and its own write reads back as a
conflict (rollback) or as neither image (resume)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from console.targets.sql import SqlTarget
from console.targets.types import ColumnInfo
from console.targets.values import coerce, normalize

from .helpers import dialect_of, run_sql

DDL = {
    "sqlite": "CREATE TABLE fr (id INTEGER PRIMARY KEY, ts0 TIMESTAMP, ts3 TIMESTAMP, tm0 TIME)",
    "postgresql": """CREATE TABLE fr (id INTEGER PRIMARY KEY, ts0 TIMESTAMP(0),
        ts3 TIMESTAMP(3), tm0 TIME(0), tz2 TIMESTAMPTZ(2), ts6 TIMESTAMP)""",
    "mysql": """CREATE TABLE fr (id INTEGER PRIMARY KEY, ts0 DATETIME, ts3 DATETIME(3),
        tm0 TIME, ts6 DATETIME(6))""",
}


def _moments(rng: random.Random, n: int) -> list[dt.datetime]:
    """Moments either side of 2000-01-01 (PostgreSQL's epoch: its ties round away from it),
    with exact ties, carries into the next second and day, and plain values."""
    fractions = [0, 500_000, 499_999, 999_999, 999_500, 123_456, 5_000, 1_500, 250_000]
    out = []
    for _ in range(n):
        base = dt.datetime(1999, 12, 31, 23, 59, 59) + dt.timedelta(
            seconds=rng.choice([0, -1, 1, 86_400 * rng.randint(-4000, 4000)])
        )
        micro = rng.choice(fractions) if rng.random() < 0.6 else rng.randrange(1_000_000)
        out.append(base.replace(microsecond=micro))
    return out


def test_reflected_fractions(target: SqlTarget, target_url: str) -> None:
    d = dialect_of(target_url)
    run_sql(target_url, [DDL[d]])
    cols = target.table("fr").columns
    if d == "sqlite":  # text: SQLite keeps whatever is written
        assert all(c.fraction is None for c in cols.values())
        return
    assert (cols["ts0"].fraction, cols["ts3"].fraction, cols["tm0"].fraction) == (0, 3, 0)
    assert cols["ts6"].fraction is None
    assert cols["ts0"].fraction_rounds is (d == "postgresql")  # MariaDB truncates


def test_coerce_cuts_as_the_database_stores(target: SqlTarget, target_url: str) -> None:
    """Differential: the raw value written by the database's own rules, read back, equals the
    value ``coerce`` journals, for every column and 300 seeded moments."""
    d = dialect_of(target_url)
    run_sql(target_url, [DDL[d]])
    cols = target.table("fr").columns
    moments = _moments(random.Random(20261128), 300)
    timed = [c for c in cols if c != "id"]
    placeholders = ", ".join(["?" if d == "sqlite" else "%s"] * (1 + len(timed)))
    insert = f"INSERT INTO fr (id, {', '.join(timed)}) VALUES ({placeholders})"

    def raw(column: str, m: dt.datetime) -> object:
        if column == "tm0":
            return m.time().isoformat() if d == "sqlite" else m.time()
        if column == "tz2":
            return m.replace(tzinfo=dt.UTC)
        return m.isoformat(sep=" ") if d == "sqlite" else m

    run_sql(
        target_url,
        [insert] * len(moments),
        [(i, *(raw(c, m) for c in timed)) for i, m in enumerate(moments)],
    )
    stored = target.read_rows("fr", ["id"], [{"id": i} for i in range(len(moments))])
    mismatches, midnight = [], []
    for i, m in enumerate(moments):
        for c in timed:
            col = cols[c]
            value = raw(c, m)
            given = value.isoformat() if isinstance(value, dt.datetime | dt.time) else value
            try:
                journaled = coerce(col, given)
            except ValueError:  # a time of day PostgreSQL rounds up to 24:00:00: refused
                midnight.append(stored[(i,)][c])
                continue
            if normalize(col, journaled) != normalize(col, stored[(i,)][c]):
                mismatches.append((c, given, journaled, stored[(i,)][c]))
    assert not mismatches, mismatches[:5]
    # read back as PostgreSQL's text (a Python time cannot hold it), not a failed read
    assert set(midnight) == ({"24:00:00"} if d == "postgresql" else set())


def _col(fraction: int, rounds: bool, kind: str = "datetime") -> ColumnInfo:
    return ColumnInfo(
        "t", kind, True, type_name=f"T({fraction})", fraction=fraction, fraction_rounds=rounds
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rounds", "value", "expected"),
    [
        (True, "2026-02-02T10:00:00.5", "2026-02-02T10:00:01"),  # a tie after 2000: up
        (True, "1999-12-31T23:59:58.5", "1999-12-31T23:59:58"),  # a tie before 2000: down
        (True, "2026-12-31T23:59:59.9999", "2027-01-01T00:00:00"),  # carries into the year
        (True, "2026-02-02T10:00:00.7+02:00", "2026-02-02T10:00:01+02:00"),
        (False, "2026-02-02T10:00:00.999999", "2026-02-02T10:00:00"),
        (False, "2026-02-02T10:00:00", "2026-02-02T10:00:00"),
    ],
)
def test_whole_seconds(rounds: bool, value: str, expected: str) -> None:
    assert coerce(_col(0, rounds), value) == expected


def test_time_of_day_never_rounds_to_midnight_silently() -> None:
    col = _col(0, True, "time")
    assert coerce(col, "10:59:59.5") == "11:00:00"
    assert coerce(col, "23:59:59.4") == "23:59:59"
    with pytest.raises(ValueError, match=r"rounds up to 24:00:00 in T\(0\); give 23:59:59"):
        coerce(col, "23:59:59.5")
    assert coerce(_col(0, False, "time"), "23:59:59.999") == "23:59:59"  # truncated: no carry
    assert coerce(_col(2, True, "time"), "08:00:00.125") == "08:00:00.130000"


def test_sqlite_dates_are_the_text_given(tmp_path: Path) -> None:
    """SQLite has no date types: a date, timestamp or time is checked, then kept as given
    (a '2026-03-01T10:00' among '2026-03-01 10:00' rows breaks every text comparison)."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    (tmp_path / "t.db").touch()
    run_sql(url, ["CREATE TABLE d (id INTEGER PRIMARY KEY, day DATE, at TIMESTAMP, tm TIME)"])
    target = SqlTarget(url)
    cols = target.table("d").columns
    target.close()
    assert all(cols[c].verbatim for c in ("day", "at", "tm")) and not cols["id"].verbatim
    for given in ("2026-03-01 10:00:00", "2026-03-01T10:00:00.789Z", " 2026-03-01 10:00 "):
        assert coerce(cols["at"], given) == given.strip()
    assert coerce(cols["day"], "2026-03-01") == "2026-03-01"
    assert coerce(cols["tm"], "10:30") == "10:30"
    for col, bad in ((cols["at"], "yesterday"), (cols["day"], "2026-02-30"), (cols["tm"], "25:00")):
        with pytest.raises(ValueError):
            coerce(col, bad)
    # compared by meaning all the same
    assert normalize(cols["at"], "2026-03-01 10:00:00") == normalize(cols["at"], "2026-03-01T10:00")
