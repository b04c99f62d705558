"""``verify`` against an attacker with file or superuser access (the triggers are dropped first):
every single-field mutation of a stored event, deleted, swapped and truncated events, an altered
head, edited projections, and a forged history below the head this machine trusted.

The hypothesis tests mutate one generated journal per test, check the verdict, then restore the
journal and check that it verifies again, so the examples stay independent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.canonical import canonical_json
from console.journal import Journal
from console.journal.chain import genesis_hash
from console.journal.verify import VerifyReport, verify

from .gen import Attacker, populate

DB_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
)
HEX64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


def _check(journal: Journal) -> VerifyReport:
    """Verify without reading or writing this machine's trusted head."""
    return verify(journal, remember=False, trusted=None)


@pytest.fixture
def generated(journal: Journal, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Journal:
    # No trusted head for the mutation tests unless a test asks for one.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "fresh-machine"))
    populate(journal, seed=11, runs=3, max_segments=3)
    assert _check(journal).ok
    return journal


@pytest.fixture
def attacker(generated: Journal) -> Iterator[Attacker]:
    a = Attacker(generated.url)
    yield a
    a.close()


def _mutation(field: str, original: Any) -> st.SearchStrategy[Any]:
    """A new value for one column of a stored event (different from the original)."""
    if field == "ts":
        value = st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    elif field == "kind":
        value = (
            st.sampled_from(
                ["annotation", "run.completed", "segment.applied", "checkpoint", "run.paused"]
            )
            | TEXT
        )
    elif field in ("run_id", "corr"):
        value = st.none() | TEXT
    elif field == "actor":
        value = TEXT
    elif field == "payload":
        data = json.loads(original)
        value = st.one_of(
            # the same JSON, other bytes: whitespace or key order
            st.just(json.dumps(data, indent=1)),
            st.just(json.dumps(data, sort_keys=False, separators=(", ", ": "))),
            # other content
            st.dictionaries(st.text(max_size=5), st.integers() | TEXT, max_size=3).map(
                canonical_json
            ),
            st.just(canonical_json({**data, "injected": True})),
            # not JSON at all
            TEXT,
        )
    elif field == "hash":
        value = HEX64
    else:  # pragma: no cover
        raise AssertionError(field)
    return value.filter(lambda v: v != original)


FIELDS = ["ts", "kind", "run_id", "corr", "actor", "payload", "hash"]


@pytest.mark.parametrize("field", FIELDS)
def test_every_single_field_mutation_is_caught_at_its_seq(
    generated: Journal, attacker: Attacker, field: str
) -> None:
    n = generated.head()[0]

    @DB_SETTINGS
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        seq = data.draw(st.integers(1, n), label="seq")
        original = attacker.event(seq)
        value = data.draw(_mutation(field, original[field]), label=field)
        attacker.set_field(seq, field, value)
        try:
            report = _check(generated)
            assert not report.ok
            assert report.first_bad_seq == seq, report.problem
            assert report.problem is not None and f"event {seq}" in report.problem
        finally:
            attacker.set_field(seq, field, original[field])
        assert _check(generated).ok

    run()


def test_a_deleted_event_is_named(generated: Journal, attacker: Attacker) -> None:
    n = generated.head()[0]

    @DB_SETTINGS
    @given(seq=st.integers(1, n))
    def run(seq: int) -> None:
        row = attacker.event(seq)
        attacker.delete(seq)
        try:
            report = _check(generated)
            assert not report.ok
            assert report.first_bad_seq == seq
            if seq < n:
                assert report.problem == f"event {seq} is missing"
            else:  # the last one: the head still names it
                assert "head says event" in (report.problem or "")
        finally:
            attacker.insert(row)
        assert _check(generated).ok

    run()


def test_two_swapped_events_are_caught_at_the_first(generated: Journal, attacker: Attacker) -> None:
    n = generated.head()[0]

    @DB_SETTINGS
    @given(pair=st.lists(st.integers(1, n), min_size=2, max_size=2, unique=True).map(sorted))
    def run(pair: list[int]) -> None:
        i, j = pair
        row_i, row_j = attacker.event(i), attacker.event(j)
        attacker.replace(i, row_j)
        attacker.replace(j, row_i)
        try:
            report = _check(generated)
            assert not report.ok
            assert report.first_bad_seq == i, report.problem
        finally:
            attacker.replace(i, row_i)
            attacker.replace(j, row_j)
        assert _check(generated).ok

    run()


def test_a_truncated_journal_is_caught(
    generated: Journal, attacker: Attacker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    n, head_hash = generated.head()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "trusting-machine"))
    trusted = verify(generated)  # this machine now trusts event n
    assert trusted.ok and trusted.head_seq == n

    @settings(DB_SETTINGS, max_examples=15)
    @given(keep=st.integers(0, n - 1), rewrite_head=st.booleans())
    def run(keep: int, rewrite_head: bool) -> None:
        removed = attacker.delete_after(keep)
        if rewrite_head:  # a careful attacker: the head matches the shortened chain
            new_hash = attacker.event(keep)["hash"] if keep else genesis_hash(generated.journal_id)
            attacker.set_head(keep, new_hash)
        try:
            report = verify(generated)
            assert not report.ok
            assert report.first_bad_seq == keep + 1, report.problem
            if rewrite_head:
                assert "shrank" in (report.problem or "")
            else:
                assert "head says event" in (report.problem or "")
        finally:
            attacker.insert_many(removed)
            attacker.set_head(n, head_hash)
        assert verify(generated).ok

    run()


