"""The journal store on SQLite and PostgreSQL: chained appends, projections written in the same
transaction, and the keyset-paged reads the console relies on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from console.canonical import jsonable
from console.errors import BadInput, Exit, NotFound
from console.journal import Journal, StoredEvent
from console.journal.chain import event_bytes, genesis_hash, next_hash
from console.journal.verify import verify

from .gen import populate, ticking_clock


def _created(total: int = 3, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "changeset": "eu-price-uplift",
        "version": 3,
        "digest": "d" * 64,
        "automation": "n8n:workflow/42",
        "target": "sqlite:///crm.db",
        "rows_total": total,
        "steps": [
            {
                "step_no": 1,
                "name": "raise",
                "table": "products",
                "key": ["sku"],
                "operations": total,
            }
        ],
    }
    payload.update(extra)
    return payload


def _op(op_no: int, sku: str) -> dict[str, Any]:
    return {
        "op_no": op_no,
        "table": "products",
        "op": "update",
        "key": {"sku": sku},
        "before": {"sku": sku, "price": Decimal("10.00")},
        "after": {"sku": sku, "price": Decimal("10.50")},
        "inverse": {"op": "update", "set": {"price": Decimal("10.00")}},
        "idem": f"idem-{op_no}",
    }


def test_generated_journal_is_chained_counted_and_verifies(journal: Journal) -> None:
    appended = populate(journal, seed=7)
    stored = journal.events(limit=10_000)
    assert [e.seq for e in stored] == list(range(1, len(appended) + 1))
    assert journal.count_events() == len(appended)
    # The chain, recomputed independently from the stored columns.
    prev = genesis_hash(journal.journal_id)
    for e, (kind, payload, run_id, corr) in zip(stored, appended, strict=True):
        assert (e.kind, e.run_id, e.corr, e.actor) == (kind, run_id, corr, "alice")
        assert e.payload == jsonable(payload)
        prev = next_hash(
            prev, event_bytes(e.seq, e.ts, e.kind, e.run_id, e.corr, e.actor, e.payload_text)
        )
        assert e.hash == prev
    assert journal.head() == (len(appended), prev)
    report = verify(journal)
    assert report.ok, report.problem
    assert report.projections_checked
    assert report.events == len(appended)


def test_canonical_payload_and_utc_timestamps(journal_url: str) -> None:
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    j = Journal(journal_url, actor="bob", clock=lambda: moment)
    payload = {
        "z": 1,
        "a": Decimal("1.10"),
        "when": dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC),
        "raw": b"\x00\xff",
        "text": "ünïcødé ✓",
    }
    ev = j.append("annotation", payload)
    assert ev.payload_text == (
        '{"a":"1.10","raw":{"$b64":"AP8="},"text":"ünïcødé ✓",'
        '"when":"2026-01-01T12:00:00+00:00","z":1}'
    )
    assert ev.ts == "2026-01-02T03:04:05.000006Z"
    [read_back] = j.events()
    assert read_back == ev
    j.close()


def test_projections_follow_the_events(journal: Journal) -> None:
    r, rb = "r-apply", "r-rollback"
    with journal.write() as w:
        w.append("run.created", _created(3), run_id=r, corr="c1")
        w.append("run.started", {"pid": 1}, run_id=r, corr="c1")
        w.append(
            "segment.intent",
            {"seg_no": 1, "step_no": 1, "ops": [_op(1, "A"), _op(2, "B")]},
            run_id=r,
            corr="c1",
        )
    run = journal.get_run(r)
    assert (run.status, run.rows_total, run.corr, run.actor) == ("running", 3, "c1", "alice")
    assert run.started_at is not None
    assert [o.status for o in journal.operations(r)] == ["pending", "pending"]
    with journal.write() as w:
        w.append("segment.applied", {"seg_no": 1, "applied": [1, 2]}, run_id=r, corr="c1")
        w.append("checkpoint", {"seg_no": 1, "op_no": 2, "done": 2}, run_id=r, corr="c1")
        w.append("segment.intent", {"seg_no": 2, "step_no": 1, "ops": [_op(3, "C")]}, run_id=r)
        w.append("op.conflict", {"op_no": 3, "detail": {"now": {"price": "9"}}}, run_id=r)
        w.append("segment.applied", {"seg_no": 2, "applied": []}, run_id=r)
        w.append("guard.tripped", {"reason": "invariant broken"}, run_id=r)
    run = journal.get_run(r)
    assert (run.status, run.reason) == ("paused", "invariant broken")
    last = journal.append("run.completed", {}, run_id=r, corr="c1")
    run = journal.get_run(r)
    assert run.status == "completed"
    assert run.reason is None
    assert run.finished_at == last.ts
    assert (run.rows_applied, run.rows_conflict, run.rows_failed) == (2, 1, 0)
    assert run.last_seq == last.seq
    ops = journal.operations(r)
    assert [(o.op_no, o.status) for o in ops] == [(1, "applied"), (2, "applied"), (3, "conflict")]
    assert ops[0].before == '{"price":"10.00","sku":"A"}'
    segs = journal.segments(r)
    assert [(s.seg_no, s.status, s.first_op, s.last_op) for s in segs] == [
        (1, "applied", 1, 2),
        (2, "applied", 3, 3),
    ]
    assert [(s.step_no, s.name, s.tbl) for s in journal.steps(r)] == [(1, "raise", "products")]
    # A failed segment fails its operations; a rollback run marks the parent's ops reverted.
    with journal.write() as w:
        w.append("run.created", _created(2, kind="rollback", parent_run=r), run_id=rb)
        w.append("segment.intent", {"seg_no": 1, "step_no": 1, "ops": [_op(1, "X")]}, run_id=rb)
        w.append("segment.failed", {"seg_no": 1, "error": "boom", "ops": [1]}, run_id=rb)
        w.append("segment.intent", {"seg_no": 2, "step_no": 1, "ops": [_op(2, "Y")]}, run_id=rb)
        w.append(
            "segment.applied",
            {"seg_no": 2, "applied": [2], "parent_run": r, "reverted_ops": [1, 2]},
            run_id=rb,
        )
        w.append("run.failed", {"reason": "boom"}, run_id=rb)
    failed = journal.get_run(rb)
    assert (failed.kind, failed.parent_run) == ("rollback", r)
    assert (failed.status, failed.reason, failed.rows_failed, failed.rows_applied) == (
        "failed",
        "boom",
        1,
        1,
    )
    assert [o.status for o in journal.operations(rb)] == ["failed", "applied"]
    assert [x.id for x in journal.runs(kind="rollback")] == [rb]
    assert journal.get_run(r).rows_reverted == 2
    assert journal.operation_status_counts(r) == {"reverted": 2, "conflict": 1}
    assert verify(journal).ok


def test_a_failed_transaction_writes_nothing(journal: Journal) -> None:
    journal.append("run.created", _created(), run_id="r1")
    head = journal.head()
    seen: list[list[StoredEvent]] = []
    journal.sinks.append(lambda evs: seen.append(list(evs)))
    with pytest.raises(RuntimeError), journal.write() as w:
        w.append("run.started", {}, run_id="r1")
        w.append("run.completed", {}, run_id="r1")
        raise RuntimeError("crash before commit")
    assert journal.head() == head
    assert journal.count_events() == 1
    assert journal.get_run("r1").status == "planned"
    assert seen == []
    # The next write continues the chain from the committed head.
    with journal.write() as w:
        w.append("run.started", {}, run_id="r1")
        w.append("annotation", {"text": "hi"}, run_id="r1")
    assert [[e.kind for e in batch] for batch in seen] == [["run.started", "annotation"]]
    assert journal.head()[0] == 3
    assert verify(journal).ok


def test_runs_keyset_pages_by_time_and_status(journal_url: str) -> None:
    now = [dt.datetime(2026, 11, 1, tzinfo=dt.UTC)]
    j = Journal(journal_url, actor="alice", clock=lambda: now[0])
    statuses = ["completed", "failed", "paused", "completed", "running", "failed", "completed"]
    for i, status in enumerate(statuses):
        # run-1 and run-2 (and run-4 and run-5) share a timestamp: the id breaks the tie.
        now[0] = dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i - i % 3 // 2)
        rid = f"run-{i}"
        with j.write() as w:
            w.append("run.created", _created(drill=(i == 4)), run_id=rid)
            w.append("run.started", {}, run_id=rid)
            kind = {
                "completed": "run.completed",
                "failed": "run.failed",
                "paused": "run.paused",
                "running": "annotation",
            }[status]
            w.append(kind, {"reason": "x"}, run_id=rid)
    everything = j.runs(limit=100, drills=None)
    order = [(r.created_at, r.id) for r in everything]
    assert order == sorted(order, reverse=True)
    assert len(everything) == 7
    assert len({r.created_at for r in everything}) < 7, "the test needs equal timestamps"

    def pages(**kw: Any) -> list[list[str]]:
        out: list[list[str]] = []
        before = None
        while True:
            page = j.runs(limit=2, before=before, **kw)
            if not page:
                return out
            out.append([r.id for r in page])
            before = (page[-1].created_at, page[-1].id)

    all_pages = pages(drills=None)
    assert [rid for p in all_pages for rid in p] == [r.id for r in everything]
    assert all(len(p) == 2 for p in all_pages[:-1])
    failed = pages(status=["failed", "paused"])
    assert sorted(rid for p in failed for rid in p) == ["run-1", "run-2", "run-5"]
    completed = [rid for p in pages(status=["completed"]) for rid in p]
    assert completed == ["run-6", "run-3", "run-0"]
    # Drill runs are kept apart: hidden by default, listed alone with drills=True.
    assert "run-4" not in [r.id for r in j.runs(limit=100)]
    assert [r.id for r in j.runs(limit=100, drills=True)] == ["run-4"]
    assert j.count_runs() == 6
    assert j.count_runs(drills=None) == 7
    assert j.status_counts() == {"completed": 3, "failed": 2, "paused": 1}
    assert j.runs(kind="rollback", drills=None) == []
    j.close()


def test_events_keyset_pages_and_kind_filters(journal: Journal) -> None:
    r, other = "run-events", "run-other"
    with journal.write() as w:
        w.append("run.created", _created(40), run_id=r)
        w.append("run.created", _created(1), run_id=other)
        w.append("run.started", {}, run_id=r)
    for seg in range(1, 11):
        with journal.write() as w:
            w.append("segment.intent", {"seg_no": seg, "step_no": 1, "ops": []}, run_id=r)
            w.append("annotation", {"text": "elsewhere"}, run_id=other)
            w.append("segment.applied", {"seg_no": seg, "applied": []}, run_id=r)
            w.append("checkpoint", {"seg_no": seg, "op_no": 0, "done": 0}, run_id=r)
    journal.append("run.completed", {}, run_id=r)
    mine = journal.events(r, limit=1000)
    assert len(mine) == journal.count_events(r) == 2 + 30 + 1
    assert all(e.run_id == r for e in mine)
    # Forward pages by (run_id, seq) with after_seq.
    collected: list[int] = []
    after = 0
    while page := journal.events(r, after_seq=after, limit=7):
        assert len(page) <= 7
        collected += [e.seq for e in page]
        after = page[-1].seq
    assert collected == [e.seq for e in mine]
    # Backward pages with before_seq and newest_first.
    backwards: list[int] = []
    before: int | None = None
    while page := journal.events(r, before_seq=before, limit=5, newest_first=True):
        backwards += [e.seq for e in page]
        before = page[-1].seq
    assert backwards == collected[::-1]
    # A window.
    window = journal.events(r, after_seq=collected[3], before_seq=collected[9])
    assert [e.seq for e in window] == collected[4:9]
    # Kinds: exact, prefix, mixed; counts agree with the pages.
    segs = journal.events(r, kinds=["segment.*"], limit=1000)
    assert {e.kind for e in segs} == {"segment.intent", "segment.applied"}
    assert len(segs) == 20 == journal.count_events(r, kinds=["segment.*"])
    mixed = journal.events(r, kinds=["run.*", "checkpoint"], limit=1000)
    assert {e.kind for e in mixed} == {"run.created", "run.started", "run.completed", "checkpoint"}
    assert journal.count_events(r, kinds=["checkpoint"]) == 10
    assert journal.events(r, kinds=["run_*"]) == [], "LIKE wildcards in a prefix are literal"
    assert journal.events(r, kinds=["segment"]) == [], "without * a kind is exact"
    paged_segs: list[int] = []
    after = 0
    while page := journal.events(r, kinds=["segment.*"], after_seq=after, limit=3):
        paged_segs += [e.seq for e in page]
        after = page[-1].seq
    assert paged_segs == [e.seq for e in segs]
    # Jump to a position: the seq of the n-th matching event.
    assert journal.event_at(r, 0, ["checkpoint"]) == next(
        e.seq for e in mixed if e.kind == "checkpoint"
    )
    assert journal.event_at(r, 5) == collected[5]
    assert journal.event_at(r, 10_000) == 0
    # Without a run: every event of the journal.
    assert journal.count_events() == journal.head()[0]
    assert journal.count_events(other) == 11


def test_operations_pages_counts_and_status_filter(journal: Journal) -> None:
    r = "run-ops"
    with journal.write() as w:
        w.append("run.created", _created(25), run_id=r)
        for seg in range(5):
            ops = [_op(seg * 5 + i + 1, f"S{seg * 5 + i}") for i in range(5)]
            w.append("segment.intent", {"seg_no": seg + 1, "step_no": 1, "ops": ops}, run_id=r)
        w.append("segment.applied", {"seg_no": 1, "applied": [1, 2, 3, 4, 5]}, run_id=r)
        w.append("op.failed", {"op_no": 7, "detail": {"error": "x"}}, run_id=r)
        w.append("op.skipped", {"op_no": 8, "detail": {"reason": "y"}}, run_id=r)
    assert journal.count_operations(r) == 25
    forward: list[int] = []
    after = 0
    while page := journal.operations(r, after_op=after, limit=4):
        forward += [o.op_no for o in page]
        after = page[-1].op_no
    assert forward == list(range(1, 26))
    backward: list[int] = []
    after = 0
    while page := journal.operations(r, after_op=after, limit=6, newest_first=True):
        backward += [o.op_no for o in page]
        after = page[-1].op_no
    assert backward == list(range(25, 0, -1))
    pending = journal.operations(r, status=["pending"], limit=100)
    assert len(pending) == journal.count_operations(r, status=["pending"]) == 18
    assert [o.op_no for o in journal.operations(r, status=["failed", "skipped"])] == [7, 8]
    assert journal.operation_status_counts(r) == {
        "applied": 5,
        "failed": 1,
        "skipped": 1,
        "pending": 18,
    }
    run = journal.get_run(r)
    assert (run.rows_applied, run.rows_failed, run.rows_skipped) == (5, 1, 1)


def test_get_run_by_prefix_and_clean_errors(journal: Journal) -> None:
    for rid in ("abc123", "abd456"):
        journal.append("run.created", _created(), run_id=rid)
    assert journal.get_run("abc").id == "abc123"
    assert journal.get_run("abd456").id == "abd456"
    with pytest.raises(BadInput, match="ambiguous") as ambiguous:
        journal.get_run("ab")
    assert ambiguous.value.exit_code == Exit.BAD_INPUT
    with pytest.raises(NotFound, match="no run 'zzz'") as missing:
        journal.get_run("zzz")
    assert missing.value.exit_code == Exit.BAD_INPUT
    # LIKE wildcards in a prefix are literal.
    with pytest.raises(NotFound):
        journal.get_run("a_c")


def test_schema_is_idempotent_and_shared(journal_url: str) -> None:
    first = Journal(journal_url, actor="a")
    first.append("annotation", {"text": "one"})
    second = Journal(journal_url, actor="b")  # creates nothing new, upgrades nothing
    assert second.journal_id == first.journal_id
    second.append("annotation", {"text": "two"})
    assert first.head() == second.head()
    assert [e.actor for e in first.events()] == ["a", "b"]
    third = Journal(journal_url, create=False)
    assert third.journal_id == first.journal_id
    assert verify(third).ok
    for j in (first, second, third):
        j.close()


def test_opening_something_that_is_not_a_journal(tmp_path: Any) -> None:
    with pytest.raises(BadInput, match="not supported"):
        Journal("mysql://nobody@localhost/x")
    empty = tmp_path / "empty.db"
    import sqlite3

    sqlite3.connect(empty).execute("CREATE TABLE meta (key TEXT, value TEXT)").connection.close()
    with pytest.raises(BadInput, match="not a backout journal"):
        Journal(str(empty), create=False)


def test_sinks_see_committed_events_in_order(journal: Journal) -> None:
    batches: list[list[int]] = []
    journal.sinks.append(lambda evs: batches.append([e.seq for e in evs]))
    populate(journal, seed=3, runs=1, max_segments=2)
    flat = [s for b in batches for s in b]
    assert flat == list(range(1, journal.head()[0] + 1))
    assert all(b == sorted(b) for b in batches)


def test_a_clock_in_another_timezone_is_stored_as_utc(journal_url: str) -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    j = Journal(journal_url, clock=ticking_clock(dt.datetime(2026, 3, 1, 1, 30, tzinfo=cet)))
    ev = j.append("annotation", {})
    assert ev.ts == "2026-03-01T00:30:00.000000Z"
    j.close()


def test_a_drill_handle_stamps_every_event_and_flags_its_runs(journal: Journal) -> None:
    """Events appended through a drill's handle carry its id, its runs are flagged, and the
    chain still verifies; the same journal's real runs stay unflagged."""
    drill = Journal(journal.url, actor="trainee", clock=ticking_clock(), drill="d-42")
    try:
        drill.append("run.created", _created(), run_id="drill-run")
        drill.append("annotation", {"text": "looks wrong"}, run_id="drill-run")
    finally:
        drill.close()
    journal.append("run.created", _created(), run_id="real-run")
    events = list(journal.events(run_id="drill-run"))
    assert [e.payload["drill"] for e in events] == ["d-42", "d-42"]
    assert "drill" not in next(iter(journal.events(run_id="real-run"))).payload
    assert [r.id for r in journal.runs(drills=True)] == ["drill-run"]
    assert [r.id for r in journal.runs(drills=False)] == ["real-run"]
    assert verify(journal).ok


