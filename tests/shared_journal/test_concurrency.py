"""Four processes appending to one PostgreSQL journal as team members: one valid chain,
nothing lost, nothing doubled."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter

from console.journal.setup import open_journal
from console.journal.verify import verify
from tests.shared_journal.conftest import Team

PER_WRITER = 60


def _append(url: str, writer: int) -> None:
    j = open_journal(url, "ignored")
    n = 0
    while n < PER_WRITER:
        with j.write() as w:  # transactions of 1..3 events interleave with the others
            for _ in range(1 + n % 3):
                if n < PER_WRITER:
                    w.append("note", {"writer": writer, "n": n})
                    n += 1
    j.close()


def test_four_processes_keep_one_chain(team: Team) -> None:
    extra = team.add_user("operator")

    users = [team.operator, team.approver, extra, team.operator]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(team.url_as(u), i)) for i, u in enumerate(users)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    j = open_journal(team.url_as(team.auditor), "x")
    assert verify(j, remember=False).ok
    events = j.events(limit=10_000)
    assert [e.seq for e in events] == list(range(1, 4 * PER_WRITER + 1))
    seen = Counter((e.payload["writer"], e.payload["n"]) for e in events)
    assert set(seen) == {(w, n) for w in range(4) for n in range(PER_WRITER)}
    assert max(seen.values()) == 1
    assert {e.actor for e in events} == set(users)
    j.close()
