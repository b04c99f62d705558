"""Journal benchmark: append-with-chain and verify on a SQLite journal, against a baseline.

Standalone (no pytest):

    .venv/bin/python bench/bench_journal.py               # 1,000,000 events
    .venv/bin/python bench/bench_journal.py --events 100000

It creates a temporary SQLite journal and appends a realistic mix of events (runs with segments
of operations, outcomes, checkpoints, progress, guards) through ``Journal.write()`` in batched
transactions, so every event is canonicalised, hash-chained and projected exactly as in
production. Then it runs ``verify`` (chain + projections) as ``backout journal verify`` does (on a
long journal, in two processes if a CPU is free), then forced into one and into two processes,
and ``verify`` chain-only. The baseline, measured in the same run on the same disk, is a bare
``sqlite3`` ``executemany`` of the same rows into an equivalent table with no chain, no
projections and no indexes beyond the primary key.

Targets (issue 2, on a 2-core machine): append >= 20,000 events/s, verify >= 200,000 events/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.journal import Journal
from console.journal.projections import PRIMARY_KEYS
from console.journal.verify import verify

APPEND_TARGET = 20_000
VERIFY_TARGET = 200_000

SEGMENTS_PER_RUN = 200

Event = tuple[str, dict[str, Any], str | None, str | None]


def _clock() -> Iterator[dt.datetime]:
    start = dt.datetime(2026, 11, 27, 2, 13, tzinfo=dt.UTC)
    step = dt.timedelta(microseconds=250)
    for i in itertools.count():
        yield start + step * i


def generate(total: int, ops_per_segment: int = 4) -> Iterator[Event]:
    """``total`` events: runs of ``SEGMENTS_PER_RUN`` segments, each segment an intent with
    ``ops_per_segment`` operations, its outcome, a checkpoint, a progress event and a guard."""
    emitted = 0
    for run_no in itertools.count(1):
        run_id = f"run{run_no:08d}"
        corr = f"corr-{run_no:08d}"
        rows_total = SEGMENTS_PER_RUN * ops_per_segment
        head: list[Event] = [
            (
                "run.created",
                {
                    "kind": "apply",
                    "changeset": "eu-price-uplift",
                    "version": 3,
                    "digest": "ab" * 32,
                    "automation": "n8n:workflow/42",
                    "description": "Raise EU list prices by 5 %",
                    "target": "sqlite:///crm.db",
                    "rows_total": rows_total,
                    "steps": [
                        {
                            "step_no": 1,
                            "name": "raise-prices",
                            "table": "products",
                            "key": ["sku"],
                            "operations": rows_total,
                        }
                    ],
                },
                run_id,
                corr,
            ),
            ("run.started", {"pid": 4242, "host": "bench"}, run_id, corr),
        ]
        body: list[Event] = []
        op_no = 0
        for seg_no in range(1, SEGMENTS_PER_RUN + 1):
            ops = []
            for _ in range(ops_per_segment):
                op_no += 1
                sku = f"SKU-{op_no:06d}"
                ops.append(
                    {
                        "op_no": op_no,
                        "table": "products",
                        "op": "update",
                        "key": {"sku": sku},
                        "before": {"sku": sku, "price": "10.00"},
                        "after": {"sku": sku, "price": "10.50"},
                        "inverse": {"op": "update", "set": {"price": "10.00"}},
                        "idem": f"{run_id}:{op_no}",
                    }
                )
            applied = [o["op_no"] for o in ops]
            body += [
                ("segment.intent", {"seg_no": seg_no, "step_no": 1, "ops": ops}, run_id, corr),
                (
                    "segment.applied",
                    {"seg_no": seg_no, "applied": applied, "attempt": 1, "duration_ms": 3},
                    run_id,
                    corr,
                ),
                ("checkpoint", {"seg_no": seg_no, "op_no": op_no, "done": op_no}, run_id, corr),
                (
                    "run.progress",
                    {"seg_no": seg_no, "done": op_no, "total": rows_total, "elapsed_s": 1.5},
                    run_id,
                    corr,
                ),
                (
                    "guard.passed",
                    {"invariant": "no-negative-prices", "seg_no": seg_no},
                    run_id,
                    corr,
                ),
            ]
        tail: list[Event] = [
            ("run.completed", {"applied": rows_total, "failed": 0, "conflicts": 0}, run_id, corr)
        ]
        for ev in itertools.chain(head, body, tail):
            if emitted == total:
                return
            yield ev
            emitted += 1


def _cpu_time() -> float:
    """CPU seconds of this process and of its children that ended (``verify`` runs a second
    process on a long journal)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Timing:
    """Accumulated wall-clock and CPU time (CPU time is steadier on a shared, busy machine;
    with two processes it is their sum, so it can exceed the wall time)."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self) -> Timing:
        self._wall, self._cpu = time.perf_counter(), _cpu_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._wall
        self.cpu += _cpu_time() - self._cpu


def bench_append(
    url: str, total: int, batch: int, ops_per_segment: int = 4
) -> tuple[Journal, Timing]:
    ticks = _clock()
    journal = Journal(url, actor="bench", clock=lambda: next(ticks))
    events = generate(total, ops_per_segment)
    elapsed = Timing()
    while True:
        # Building the payloads is the caller's work: only the journal's part is timed.
        chunk = list(itertools.islice(events, batch))
        if not chunk:
            break
        with elapsed, journal.write() as w:
            for kind, payload, run_id, corr in chunk:
                w.append(kind, payload, run_id=run_id, corr=corr)
    return journal, elapsed


def bench_baseline(path: Path, source: Path, batch: int) -> Timing:
    """The same rows (read back from the journal beforehand), bare executemany, no chain."""
    src = sqlite3.connect(source)
    rows = src.execute(
        "SELECT seq, ts, kind, run_id, corr, actor, payload, hash FROM events ORDER BY seq"
    ).fetchall()
    src.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, ts VARCHAR(40) NOT NULL, "
        "kind VARCHAR(64) NOT NULL, run_id VARCHAR(64), corr VARCHAR(64), "
        "actor VARCHAR(128) NOT NULL, payload TEXT NOT NULL, hash VARCHAR(64) NOT NULL)"
    )
    with Timing() as elapsed:
        for i in range(0, len(rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows[i : i + batch]
            )
            conn.execute("COMMIT")
    conn.close()
    return elapsed


def bench_read_tables(path: Path) -> Timing:
    """Only fetch every projection table's rows into Python, as ``verify`` must to compare
    them: no replay, no comparison (with chain-only verify, the floor of a full verify)."""
    conn = sqlite3.connect(path)
    with Timing() as elapsed:
        for table in PRIMARY_KEYS:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            while cursor.fetchmany(20_000):
                pass
    conn.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to append")
    parser.add_argument("--batch", type=int, default=5_000, help="events per write transaction")
    parser.add_argument(
        "--ops-per-segment", type=int, default=4, help="operations in each segment.intent event"
    )
    args = parser.parse_args(argv)
    total: int = args.events

    with tempfile.TemporaryDirectory(prefix="backout-bench-") as tmp:
        db = Path(tmp) / "journal.db"
        print(
            f"journal benchmark: {total:,} events, {args.batch:,} per transaction, "
            f"{args.ops_per_segment} ops per segment, SQLite {db}; load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs"
        )

        journal, t_append = bench_append(f"sqlite:///{db}", total, args.batch, args.ops_per_segment)
        print(f"{'':30} {'wall s':>8} {'events/s':>10}   {'cpu s':>8} {'events/s':>10}")

        def show(label: str, t: Timing) -> tuple[float, float]:
            wall, cpu = total / t.wall, total / t.cpu
            print(f"{label:30} {t.wall:8.2f} {wall:10,.0f}   {t.cpu:8.2f} {cpu:10,.0f}")
            return wall, cpu

        append_rate = show("append (chain + projections)", t_append)
        with Timing() as t_verify:
            report = verify(journal, remember=False)
        if not report.ok or report.events != total:
            print(f"verify FAILED: {report.problem}", file=sys.stderr)
            return 1
        verify_rate = show("verify (chain + projections)", t_verify)
        for label, parallel in (("  in one process", False), ("  in two processes", True)):
            with Timing() as t_forced:
                forced = verify(journal, remember=False, parallel=parallel)
            assert forced.as_dict() == report.as_dict(), forced.problem
            show(label, t_forced)
        with Timing() as t_chain:
            chain_report = verify(journal, projections=False, remember=False)
        assert chain_report.ok, chain_report.problem
        chain_rate = show("verify (chain only)", t_chain)
        t_tables = bench_read_tables(db)
        show("  reading the projection tables", t_tables)
        # What a full verify cannot go below in Python: the chain, plus the projection rows
        # fetched into Python, before any replay or comparison. Two CPUs share it at best
        # evenly; the aim leaves 2 CPUs x 5 us per event in all.
        floor_us = (t_chain.cpu + t_tables.cpu) / total * 1e6
        print(
            f"floor (chain + fetching the tables, no replay): {floor_us:.2f} us of CPU per event; "
            f"at best {2e6 / floor_us:,.0f} events/s on 2 CPUs, leaving "
            f"{2e6 / VERIFY_TARGET - floor_us:.2f} us per event for the replay and comparison "
            "at the aim"
        )
        journal.close()
        base_rate = show(
            "baseline (bare executemany)", bench_baseline(Path(tmp) / "b.db", db, args.batch)
        )

        for label, (wall, cpu) in (
            ("append", append_rate),
            ("verify", verify_rate),
            ("chain-only verify", chain_rate),
        ):
            print(
                f"{label} / baseline: {wall / base_rate[0]:.3f} (wall), "
                f"{cpu / base_rate[1]:.3f} (cpu)"
            )

        def verdict(rate: float, target: int) -> str:
            return "met" if rate >= target else "MISSED"

        print(
            f"targets (wall): append >= {APPEND_TARGET:,}/s "
            f"{verdict(append_rate[0], APPEND_TARGET)}; "
            f"verify >= {VERIFY_TARGET:,}/s: full {verdict(verify_rate[0], VERIFY_TARGET)}, "
            f"chain-only {verdict(chain_rate[0], VERIFY_TARGET)}"
        )
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