def test_truncation_without_a_trusted_head_still_breaks_the_projections(
    generated: Journal, attacker: Attacker
) -> None:
    """A fresh machine has nothing to compare with, but the projections remember the tail."""
    n = generated.head()[0]
    last = generated.events(after_seq=n - 1)[0]
    assert last.run_id is not None  # the generated journal ends with a projected event
    for seq in range(n - 2, n + 1):
        attacker.delete(seq)
    attacker.set_head(n - 3, attacker.event(n - 3)["hash"])
    report = _check(generated)
    assert not report.ok
    assert report.first_bad_seq is None
    assert (report.problem or "").startswith("projection runs")


@pytest.mark.parametrize(
    ("seq_delta", "new_hash", "first_bad"),
    [
        (0, "0" * 64, 0),  # same length, another head hash
        (3, None, 1),  # the head claims events that do not exist
        (-2, "prev", -1),  # the head claims fewer events (hash of that event)
    ],
)
def test_an_altered_head_is_caught(
    generated: Journal,
    attacker: Attacker,
    seq_delta: int,
    new_hash: str | None,
    first_bad: int,
) -> None:
    n, head_hash = generated.head()
    target = n + seq_delta
    if new_hash == "prev":
        new_hash = attacker.event(target)["hash"]
    attacker.set_head(target, new_hash or head_hash)
    report = _check(generated)
    assert not report.ok
    assert report.first_bad_seq == n + first_bad
    assert "head" in (report.problem or "")


PROJECTION_EDITS = [
    ("UPDATE runs SET status = 'completed' WHERE status <> 'completed'", "projection runs"),
    ("UPDATE runs SET rows_applied = rows_applied + 1", "rows_applied"),
    ("UPDATE runs SET last_seq = last_seq - 1", "last_seq"),
    ("UPDATE operations SET status = 'reverted' WHERE status = 'applied'", "operations"),
    ("UPDATE operations SET after = '{}' WHERE op_no = 1", "after"),
    ("UPDATE segments SET status = 'applied' WHERE status = 'failed'", "segments"),
    ("UPDATE checkpoints SET payload = '{}'", "checkpoints"),
    ("DELETE FROM operations WHERE op_no = 1", "missing"),
    ("DELETE FROM steps", "steps"),
    (
        "INSERT INTO checkpoints (seq, run_id, ts, payload) VALUES (999999, NULL, 't', '{}')",
        "no event created",
    ),
]


@pytest.mark.parametrize(("statement", "named"), PROJECTION_EDITS)
def test_an_edited_projection_is_caught(
    generated: Journal, attacker: Attacker, statement: str, named: str
) -> None:
    attacker.execute(statement)
    report = _check(generated)
    assert not report.ok
    assert report.first_bad_seq is None  # no event is wrong: a projection row is
    assert named in (report.problem or ""), report.problem
    # The chain alone is intact: --chain-only does not look at projections.
    assert verify(generated, projections=False, remember=False).ok


def test_a_forged_payload_with_a_consistent_chain(generated: Journal, attacker: Attacker) -> None:
    """Recomputed hashes hide an edit from the chain, but not a payload that cannot be read."""
    created = generated.events(kinds=["run.created"], limit=1)[0]
    attacker.set_field(created.seq, "payload", "[]")  # JSON, but not what a run.created is
    attacker.rechain(generated.journal_id)
    report = _check(generated)
    assert not report.ok
    assert report.first_bad_seq == created.seq
    assert "cannot be projected" in (report.problem or "")
    attacker.set_field(created.seq, "payload", "{not json")
    attacker.rechain(generated.journal_id)
    report = _check(generated)
    assert (report.ok, report.first_bad_seq) == (False, created.seq)
    assert "not JSON" in (report.problem or "")