def test_a_sqlite_journal_commit_is_on_disk_when_it_returns(tmp_path: Any) -> None:
    """The write-ahead protocol needs an intent durable before the target write: in WAL mode
    ``synchronous=NORMAL`` leaves the last commits to a power loss (the target's write, in
    another database, may stay), ``FULL`` syncs the WAL at every commit. Every connection
    the journal opens, read or write, is set so."""
    journal = Journal(str(tmp_path / "j.db"), actor="alice")
    try:
        with journal.write() as w:
            w.append("annotation", {"text": "x"})
            assert w.conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert w.conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        with journal.read() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        journal.close()


@pytest.mark.parametrize("enabled", [True, False])
def test_a_write_pauses_the_cyclic_collector_and_leaves_it_as_it_found_it(
    journal: Journal, enabled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flush runs with no cyclic collection (it makes thousands of containers and no
    cycle); afterwards the collector is as it was: the console disables it on its own terms."""
    import gc

    from console.journal import store

    seen: list[bool] = []
    real = store.Writer._write_out

    def spy(self: store.Writer, finish: bool) -> None:
        seen.append(gc.isenabled())
        real(self, finish)

    monkeypatch.setattr(store.Writer, "_write_out", spy)
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with journal.write() as w:
            w.append("journal.note", {"text": "paused"})
        assert seen == [False]
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert [e.payload["text"] for e in journal.events() if e.kind == "journal.note"] == ["paused"]


def test_opening_a_current_sqlite_journal_waits_for_no_writer(tmp_path: Path) -> None:
    """`backout runs` or `show` opens the journal while an apply holds the write lock: an
    up-to-date schema is read without the lock, so they do not queue behind it."""
    import sqlite3
    import time

    path = tmp_path / "j.db"
    Journal(f"sqlite:///{path}", actor="a").close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        j = Journal(f"sqlite:///{path}", actor="b")
        assert j.runs(limit=5) == []
        assert time.monotonic() - started < 10  # the busy timeout is 30 s
        j.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
