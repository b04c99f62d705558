"""Executors racing `backout rollback RUN` on one PostgreSQL journal and a PostgreSQL target,
as real parallel processes released at the same instant: exactly one rollback runs, every
time; the others are refused in one sentence (exit 4) or find nothing left (exit 0).

The same race on a runbook step (`backout runbook next EXEC`) has its 50 trials in
tests/runbook/test_race.py."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.cli import main
from console.journal import Journal
from console.journal.verify import verify
from tests.conftest import drop_pg_database, make_pg_database
from tests.engine.helpers import changeset_doc, dump, make_items, write_changeset, write_counts
from tests.runbook.test_race import _child

EXECUTORS = 3
ROWS = 120


@dataclass
class Scene:
    journal: str
    target: str
    tmp: Path

    def apply(self, n: int) -> str:
        doc = changeset_doc(
            self.target, name=f"race-{n}", updates=range(1, ROWS + 1), segment_size=10
        )
        path = write_changeset(self.tmp / f"cs{n}.yaml", doc)
        with pytest.raises(SystemExit) as done:
            main(["--journal", self.journal, "apply", str(path)])
        assert done.value.code in (0, None)
        j = Journal(self.journal)
        try:
            return j.runs(limit=1, kind="apply")[0].id
        finally:
            j.close()


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    journal, target = make_pg_database(), make_pg_database()
    make_items(target, ROWS)
    yield Scene(journal, target, tmp_path)
    drop_pg_database(journal)
    drop_pg_database(target)


def race(argvs: list[list[str]]) -> list[tuple[int, str, str]]:
    """Each argv in its own forked process running the CLI, all released at once."""
    ctx = mp.get_context("fork")
    go, results = ctx.Event(), ctx.SimpleQueue()
    procs = [ctx.Process(target=_child, args=(argv, go, results)) for argv in argvs]
    for proc in procs:
        proc.start()
    go.set()
    for proc in procs:
        proc.join(120)
    out = []
    while not results.empty():
        out.append(results.get())
    assert len(out) == len(procs), "a child process died without reporting"
    return [(code, o, e) for _, code, o, e in out]


def trial(scene: Scene, n: int) -> None:
    baseline = dump(scene.target)
    run_id = scene.apply(n)
    before = write_counts(scene.target)
    outcomes = race([["--journal", scene.journal, "rollback", run_id]] * EXECUTORS)
    ran = [o for code, o, _ in outcomes if code == 0 and f"reverted {ROWS} rows" in o]
    assert len(ran) == 1, outcomes
    for code, out, err in outcomes:
        if out in ran:
            continue
        assert code in (0, 4), (code, out, err)
        if code == 4:  # refused in one sentence, no traceback
            assert err.startswith("backout: ") and len(err.strip().splitlines()) == 1, err
            assert "another executor started first" in err or "is being executed" in err
        else:
            assert "nothing left to roll back" in out, out
    # The target: every row written back exactly once, and equal to the baseline.
    after = write_counts(scene.target)
    assert all(after[i] == before[i] + 1 for i in range(1, ROWS + 1))
    assert dump(scene.target) == baseline
    j = Journal(scene.journal)
    try:
        rollbacks = [r for r in j.runs(kind="rollback", limit=1000) if r.parent_run == run_id]
        assert [r.status for r in rollbacks] == ["completed"], rollbacks
        assert j.get_run(run_id).status == "rolled_back"
        assert verify(j, remember=False).ok
    finally:
        j.close()


def test_racing_rollbacks_run_once(scene: Scene) -> None:
    for n in range(3):
        trial(scene, n)


@pytest.mark.slow
def test_racing_rollbacks_run_once_fifty_trials(scene: Scene) -> None:
    for n in range(50):
        trial(scene, n)