def test_trusted_head_shrink_rewrite_and_growth(
    generated: Journal, attacker: Attacker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "auditor"))
    n, head_hash = generated.head()
    first = verify(generated)
    assert first.ok and first.trusted_seq is None
    again = verify(generated)  # same size: must be the same head
    assert again.ok and again.trusted_seq == n

    # Shrink: the last event removed, the head rewritten to match.
    last = attacker.event(n)
    attacker.delete(n)
    attacker.set_head(n - 1, attacker.event(n - 1)["hash"])
    shrank = verify(generated)
    assert not shrank.ok
    assert shrank.first_bad_seq == n
    assert "shrank" in (shrank.problem or "")
    attacker.insert(last)
    attacker.set_head(n, head_hash)
    assert verify(generated).ok

    # Rewrite history below the trusted head: edit an early event that projects nothing and
    # recompute a consistent chain from scratch.
    note = attacker.event(1)
    assert note["kind"] == "journal.note"
    attacker.set_field(1, "payload", canonical_json({"text": "nothing to see here"}))
    forged_head = attacker.rechain(generated.journal_id)
    rewritten = verify(generated)
    assert not rewritten.ok
    assert rewritten.first_bad_seq == n
    assert "history changed below the trusted head" in (rewritten.problem or "")
    # The forged journal is self-consistent: only the trusted head exposes it.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "another-machine"))
    assert _check(generated).ok
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "auditor"))
    # A failed verify never moves the trusted head: it still fails.
    assert not verify(generated).ok
    attacker.set_field(1, "payload", note["payload"])
    assert attacker.rechain(generated.journal_id) == head_hash
    assert forged_head != head_hash

    # Growth extends the trusted head; the new head becomes the trusted one.
    populate(generated, seed=12, runs=1, max_segments=1)
    grown = verify(generated)
    assert grown.ok, grown.problem
    assert grown.trusted_seq == n
    assert grown.head_seq > n
    assert verify(generated).trusted_seq == grown.head_seq


def test_a_replaced_journal_is_not_the_trusted_one(
    generated: Journal, attacker: Attacker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "auditor"))
    assert verify(generated).ok
    # Same URL, same events, another journal id (and a chain consistent with it).
    new_id = str(uuid.uuid4())
    attacker.execute("UPDATE meta SET value = :v WHERE key = 'journal_id'", v=new_id)
    attacker.rechain(new_id)
    reopened = Journal(generated.url)
    report = verify(reopened)
    assert not report.ok
    assert "journal id differs" in (report.problem or "")
    reopened.close()


def test_verify_reports_counts_and_the_head(journal: Journal) -> None:
    assert _check(journal).ok and _check(journal).events == 0
    populate(journal, seed=5, runs=2, max_segments=2)
    report = _check(journal)
    assert report.ok
    assert (report.head_seq, report.head_hash) == journal.head()
    assert report.events == journal.count_events()
    data = report.as_dict()
    assert data["ok"] is True and data["first_bad_seq"] is None


def test_a_writer_during_verify_is_not_taken_for_tampering(journal: Journal) -> None:
    """Verify reads the events, then the projection tables: both from one snapshot, so a
    run that moves on in between (an apply writing) is not a projection that differs."""
    journal.append("run.created", {"kind": "apply", "rows_total": 10}, run_id="r1")
    journal.append("run.started", {}, run_id="r1")
    other = Journal(journal.url, actor="writer")
    wrote: list[int] = []

    def meanwhile(_read: int, _total: int) -> None:
        if not wrote:
            other.append("run.completed", {}, run_id="r1")
            other.append("run.created", {"kind": "apply"}, run_id="r2")
            wrote.append(1)

    report = verify(journal, remember=False, parallel=False, progress=meanwhile)
    assert wrote and report.ok, report.problem
    assert report.events == 2
    assert verify(journal, remember=False).events == 4
    other.close()


def test_verifies_at_once_each_remember_the_head_safely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several verifies on one machine write the trusted head at once: each through its own
    temporary file (a shared one was renamed away under another's feet)."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    j = Journal(f"sqlite:///{tmp_path / 'j.db'}", actor="a")
    j.append("journal.note", {"text": "x"})
    with ThreadPoolExecutor(8) as pool:
        reports = list(pool.map(lambda _: verify(j, parallel=False), range(32)))
    assert all(r.ok for r in reports), [r.problem for r in reports if not r.ok]
    assert not list((tmp_path / "state").rglob("*.tmp"))
    j.close()
