"""Reconciliation benchmark (issue 5): one run prints every number and ratio.

A SQLite table of --rows rows (10 columns), a full-table baseline copy, a change set touching
1 % of the rows, and 1 % of the rows drifted out of band (updates, deletes, inserts, some on
the change set's own rows). Measured: the full reconciliation (key hygiene, SQL-pushdown
detection, classification, aggregate checks) time, rows/s and peak memory; detection alone
(rows/s, one and two connections); and, at --deepdiff-rows, DeepDiff with group_by on the key
over the same data as lists of dicts, against our reconciliation of the same data.

    .venv/bin/python bench/bench_reconcile.py [--rows 1000000] [--deepdiff-rows 100000]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deepdiff import DeepDiff

from console.reconcile import Change, Scope, intended_deltas
from console.reconcile import pushdown as pd
from console.reconcile.aggregates import numeric_columns
from console.reconcile.diff import reconcile
from console.reconcile.pushdown import TableRef
from console.reconcile.report import Report
from console.targets.types import ColumnInfo, ColumnKind, TableInfo

DDL = """
CREATE TABLE items (
    id INTEGER PRIMARY KEY, sku TEXT NOT NULL, name TEXT, email TEXT, qty INTEGER NOT NULL,
    price NUMERIC(10, 2), weight REAL, status TEXT, updated_at DATETIME, note TEXT
)
"""
KINDS: dict[str, ColumnKind] = {
    "id": "int",
    "sku": "text",
    "name": "text",
    "email": "text",
    "qty": "int",
    "price": "decimal",
    "weight": "float",
    "status": "text",
    "updated_at": "datetime",
    "note": "text",
}
INFO = TableInfo(
    "items",
    {
        c: ColumnInfo(c, k, c != "id", c == "id", 2 if c == "price" else None)
        for c, k in KINDS.items()
    },
    ("id",),
)
FILL = """
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)
INSERT INTO items
SELECT i, 'SKU-' || i, 'name ' || i, 'user' || i || '@example.org', i % 97,
       ((i * 7919) % 100000) / 100.0, ((i * 104729) % 10000) / 1000.0,
       CASE i % 3 WHEN 0 THEN 'active' WHEN 1 THEN 'paused' ELSE 'closed' END,
       '2026-01-01 ' || printf('%02d:%02d:00', (i / 60) % 24, i % 60),
       CASE WHEN i % 5 = 0 THEN NULL ELSE 'note ' || (i % 11) END
