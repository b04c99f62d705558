"""``verify`` in two processes: the same report as one pass.

Each case breaks a generated SQLite journal one way (or two, to see which problem comes first),
then compares the two reports field by field. Two journals: runs only (the other process also
replays a part of the runs) and one with a rollback, whose run changes its parent's rows (the
other process checks the chain only).
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from console.canonical import canonical_json
from console.journal import Journal
from console.journal.chain import genesis_hash
from console.journal.verify import VerifyReport, verify
from console.journal.verify_parallel import in_two, other_pass, pivot_run
from console.journal.verify_pass import Part

from .gen import Attacker, generate_events, ticking_clock


@pytest.fixture(params=["runs", "rollback"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    """SQLite only: the other process reads the journal file."""
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="alice", clock=ticking_clock())
    events = list(generate_events(random.Random(5), runs=4, max_segments=3))
    if request.param == "runs":
        events = [e for e in events if e[3] != "corr-rb"]
    for start in range(0, len(events), 7):
        with j.write() as w:
            for kind, payload, run_id, corr in events[start : start + 7]:
                w.append(kind, payload, run_id=run_id, corr=corr)
    yield j
    j.close()


@pytest.fixture
def attacker(journal: Journal) -> Iterator[Attacker]:
    a = Attacker(journal.url)
    yield a
    a.close()


def _both(journal: Journal, **kwargs: object) -> VerifyReport:
    one = verify(journal, remember=False, parallel=False, **kwargs)  # type: ignore[arg-type]
    two = verify(journal, remember=False, parallel=True, **kwargs)  # type: ignore[arg-type]
    assert two.as_dict() == one.as_dict()
    return one


def _seq_of(attacker: Attacker, kind: str, nth: int = 0) -> int:
    return [e["seq"] for e in attacker.events() if e["kind"] == kind][nth]


def _path(journal: Journal) -> str:
    return journal.url.split("///", 1)[1]


def test_an_intact_journal(journal: Journal) -> None:
    report = _both(journal)
    assert report.ok and report.projections_checked and report.events == journal.head()[0]


@pytest.mark.parametrize("parallel", [False, True])
def test_progress_counts_the_events_read_up_to_the_head(journal: Journal, parallel: bool) -> None:
    """What a progress bar on a terminal is told, in one pass or in two."""
    told: list[tuple[int, int]] = []
    report = verify(
        journal, remember=False, parallel=parallel, progress=lambda d, t: told.append((d, t))
    )
    seq, _ = journal.head()
    assert report.ok
    assert told and told[-1] == (seq, seq)
    assert [d for d, _ in told] == sorted(d for d, _ in told) and {t for _, t in told} == {seq}


def test_an_intact_journal_is_checked_in_two(journal: Journal) -> None:
    """Not one pass after the two found a problem that is not there."""
    seq, head = journal.head()
    walked = in_two(_path(journal), genesis_hash(journal.journal_id), 3, seq, head)
    assert walked is not None and walked.failure is None
    assert (walked.count, walked.head) == (seq, head) and walked.trusted_hash_seen is not None


def test_a_quick_other_process_is_not_lost(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a busy machine the other process may write its answer before this one reads its
    first line; a buffered reader took the answer with that line, and the two passes said
    "not clean" on a clean journal (1 in 4 runs with four busy loops on two CPUs)."""
    import console.journal.verify_parallel as vp

    class Late(threading.Thread):  # reads the first line once the answer is written
        def run(self) -> None:
            time.sleep(1.5)
            super().run()

    monkeypatch.setattr(vp, "threading", SimpleNamespace(Thread=Late))
    seq, head = journal.head()
    walked = in_two(_path(journal), genesis_hash(journal.journal_id), 3, seq, head)
    assert walked is not None and (walked.count, walked.head) == (seq, head)


def test_the_parts(journal: Journal, attacker: Attacker) -> None:
    """Runs only: the other process replays the runs from a pivot on (some of them, not all);
    with a rollback it checks the chain only."""
    db = sqlite3.connect(_path(journal))
    pivot = pivot_run(db)
    db.close()
    rollback = any(e["corr"] == "corr-rb" for e in attacker.events())
    if rollback:
        assert pivot is None
        return
    assert pivot is not None
    runs = [e["run_id"] for e in attacker.events() if e["run_id"] is not None]
    assert 0 < sum(run >= pivot for run in runs) < len(runs)
    seq, head = journal.head()
    seen, walked, clean = other_pass(
        _path(journal), genesis_hash(journal.journal_id), None, Part(pivot, None)
    )
    assert seen == (seq, head) and clean and walked.head == head


Breakage = Callable[[Journal, Attacker], None]


def _edit_payload(kind: str, nth: int = 0) -> Breakage:
    def edit(journal: Journal, attacker: Attacker) -> None:
        attacker.set_field(_seq_of(attacker, kind, nth), "payload", canonical_json({"e": 1}))

    return edit


def _forge(kind: str, payload: str, nth: int = 0) -> Breakage:
    """A payload replaced and every hash recomputed: only the projections can tell."""

    def forge(journal: Journal, attacker: Attacker) -> None:
        attacker.set_field(_seq_of(attacker, kind, nth), "payload", payload)
        attacker.rechain(journal.journal_id)

    return forge


def _then(first: Breakage, second: Breakage) -> Breakage:
    def both(journal: Journal, attacker: Attacker) -> None:
        first(journal, attacker)
        second(journal, attacker)

    return both


def _delete(journal: Journal, attacker: Attacker) -> None:
    attacker.delete(_seq_of(attacker, "segment.intent", -1))


def _head(journal: Journal, attacker: Attacker) -> None:
    attacker.set_head(attacker.head()[0], "0" * 64)


