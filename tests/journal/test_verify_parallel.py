"""``verify`` with the chain checked in a second process: the same report as one pass.

Each case breaks the generated SQLite journal one way (or two, to see which problem comes
first), then compares the two reports field by field.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.canonical import canonical_json
from console.journal import Journal
from console.journal.chain import genesis_hash
from console.journal.verify import (
    _EVENTS_SQL,
    VerifyReport,
    _chain_beside,
    _cursor_batches,
    _Walk,
    _walk,
    verify,
)

from .gen import Attacker, populate, ticking_clock


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """SQLite only: the second process reads the journal file."""
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="alice", clock=ticking_clock())
    populate(j, seed=5, runs=3, max_segments=3)
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


def test_an_intact_journal(journal: Journal) -> None:
    report = _both(journal)
    assert report.ok and report.projections_checked and report.events == journal.head()[0]


def test_the_other_process_walks_the_same_chain(journal: Journal) -> None:
    path = journal.url.split("///", 1)[1]
    genesis = genesis_hash(journal.journal_id)
    seq, head = journal.head()
    db = sqlite3.connect(path)
    here = _walk(
        _cursor_batches(db.cursor(), _EVENTS_SQL),
        genesis=genesis,
        pruned=None,
        trusted_seq=3,
        chain=True,
        memory=None,
        passive_json=True,
        out=_Walk(),
    )
    db.close()
    with _chain_beside(path, genesis, 3) as result:
        there = result(seq, head)
    assert there == here and there.head == head and there.trusted_hash_seen is not None
    with _chain_beside(path, genesis, 3) as result:  # it read another head than the caller
        assert result(seq - 1, head) is None


Breakage = Callable[[Journal, Attacker], None]


def _edit_payload(kind: str) -> Breakage:
    def edit(journal: Journal, attacker: Attacker) -> None:
        seq = _seq_of(attacker, kind)
        attacker.set_field(seq, "payload", canonical_json({"edited": True}))

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
    attacker.delete(_seq_of(attacker, "segment.intent"))


def _head(journal: Journal, attacker: Attacker) -> None:
    attacker.set_head(attacker.head()[0], "0" * 64)


def _projection(journal: Journal, attacker: Attacker) -> None:
    attacker.execute("UPDATE operations SET status = 'reverted' WHERE op_no = 1")


def _unreadable_intent(journal: Journal, attacker: Attacker) -> None:
    _forge("segment.intent", "{not json")(journal, attacker)


BREAKAGES: dict[str, Breakage] = {
    "edited projected payload": _edit_payload("segment.intent"),
    "edited passive payload": _edit_payload("guard.passed"),
    "forged passive payload, not JSON": _forge("run.progress", "[1,"),
    "forged projected payload, not JSON": _unreadable_intent,
    "forged payload that cannot be projected": _forge("segment.applied", "[]"),
    "forged change of a row never created": _forge(
        "segment.applied", canonical_json({"applied": [], "seg_no": 999})
    ),
    # Both passes find a problem: the first by seq wins, the chain's on a tie.
    "broken link before a forged payload": _then(
        _forge("segment.applied", "[]", nth=1), _edit_payload("segment.intent")
    ),
    "broken link after a forged payload": _then(
        _forge("segment.applied", "[]"), _edit_payload("guard.passed")
    ),
    "broken link at a forged payload": _then(
        _forge("segment.intent", "[]"), _edit_payload("segment.intent")
    ),
    "deleted event": _delete,
    "altered head": _head,
    "edited projection": _projection,
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
    _forge("guard.passed", canonical_json({"forged": True}))(journal, attacker)
    report = _both(journal, trusted=trusted)
    assert "history changed below the trusted head" in (report.problem or "")


def test_an_error_past_a_broken_link_is_the_link(journal: Journal, attacker: Attacker) -> None:
    """A handler that fails unexpectedly (here ``int(inf)``) raises as in one pass, unless a
    broken link comes first: one pass would have stopped there."""
    forged = _seq_of(attacker, "segment.applied", nth=1)
    attacker.set_field(forged, "payload", '{"applied":[],"seg_no":1e400}')
    attacker.rechain(journal.journal_id)
    for parallel in (False, True):
        with pytest.raises(OverflowError):
            verify(journal, remember=False, parallel=parallel)
    _edit_payload("segment.intent")(journal, attacker)
    report = _both(journal)
    assert report.first_bad_seq == _seq_of(attacker, "segment.intent") < forged
