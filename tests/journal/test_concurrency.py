"""Several real processes append to one journal at once (SQLite file and PostgreSQL): one valid
chain comes out, with every event each process committed, and its projections."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from console.journal import Journal
from console.journal.verify import verify

WORKER = r"""
import json, os, sys, time
from console.journal import Journal

url, name, txs, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
journal = Journal(url, actor=name)  # several processes create the schema at once, too
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("never told to start")
    time.sleep(0.005)
seqs = []
run = f"run-{name}"
with journal.write() as w:
    seqs.append(w.append("run.created", {"rows_total": txs}, run_id=run, corr=name).seq)
for t in range(1, txs + 1):
    op = {"op_no": t, "table": "t", "op": "update", "key": {"id": t}, "before": {"v": 0},
          "after": {"v": 1}, "inverse": {"op": "update", "set": {"v": 0}}, "idem": f"{run}:{t}"}
    with journal.write() as w:
        seqs.append(w.append("segment.intent", {"seg_no": t, "step_no": 1, "ops": [op]},
                             run_id=run, corr=name).seq)
        seqs.append(w.append("segment.applied", {"seg_no": t, "applied": [t]},
                             run_id=run, corr=name).seq)
        seqs.append(w.append("checkpoint", {"seg_no": t, "op_no": t, "done": t},
                             run_id=run, corr=name).seq)
journal.append("run.completed", {}, run_id=run, corr=name)
journal.close()
print(json.dumps(seqs))
"""

WORKERS = 4
TRANSACTIONS = 20


def test_concurrent_processes_make_one_valid_chain(journal_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, journal_url, f"w{i}", str(TRANSACTIONS), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]
    time.sleep(1.0)  # let them start (and race on the schema) before they race on appends
    go.touch()
    seqs: list[int] = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        seqs += json.loads(out)
    journal = Journal(journal_url)
    per_worker = 1 + 3 * TRANSACTIONS + 1
    total = WORKERS * per_worker
    assert journal.count_events() == total
    assert journal.head()[0] == total
    # Every seq a process was given is unique: no two processes wrote the same link.
    assert len(seqs) == len(set(seqs)) == WORKERS * (per_worker - 1)
    report = verify(journal, remember=False)
    assert report.ok, report.problem
    assert report.events == total
    events = journal.events(limit=total + 1)
    assert [e.seq for e in events] == list(range(1, total + 1))
    # However the appends interleaved, each process's transactions stayed whole and in order.
    by_actor: dict[str, list[str]] = {}
    for e in events:
        by_actor.setdefault(e.actor, []).append(e.kind)
    assert sorted(by_actor) == [f"w{i}" for i in range(WORKERS)]
    for kinds in by_actor.values():
        assert kinds == [
            "run.created",
            *["segment.intent", "segment.applied", "checkpoint"] * TRANSACTIONS,
            "run.completed",
        ]
    for i in range(WORKERS):
        run = journal.get_run(f"run-w{i}")
        assert (run.status, run.rows_applied) == ("completed", TRANSACTIONS)
        assert journal.count_operations(run.id, status=["applied"]) == TRANSACTIONS
    journal.close()
