"""Shared-journal benchmark: append and verify on PostgreSQL against SQLite in the same run, and
4 concurrent appenders on PostgreSQL.

Standalone (no pytest):

    .venv/bin/python bench/bench_journal_pg.py                      # 100,000 events
    .venv/bin/python bench/bench_journal_pg.py --events 20000 --batch 100

Events are the realistic mix of ``bench_journal.py`` (runs, segments of operations, outcomes,
checkpoints, progress), appended through ``Journal.write()`` so every event is canonicalised,
hash-chained and projected as in production. The concurrent appenders are separate processes,
each with its own runs, contending for the chain head (``SELECT ... FOR UPDATE``); their rate is
all events over the wall time from the first start to the last commit, measured twice: with
``--batch`` events per transaction and with ``--small-batch`` (about one engine segment).

PostgreSQL: ``BACKOUT_BENCH_PG`` (an admin URL; default the test server), a throwaway database
per measurement. Aim (issue 9): at least 5,000 events/s appended with 4 writers.

``--appliers N`` measures the engine on a shared journal instead: one ``Engine.apply`` of
``--updates`` updates (``bench_apply``'s change set, segment size 100) to its own SQLite table
of ``--rows`` rows, journaled on PostgreSQL; then N such applies at once into one journal, as
N on-call engineers' batches would. It prints both rates (rows/s over the wall time from the
common start to the last finish) and their ratio.

    .venv/bin/python bench/bench_journal_pg.py --appliers 4 --rows 100000 --updates 10000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from bench.bench_journal import Timing, bench_append, generate
from console.journal import Journal
from console.journal.verify import verify

PG_ADMIN = os.environ.get(
    "BACKOUT_BENCH_PG",
    os.environ.get("BACKOUT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)
CONCURRENT_TARGET = 5_000


def make_db() -> str:
    name = f"backout_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_db(url: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def _writer(url: str, writer: int, total: int, batch: int, start: Any, done: Any) -> None:
    journal = Journal(url, actor="bench")
    # Each writer has its own runs (ids prefixed), as separate consoles would.
    events = [
        (kind, payload, None if run_id is None else f"w{writer}{run_id}", corr)
        for kind, payload, run_id, corr in generate(total)
    ]
    start.wait()
    for i in range(0, len(events), batch):
        with journal.write() as w:
            for kind, payload, run_id, corr in events[i : i + batch]:
                w.append(kind, payload, run_id=run_id, corr=corr)
    done.put(time.perf_counter())
    journal.close()


def bench_concurrent(writers: int, total: int, batch: int) -> tuple[float, bool]:
    """Events/s over all writers, and whether the chain verifies afterwards."""
    url = make_db()
    try:
        Journal(url, actor="bench").close()  # schema first, outside the timing
        ctx = mp.get_context("spawn")
        start, done = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_writer, args=(url, w, total // writers, batch, start, done))
            for w in range(writers)
        ]
        for p in procs:
            p.start()
        time.sleep(3)  # let every writer import and build its events before the start
        t0 = time.perf_counter()
        start.set()
        ends = [done.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        rate = (total // writers) * writers / (max(ends) - t0)
        journal = Journal(url, actor="bench")
        ok = verify(journal, remember=False).ok
        journal.close()
        return rate, ok
    finally:
        drop_db(url)


def _applier(
    url: str, folder: Path, n: int, rows: int, updates: int, start: Any, done: Any
) -> None:
    from bench.bench_apply import make_table, write_updates_csv
    from console.changes import load_changeset
    from console.config import Settings
    from console.engine.apply import Engine

    ids = random.Random(n).sample(range(1, rows + 1), updates)
    make_table(folder / f"t{n}.db", rows)
    cs = load_changeset(
        write_updates_csv(folder / f"u{n}.csv", ids),
        table="items",
        key=["id"],
        op="update",
        name=f"bench-{n}",  # one change set per engineer: same name, other rows is refused
        version=1,
        target=f"sqlite:///{folder / f't{n}.db'}",
    )
    journal = Journal(url, actor=f"oncall-{n}")
    start.wait()
    report = Engine(journal, Settings()).apply(cs, segment_size=100)
    done.put((time.perf_counter(), report.applied))
    journal.close()


def bench_appliers(appliers: int, rows: int, updates: int) -> tuple[float, bool]:
    """Rows/s over ``appliers`` concurrent applies into one journal; whether all applied and the
    journal verifies."""
    url = make_db()
    try:
        Journal(url, actor="bench").close()
        ctx = mp.get_context("spawn")
        start, done = ctx.Event(), ctx.Queue()
        with tempfile.TemporaryDirectory() as tmp:
            procs = [
                ctx.Process(target=_applier, args=(url, Path(tmp), n, rows, updates, start, done))
                for n in range(appliers)
            ]
            for p in procs:
                p.start()
            time.sleep(3 + rows / 100_000)  # tables built and change sets read before the start
            t0 = time.perf_counter()
            start.set()
            ends = [done.get(timeout=1800) for _ in procs]
            for p in procs:
                p.join()
        journal = Journal(url, actor="bench")
        ok = verify(journal, remember=False).ok and all(n == updates for _, n in ends)
        journal.close()
        return appliers * updates / (max(t for t, _ in ends) - t0), ok
    finally:
        drop_db(url)


def main_appliers(appliers: int, rows: int, updates: int) -> int:
    print(
        f"shared-journal applies: {appliers} x {updates:,} updates on {rows:,}-row SQLite "
        f"tables, one PostgreSQL journal; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs"
    )
    one, one_ok = bench_appliers(1, rows, updates)
    many, many_ok = bench_appliers(appliers, rows, updates)
    for label, rate, ok in ((1, one, one_ok), (appliers, many, many_ok)):
        print(f"  {label} applier(s): {rate:>10,.0f} rows/s  {'verified' if ok else 'FAILED'}")
    print(f"  ratio {appliers} appliers / 1: {many / one:.2f}")
    print(f"  load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if one_ok and many_ok else 1


def bench_one(url: str, total: int, batch: int) -> tuple[float, float, float, bool]:
    """Append, verify (chain + projections) and chain-only verify rates, and the verdict."""
    journal, t_append = bench_append(url, total, batch)
    t_verify, t_chain = Timing(), Timing()
    with t_verify:
        ok = verify(journal, remember=False).ok
    with t_chain:
        ok = verify(journal, remember=False, projections=False).ok and ok
    journal.close()
    return total / t_append.wall, total / t_verify.wall, total / t_chain.wall, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per measurement")
    parser.add_argument("--batch", type=int, default=1_000, help="events per write transaction")
    parser.add_argument("--small-batch", type=int, default=20, help="a segment-sized batch")
    parser.add_argument("--writers", type=int, default=4, help="concurrent appenders")
    parser.add_argument("--appliers", type=int, default=0, help="concurrent applies instead")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per applier's table")
    parser.add_argument("--updates", type=int, default=10_000, help="updates per applier")
    args = parser.parse_args(argv)
    if args.appliers:
        return main_appliers(args.appliers, args.rows, args.updates)
    total = args.events
    print(
        f"shared-journal benchmark: {total:,} events, {args.batch:,} per transaction; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        s_append, s_verify, s_chain, s_ok = bench_one(
            f"sqlite:///{Path(tmp) / 'j.db'}", total, args.batch
        )
    url = make_db()
    try:
        p_append, p_verify, p_chain, p_ok = bench_one(url, total, args.batch)
    finally:
        drop_db(url)
    c_rate, c_ok = bench_concurrent(args.writers, total, args.batch)
    c_small, c_small_ok = bench_concurrent(args.writers, total, args.small_batch)
    rows = [
        ("append, SQLite, 1 writer", s_append, s_ok),
        ("append, PostgreSQL, 1 writer", p_append, p_ok),
        (f"append, PostgreSQL, {args.writers} writers", c_rate, c_ok),
        (
            f"append, PostgreSQL, {args.writers} writers, {args.small_batch}/tx",
            c_small,
            c_small_ok,
        ),
        ("verify, SQLite", s_verify, s_ok),
        ("verify, PostgreSQL", p_verify, p_ok),
        ("verify chain only, SQLite", s_chain, s_ok),
        ("verify chain only, PostgreSQL", p_chain, p_ok),
    ]
    for label, rate, ok in rows:
        print(f"  {label:<44} {rate:>12,.0f} events/s  {'verified' if ok else 'VERIFY FAILED'}")
    print(f"  ratio append PostgreSQL/SQLite (1 writer):   {p_append / s_append:.2f}")
    print(f"  ratio verify PostgreSQL/SQLite:              {p_verify / s_verify:.2f}")
    print(f"  ratio chain-only verify PostgreSQL/SQLite:   {p_chain / s_chain:.2f}")
    print(f"  ratio {args.writers} writers / 1 writer on PostgreSQL:  {c_rate / p_append:.2f}")
    met = min(c_rate, c_small) >= CONCURRENT_TARGET
    print(
        f"  target >= {CONCURRENT_TARGET:,} events/s with {args.writers} writers: "
        f"{'met' if met else 'NOT met'}"
    )
    print(f"  load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if all(ok for _, _, ok in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