def _projection(sql: str) -> Breakage:
    def edit(journal: Journal, attacker: Attacker) -> None:
        attacker.execute(sql)

    return edit


def test_changes_across_the_parts(journal: Journal, attacker: Attacker) -> None:
    """The last run's last segment.applied also reverts an operation of the first run (as a
    rollback would), that row edited to match: consistent, but across the parts, so one pass
    checks it again."""
    events = attacker.events()
    first, last = events[1]["run_id"], events[-1]["run_id"]
    applied = [e for e in events if e["kind"] == "segment.applied" and e["run_id"] == last][-1]
    payload = {**json.loads(applied["payload"]), "parent_run": first, "reverted_ops": [1]}
    attacker.set_field(applied["seq"], "payload", canonical_json(payload))
    attacker.rechain(journal.journal_id)
    attacker.execute(
        "UPDATE operations SET status = 'reverted' WHERE run_id = :r AND op_no = 1", r=first
    )
    attacker.execute("UPDATE runs SET rows_reverted = rows_reverted + 1 WHERE id = :r", r=first)
    assert _both(journal).ok
    seq, head = journal.head()
    walked = in_two(_path(journal), genesis_hash(journal.journal_id), None, seq, head)
    rollback = any(e["corr"] == "corr-rb" for e in events)
    assert (walked is not None) == rollback  # with a rollback, one process replays all runs


BREAKAGES: dict[str, Breakage] = {
    "edited projected payload, first run": _edit_payload("segment.intent"),
    "edited projected payload, last run": _edit_payload("segment.intent", -1),
    "edited passive payload": _edit_payload("run.started", -1),
    "forged passive payload, not JSON": _forge("run.started", "[1,", -1),
    "forged projected payload, not JSON, first run": _forge("segment.intent", "{not json"),
    "forged projected payload, not JSON, last run": _forge("segment.intent", "{not json", -1),
    "forged payload that cannot be projected": _forge("checkpoint", "[]", -1),
    "forged change of a row never created": _forge("checkpoint", canonical_json({"seg_no": 1}), -1),
    "forged run, first": _forge("run.created", canonical_json({"kind": "x"})),
    "forged run, last": _forge("run.created", canonical_json({"kind": "x"}), -1),
    # Both find a problem: the first by seq wins, the chain's on a tie.
    "broken link before a forged payload": _then(
        _forge("checkpoint", "[]", -1), _edit_payload("segment.intent")
    ),
    "broken link after a forged payload": _then(
        _forge("checkpoint", "[]"), _edit_payload("run.started", -1)
    ),
    "broken link at a forged payload": _then(
        _forge("segment.intent", "[]", -1), _edit_payload("segment.intent", -1)
    ),
    "deleted event": _delete,
    "altered head": _head,
    "edited projection, first run": _projection(
        "UPDATE operations SET status = 'x' WHERE rowid = (SELECT min(rowid) FROM operations)"
    ),
    "edited projection, last run": _projection(
        "UPDATE operations SET status = 'x' WHERE rowid = (SELECT max(rowid) FROM operations)"
    ),
    "removed run": _projection("DELETE FROM runs WHERE id = (SELECT max(id) FROM runs)"),
    "added checkpoint": _projection(
        "INSERT INTO checkpoints (seq, run_id, ts, payload) VALUES (999999, 'zz', 't', '{}')"
    ),
}


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_a_broken_journal_gets_the_same_report(
    journal: Journal, attacker: Attacker, name: str
) -> None:
    BREAKAGES[name](journal, attacker)
    report = _both(journal)
    assert not report.ok and report.problem


def test_a_rewritten_history_below_the_trusted_head(journal: Journal, attacker: Attacker) -> None:
    seq, head = journal.head()
    trusted = {"journal_id": journal.journal_id, "seq": seq, "hash": head}
    assert _both(journal, trusted=trusted).ok
    _forge("run.started", canonical_json({"forged": True}))(journal, attacker)
    report = _both(journal, trusted=trusted)
    assert "history changed below the trusted head" in (report.problem or "")


def test_an_error_past_a_broken_link_is_the_link(journal: Journal, attacker: Attacker) -> None:
    """A handler that fails unexpectedly (here ``int(inf)``) raises as in one pass, unless a
    broken link comes first: one pass would have stopped there."""
    forged = _seq_of(attacker, "segment.applied", -1)
    attacker.set_field(forged, "payload", '{"applied":[],"seg_no":1e400}')
    attacker.rechain(journal.journal_id)
    for parallel in (False, True):
        with pytest.raises(OverflowError):
            verify(journal, remember=False, parallel=parallel)
    _edit_payload("segment.intent")(journal, attacker)
    report = _both(journal)
    assert report.first_bad_seq == _seq_of(attacker, "segment.intent") < forged


def test_writers_are_free_again_after_the_two_passes(journal: Journal, attacker: Attacker) -> None:
    """Writers wait while the two snapshots are taken (see in_two), never after: whether the
    passes were clean or not."""

    def can_write() -> bool:
        db = sqlite3.connect(_path(journal), timeout=0.05, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            db.close()

    seq, head = journal.head()
    genesis = genesis_hash(journal.journal_id)
    assert in_two(_path(journal), genesis, None, seq, head) is not None and can_write()
    attacker.execute("UPDATE operations SET status = 'x' WHERE op_no = 1")
    assert in_two(_path(journal), genesis, None, seq, head) is None and can_write()
    assert in_two(_path(journal), genesis, None, seq, "0" * 64) is None and can_write()
    holder = sqlite3.connect(_path(journal), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    assert not can_write()
    holder.close()
