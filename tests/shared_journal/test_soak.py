"""Soak on one PostgreSQL journal and a PostgreSQL target, bounded in time and seeded: several
appliers (processes), an incident commander rolling runs back through an approval-gated
runbook (two data owners approve, an on-call executes), direct rollbacks refused by the
policy, and two headless consoles following the journal, all at once. Every run reconciles
(exit 0): an applied run against what it intended, a rolled-back run against its baseline.
Reconciliation also flags collateral changes to the rest of a table, so each applier has a
target of its own and reconciles while nobody else writes to it. Afterwards the chain and
projections verify and both consoles saw the final head."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.journal import Journal
from console.journal.verify import verify
from tests.conftest import drop_pg_database, make_pg_database
from tests.engine.helpers import changeset_doc, make_items, write_changeset
from tests.runbook.conftest import PEOPLE, POLICY, Team, _drop_roles, _pg_team
from tests.runbook.test_race import RACE

SECONDS = float(os.environ.get("BACKOUT_SOAK_SECONDS", "120"))
SEED = int(os.environ.get("BACKOUT_SOAK_SEED", "20261127"))
APPLIERS = 3
BLOCK = 10  # rows per run; each run updates rows no other run touches
ROWS = 3_000


@pytest.fixture
def soak_team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    monkeypatch.chdir(tmp_path)
    journal = make_pg_database()
    targets = [make_pg_database() for _ in range(APPLIERS)]
    for target in targets:
        make_items(target, ROWS)
    Journal(journal, actor="setup").close()  # the schema, before the team owns it
    suffix = uuid.uuid4().hex[:6]
    names = {p: f"{p}_{suffix}" for p in PEOPLE}
    team = Team("postgres", journal, tmp_path, " ".join(targets), names)
    team.config = tmp_path / "backout.toml"
    team.config.write_text(POLICY.format(**names))
    team.write_runbook("rb-race", RACE)
    group = _pg_team(journal, names)
    yield team
    for target in targets:
        drop_pg_database(target)
    _drop_roles(journal, [*names.values(), group])


def _reconciles(team: Team, run_id: str) -> None:
    r = team.cli("ic1", "reconcile", run_id, "--no-notify")
    assert r.code == 0, (run_id, r.code, r.out[-2000:], r.err)


def _applier(team: Team, k: int, deadline: float, asks: Any, done: Any, out: Any) -> None:
    rnd = random.Random(SEED + k)
    target = team.target.split()[k]
    n, rolled, refused = 0, 0, 0
    while time.monotonic() < deadline and (n + 1) * BLOCK <= ROWS:
        ids = range(n * BLOCK + 1, (n + 1) * BLOCK + 1)
        doc = changeset_doc(target, name=f"soak-{k}-{n}", updates=ids, segment_size=4)
        path = write_changeset(team.tmp / f"soak-{k}-{n}.yaml", doc)
        r = team.cli("oncall1", "apply", str(path), "--json")
        assert r.code == 0, r.err
        run_id = r.json()["run_id"]
        _reconciles(team, run_id)
        if rnd.random() < 0.2:  # the policy wants a runbook: refused in one sentence
            r = team.cli("oncall2", "rollback", run_id)
            assert r.code == 4 and len(r.err.strip().splitlines()) == 1, (r.code, r.err)
            refused += 1
        if rnd.random() < 0.5:  # the incident commander rolls it back; then it reconciles
            asks.put((k, run_id))
            assert done[k].get(timeout=300) == run_id
            _reconciles(team, run_id)
            rolled += 1
        n += 1
    out.put(("applier", k, n, rolled, refused))


def _incident(team: Team, deadline: float, asks: Any, done: Any, out: Any) -> None:
    """Rolls runs back through the approval-gated runbook, as the appliers ask."""
    import queue

    rolled = 0
    while time.monotonic() < deadline + 60:
        try:
            k, run_id = asks.get(timeout=1)
        except queue.Empty:
            if time.monotonic() > deadline:
                break
            continue
        r = team.cli("oncall1", "runbook", "start", "rb-race", "--run", run_id, "--json")
        assert r.code == 0, r.err
        ex = r.json()["exec_id"]
        for owner in ("owner1", "owner2"):
            r = team.cli(owner, "approve", ex)
            assert r.code == 0, r.err
        assert team.cli("oncall1", "runbook", "next", ex).code == 0
        r = team.cli("oncall2", "runbook", "next", ex, "--step", "rollback")
        assert r.code == 0 and "reverted" in r.out, (r.code, r.out, r.err)
        rolled += 1
        done[k].put(run_id)
    out.put(("incident", 0, rolled, 0, 0))


def _console(team: Team, k: int, deadline: float, out: Any) -> None:
    from console.tui.app import BackoutApp

    async def follow() -> tuple[int, int]:
        journal = Journal(team.url_for("ic1"), actor=team.who("ic1"))
        app = BackoutApp(journal, user=team.who("ic1"), poll_interval=0.2)
        moves = 0
        async with app.run_test(size=(120, 40)) as pilot:
            last = None
            while time.monotonic() < deadline:
                await pilot.pause(0.5)
                if app.head_seq != last:
                    moves, last = moves + 1, app.head_seq
            final = journal.head()[0]  # the writers have stopped or are stopping
            settle = time.monotonic() + 15
            while time.monotonic() < settle and app.head_seq != journal.head()[0]:
                await pilot.pause(0.2)
                final = journal.head()[0]
            seen = app.head_seq or 0
        journal.close()
        return moves, seen - final

    moves, behind = asyncio.run(follow())
    out.put(("console", k, moves, behind, 0))


def _run_all(team: Team, seconds: float) -> dict[str, list[tuple[Any, ...]]]:
    ctx = mp.get_context("fork")
    asks, out = ctx.Queue(), ctx.Queue()
    done = [ctx.Queue() for _ in range(APPLIERS)]
    deadline = time.monotonic() + seconds
    procs = [
        ctx.Process(target=_applier, args=(team, k, deadline, asks, done, out))
        for k in range(APPLIERS)
    ]
    procs.append(ctx.Process(target=_incident, args=(team, deadline, asks, done, out)))
    procs += [ctx.Process(target=_console, args=(team, k, deadline + 5, out)) for k in range(2)]
    for p in procs:
        p.start()
    got: dict[str, list[tuple[Any, ...]]] = {}
    for _ in procs:
        role, *rest = out.get(timeout=seconds + 300)
        got.setdefault(role, []).append(tuple(rest))
    for p in procs:
        p.join(60)
        assert p.exitcode == 0, "a soak process failed (its assertion is above)"
    return got


@pytest.mark.slow
def test_soak(soak_team: Team) -> None:
    started = time.monotonic()
    got = _run_all(soak_team, SECONDS)
    applied = sum(n for _, n, _, _ in got["applier"])
    rolled = sum(r for _, _, r, _ in got["applier"])
    assert applied >= APPLIERS and rolled == got["incident"][0][1] > 0, got
    for _, moves, behind, _ in got["console"]:
        assert moves > 1 and behind == 0, got["console"]  # followed, and caught up
    j = Journal(soak_team.url, actor="auditor")
    try:
        assert verify(j, remember=False).ok
        statuses = Counter(r.status for r in j.runs(kind="apply", limit=10_000))
        assert statuses == {"completed": applied - rolled, "rolled_back": rolled}
    finally:
        j.close()
    print(
        f"soak {SECONDS:.0f}s seed {SEED}: {applied} runs applied and reconciled, {rolled} "
        f"rolled back through the runbook and reconciled, "
        f"{sum(f for *_, f in got['applier'])} direct rollbacks refused; "
        f"wall {time.monotonic() - started:.0f}s"
    )
