"""Journaled apply vs a bare executemany of the same updates, measured in the same run.

100,000 single-row updates on a 1,000,000-row SQLite table (``--rows`` / ``--updates`` scale
it). Prints both rates and the ratio. Aim: journaled apply within 3x of the bare write.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.changes import load_changeset
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--segment-size", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(1)
    ids = rng.sample(range(1, args.rows + 1), args.updates)
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
        cs = load_changeset(
            csv,
            table="items",
            key=["id"],
            op="update",
            name="bench",
            version=1,
            target=f"sqlite:///{journaled_db}",
        )
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