FROM s
"""


def build(folder: Path, rows: int) -> tuple[Path, Path, Scope, dict[str, Any]]:
    """Target and baseline files, the change set (applied) and the drift (out of band)."""
    db, base_db = folder / "target.db", folder / "baseline.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute(DDL)
    conn.execute(FILL, {"n": rows})
    conn.commit()
    conn.row_factory = sqlite3.Row
    step = 100  # the change set: 1 % of the rows
    touched = list(range(step, rows + 1, step))
    before = {r["id"]: dict(r) for r in conn.execute(f"SELECT * FROM items WHERE id % {step} = 0")}
    changes = [
        Change((i,), before[i], {"qty": 1000 + i % 7, "price": "19.99"}, n)
        for n, i in enumerate(touched)
    ]
    scope = Scope.from_changes(changes)

    engine = pd.sqlite_engine(str(db), {"b": str(base_db)})
    with engine.begin() as sa_conn:
        sa_conn.exec_driver_sql("PRAGMA b.synchronous = OFF")
        pd.copy_table(sa_conn, TableRef("items"), TableRef("items", "b"))
        numeric = numeric_columns(INFO)
        baseline_aggs = pd.table_aggregates(sa_conn, INFO, TableRef("items", "b"), numeric)
    engine.dispose()

    # the run: E written for every touched key
    conn.executemany(
        "UPDATE items SET qty = ?, price = ? WHERE id = ?",
        [(1000 + i % 7, 19.99, i) for i in touched],
    )
    # 1 % drifted out of band: wrong values on 1 % of the touched rows, the rest elsewhere
    drift = rows // 100
    on_scope = touched[::100]
    deletes = [i for i in range(37, rows, step) if i % step != 0][: drift // 200]
    inserts = list(range(rows + 1, rows + 1 + drift // 200))
    others = list(range(50, rows + 1, step))[: drift - len(on_scope) - len(deletes) - len(inserts)]
    conn.executemany("UPDATE items SET qty = -1 WHERE id = ?", [(i,) for i in on_scope])
    conn.executemany(
        "UPDATE items SET email = 'changed@example.org' WHERE id = ?", [(i,) for i in others]
    )
    conn.executemany("DELETE FROM items WHERE id = ?", [(i,) for i in deletes])
    conn.executemany(
        "INSERT INTO items (id, sku, qty) VALUES (?, ?, 0)", [(i, f"NEW-{i}") for i in inserts]
    )
    conn.commit()
    conn.close()
    expect = {
        "wrong_value": len(on_scope),
        "applied": len(touched),  # a drifted touched row: wrong qty, price still applied
        "collateral": len(others) + len(deletes) + len(inserts),
        "drifted": len(on_scope) + len(others) + len(deletes) + len(inserts),
        "baseline_aggregates": baseline_aggs,
        "numeric": numeric,
    }
    return db, base_db, scope, expect


def full_reconciliation(
    db: Path, base_db: Path, scope: Scope, meta: dict[str, Any], timings: dict[str, float]
) -> Report:
    """Everything a `backout reconcile` of this table does, from the files: key hygiene,
    detection, classification, and the aggregate checks (computed while Python classifies)."""
    engine = pd.sqlite_engine(str(db), {"b": str(base_db)})
    try:
        check = pd.AggregateCheck(
            meta["baseline_aggregates"],
            intended_deltas(INFO, scope.changes(), meta["numeric"]),
            meta["numeric"],
        )
        return pd.reconcile_pushdown(
            engine,
            INFO,
            TableRef("items"),
            TableRef("items", "b"),
            scope.baseline,
            scope.expected,
            scope.touched,
            aggregates=check,
            timings=timings,
        )
    finally:
        engine.dispose()


def rows_of(db: Path, table: str, schema: str | None = None) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    name = f"{schema}.{table}" if schema else table
    out = [dict(r) for r in conn.execute(f"SELECT * FROM {name} ORDER BY id")]
    conn.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--deepdiff-rows", type=int, default=100_000, help="0: skip DeepDiff")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; the median is printed")
    args = ap.parse_args()
    print(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        db, base_db, scope, meta = build(folder, args.rows)
        print(
            f"setup: {args.rows:,} rows, {len(scope.touched):,} in the change set, "
            f"{meta['drifted']:,} drifted out of band ({time.perf_counter() - t:.1f} s)"
        )

        # --- full reconciliation ------------------------------------------------------
        runs: list[float] = []
        cpu: list[float] = []
        report: Report | None = None
        phases: dict[str, float] = {}
        for _ in range(args.repeat):
            gc.collect()
            timings: dict[str, float] = {}
            t, c = time.perf_counter(), time.process_time()
            report = full_reconciliation(db, base_db, scope, meta, timings)
            runs.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            if runs[-1] == min(runs):
                phases = timings
        assert report is not None
        counts = report.summary.counts
        assert counts.get("wrong_value") == meta["wrong_value"], counts
        assert counts.get("applied") == meta["applied"], counts
        assert counts.get("collateral") == meta["collateral"], counts
        assert counts.get("aggregate_mismatch") == 1, counts
        best, median = min(runs), statistics.median(runs)
        print(
            f"full reconciliation: median {median:.2f} s, best {best:.2f} s "
            f"({args.rows / median:,.0f} rows/s median) -> {dict(sorted(counts.items()))}"
        )
        print("  phases (best run): " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
        print(
            f"  CPU time (all threads): median {statistics.median(cpu):.2f} s, "
            f"best {min(cpu):.2f} s"
        )
        tracemalloc.start()
        full_reconciliation(db, base_db, scope, meta, {})
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"  peak memory: {peak / 2**20:.0f} MiB Python heap (tracemalloc), "
            f"{rss:.0f} MiB max RSS of the process"
        )

        # --- detection alone ----------------------------------------------------------
        engine = pd.sqlite_engine(str(db), {"b": str(base_db)})
        for workers in (1, 2):
            speeds, per_cpu = [], []
            for _ in range(args.repeat):
                c = time.process_time()
                d = pd.detect(
                    engine,
                    INFO,
                    TableRef("items"),
                    TableRef("items", "b"),
                    ["id"],
                    list(INFO.columns),
                    workers=workers,
                    unique_target=True,
                )
                speeds.append(d.rows_per_s)
                per_cpu.append(d.rows_compared / max(time.process_time() - c, 1e-9))
            print(
                f"pushdown detection, {workers} connection(s): "
                f"{statistics.median(speeds):,.0f} rows/s median, best {max(speeds):,.0f} "
                f"(per CPU-second {statistics.median(per_cpu):,.0f}; "
                f"{len(d.keys):,} keys differ, {d.partitions} partition(s))"
            )
        engine.dispose()

    # --- against DeepDiff -------------------------------------------------------------
    if args.deepdiff_rows <= 0:
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        n = args.deepdiff_rows
        db, base_db, scope, meta = build(folder, n)
        ours_pd = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            small = full_reconciliation(db, base_db, scope, meta, {})
            ours_pd.append(time.perf_counter() - t)
        before_rows = rows_of(base_db, "items")
        after_rows = rows_of(db, "items")
        base_map = {(r["id"],): r for r in before_rows}
        ours_py = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            py = reconcile(
                INFO, base_map, scope.expected, after_rows, scope.touched, full_baseline=True
            )
            ours_py.append(time.perf_counter() - t)
        assert py.keys_of() == {k for k in small.keys_of() if k != ()}
        t = time.perf_counter()
        dd = DeepDiff(before_rows, after_rows, group_by="id")
        dd_s = time.perf_counter() - t
        dd_keys = {int(p.split("[")[1].split("]")[0]) for kind in dd for p in dd[kind]}
        ours_keys = {k[0] for k in py.keys_of()}
        agree = (
            "same keys"
            if dd_keys == ours_keys
            else (f"DeepDiff {len(dd_keys):,} keys, ours {len(ours_keys):,}")
        )
        pd_s, py_s = statistics.median(ours_pd), statistics.median(ours_py)
        print(
            f"at {n:,} rows: DeepDiff(group_by='id') {dd_s:.2f} s; ours {pd_s:.3f} s "
            f"(pushdown from SQLite) -> {dd_s / pd_s:.0f}x, {py_s:.3f} s (Python fallback "
            f"over the same lists of dicts) -> {dd_s / py_s:.0f}x; {agree}"
        )


if __name__ == "__main__":
    main()
