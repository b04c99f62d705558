"""Journaled apply vs a bare executemany of the same updates, measured in the same run.

100,000 single-row updates on a 1,000,000-row SQLite table (``--rows`` / ``--updates`` scale
it). Prints both rates and the ratio. Aim: journaled apply within 3x of the bare write.

``--workers N`` measures parallel apply instead, on PostgreSQL (``--pg-url``, an admin URL;
two throwaway databases are created and dropped): the same updates applied with one worker
and with N, in the same run, and the ratio of their rates. The journal is a SQLite file.

    .venv/bin/python bench/bench_apply.py --workers 4 --rows 200000 --updates 50000
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.changes import ChangeSet, load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.journal import Journal


def make_table(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "amount NUMERIC(10,2) NOT NULL, note TEXT)"
    )
    conn.executemany(
        "INSERT INTO items VALUES (?, ?, ?, ?)",
        ((i, f"item {i}", f"{i % 1000}.50", None) for i in range(1, rows + 1)),
    )
    conn.commit()
    conn.close()


def write_updates_csv(path: Path, ids: list[int]) -> Path:
    """The change set both benchmarks apply: one ``id,amount`` row per updated id."""
    with path.open("w") as fh:
        fh.write("id,amount\n")
        for i in ids:
            fh.write(f"{i},{i % 777}.25\n")
    return path


def updates_changeset(csv: Path, target_url: str) -> ChangeSet:
    """The updates CSV as the change set both benchmarks apply."""
    return load_changeset(
        csv, table="items", key=["id"], op="update", name="bench", version=1, target=target_url
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--segment-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1, help="PostgreSQL: 1 vs N workers")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "BACKOUT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    rng = random.Random(1)
    ids = rng.sample(range(1, args.rows + 1), args.updates)
    if args.workers > 1:
        bench_workers(args, ids)
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        csv = write_updates_csv(base / "updates.csv", ids)
        bare_db, journaled_db = base / "bare.db", base / "journaled.db"
        segmented_db = base / "segmented.db"
        make_table(bare_db, args.rows)
        make_table(journaled_db, args.rows)
        make_table(segmented_db, args.rows)

        conn = sqlite3.connect(bare_db)
        started = time.perf_counter()
        conn.executemany(
            "UPDATE items SET amount = ? WHERE id = ?", ((f"{i % 777}.25", i) for i in ids)
        )
        conn.commit()
        bare = time.perf_counter() - started
        conn.close()
        # For reference only (the ratio above is against the one-transaction bare write):
        # the same bare executemany committed every segment, as the journaled run commits.
        segmented = bare_segmented(segmented_db, ids, args.segment_size)

        journal = Journal(f"sqlite:///{base / 'journal.db'}", actor="bench")
        cs = updates_changeset(csv, f"sqlite:///{journaled_db}")
        started, cpu = time.perf_counter(), time.process_time()
        report = Engine(journal, Settings()).apply(cs, segment_size=args.segment_size)
        journaled = time.perf_counter() - started
        cpu = time.process_time() - cpu
        assert report.applied == args.updates, report.message
    print(f"bare executemany : {args.updates / bare:>10,.0f} rows/s ({bare:.2f} s)")
    print(
        f"journaled apply  : {args.updates / journaled:>10,.0f} rows/s ({journaled:.2f} s, "
        f"segment size {args.segment_size})"
    )
    print(f"ratio journaled/bare: {journaled / bare:.1f}x (aim: within 3x)")
    print(
        f"  reference: bare executemany committing every {args.segment_size} rows "
        f"{args.updates / segmented:,.0f} rows/s ({segmented:.2f} s, "
        f"{segmented / bare:.1f}x the one-transaction bare); journaled/that "
        f"{journaled / segmented:.1f}x; journaled apply CPU {cpu:.2f} s"
    )


def bench_workers(args: argparse.Namespace, ids: list[int]) -> None:
    """Apply the updates on PostgreSQL with 1 and with ``args.workers`` workers."""
    from sqlalchemy import create_engine, text

    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    base_url = args.pg_url.rsplit("/", 1)[0]
    rates: dict[int, float] = {}
    write_rates: dict[int, float] = {}  # the segment phase only (after validation+baseline)
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_updates_csv(Path(tmp) / "updates.csv", ids)
        for workers in (1, args.workers):
            name = f"backout_bench_w{workers}_{os.getpid()}"
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = f"{base_url}/{name}"
            try:
                make_pg_table(url, args.rows)
                journal = Journal(f"sqlite:///{Path(tmp) / f'journal-{workers}.db'}", actor="b")
                cs = updates_changeset(csv, url)
                started = time.perf_counter()
                report = Engine(journal, Settings()).apply(
                    cs, segment_size=args.segment_size, workers=workers
                )
                elapsed = time.perf_counter() - started
                assert report.applied == args.updates, report.message
                journal.close()
                rates[workers] = args.updates / elapsed
                write_rates[workers] = args.updates / report.elapsed_s
                print(
                    f"PostgreSQL, {workers} worker(s): {rates[workers]:>8,.0f} rows/s "
                    f"({elapsed:.2f} s, segment size {args.segment_size}); segment phase "
                    f"{write_rates[workers]:,.0f} rows/s ({report.elapsed_s:.2f} s)"
                )
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    n = args.workers
    print(
        f"ratio workers={n} / workers=1: {rates[n] / rates[1]:.2f}x whole apply, "
        f"{write_rates[n] / write_rates[1]:.2f}x segment phase"
    )


def make_pg_table(url: str, rows: int) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "amount NUMERIC(10,2) NOT NULL, note TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO items SELECT i, 'item ' || i, mod(i, 1000) + 0.50, NULL "
            f"FROM generate_series(1, {int(rows)}) AS i"
        )
    engine.dispose()


def bare_segmented(path: Path, ids: list[int], size: int) -> float:
    """The bare updates, one transaction (and so one durable commit) per ``size`` rows."""
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    for start in range(0, len(ids), size):
        conn.executemany(
            "UPDATE items SET amount = ? WHERE id = ?",
            ((f"{i % 777}.25", i) for i in ids[start : start + size]),
        )
        conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


if __name__ == "__main__":
    main()
