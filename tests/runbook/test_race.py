"""Races with real parallel processes on a shared PostgreSQL journal: several approvers at
the same moment (one of them twice), and several executors pressing `next` on the same
rollback step. The step executes exactly once; the same person approves once."""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.changes import load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.journal import Journal
from tests.conftest import make_pg_database
from tests.engine.helpers import changeset_doc, write_changeset, write_counts
from tests.runbook.conftest import Team, _drop_roles, _pg_team, make_team

RACE = """
runbook: rb-race
version: 1
steps:
  - id: approve
    approval: {quorum: 2}
  - id: rollback
    action: rollback
    next: end
"""


def _child(argv: list[str], go: Any, results: Any) -> None:
    from console.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    go.wait(30)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
        except BaseException as exc:  # report, never hang the parent
            code, err = 99, io.StringIO(repr(exc))
    results.put(
        (argv[-1] if argv[-1] != "rollback" else "next", code, out.getvalue(), err.getvalue())
    )
    os._exit(0)


def race(team: Team, calls: list[tuple[str, tuple[str, ...]]]) -> list[tuple[int, str, str]]:
    """Run each (person, args) in its own process, released at the same instant."""
    ctx = mp.get_context("fork")
    go, results = ctx.Event(), ctx.SimpleQueue()
    procs = [ctx.Process(target=_child, args=(team.argv(p, a), go, results)) for p, a in calls]
    for proc in procs:
        proc.start()
    go.set()
    for proc in procs:
        proc.join(120)  # outputs are small: a child never blocks on the pipe
    out = []
    while not results.empty():
        out.append(results.get())
    assert len(out) == len(procs), "a child process died without reporting"
    return [(code, o, e) for _, code, o, e in out]


@pytest.fixture
def pg_team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    monkeypatch.chdir(tmp_path)
    url = make_pg_database()
    t = make_team(url, tmp_path)
    group = _pg_team(url, t.names)
    t.write_runbook("rb-race", RACE)
    yield t
    _drop_roles(url, [*t.names.values(), group])


def new_run(team: Team, n: int) -> str:
    path = write_changeset(
        team.tmp / f"cs{n}.yaml", changeset_doc(team.target, name=f"race-{n}", updates=range(1, 11))
    )
    j = Journal(team.url, actor="automation")
    try:
        report = Engine(j, Settings()).apply(load_changeset(str(path)))
    finally:
        j.close()
    assert report.exit_code == 0
    return str(report.run_id)


def trial(team: Team, run_id: str, executors: int) -> None:
    r = team.cli("oncall1", "runbook", "start", "rb-race", "--run", run_id, "--json")
    assert r.code == 0, r.err
    ex = r.json()["exec_id"]
    # Three approvals at once, one of them a second one by the same person.
    approvals = race(
        team,
        [("owner1", ("approve", ex)), ("owner1", ("approve", ex)), ("owner2", ("approve", ex))],
    )
    codes = sorted(code for code, _, _ in approvals)
    assert codes == [0, 0, 4], approvals
    assert any("approval.duplicate" in e for _, _, e in approvals)
    assert team.cli("oncall1", "runbook", "next", ex).code == 0
    before = write_counts(team.target)
    nexts = race(team, [("oncall2", ("runbook", "next", ex, "--step", "rollback"))] * executors)
    assert all(code in (0, 4) for code, _, _ in nexts), [(c, e) for c, _, e in nexts]
    ran = [o for code, o, _ in nexts if code == 0 and "reverted" in o]
    assert len(ran) == 1, nexts
    after = write_counts(team.target)
    assert all(after[i] == before[i] + 1 for i in range(1, 11))
    j = Journal(team.url, actor="auditor")
    try:
        started = [
            e
            for e in j.events(run_id, kinds=["runbook.step.started"], limit=100)
            if e.payload["exec"] == ex and e.payload["step"] == "rollback"
        ]
        assert len(started) == 1
        rollbacks = [r for r in j.runs(kind="rollback", limit=100) if r.parent_run == run_id]
        assert len(rollbacks) == 1
        assert j.get_run(run_id).status == "rolled_back"
    finally:
        j.close()


def test_parallel_approvers_and_executors(pg_team: Team) -> None:
    for n in range(2):
        trial(pg_team, pg_team.run_id if n == 0 else new_run(pg_team, n), executors=4)


@pytest.mark.slow
def test_parallel_executors_fifty_trials(pg_team: Team) -> None:
    trial(pg_team, pg_team.run_id, executors=4)
    for n in range(1, 50):
        trial(pg_team, new_run(pg_team, n), executors=4)
