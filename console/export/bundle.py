"""The JSON evidence bundle (``backout-evidence/1``): a run's events, those of its rollbacks
and fixes, and the runbook and approval events about them, each with the hash of the event
before it, so anyone can re-hash them without the journal (``verify.py``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from console.journal.chain import genesis_hash
from console.journal.store import T_EVENTS, T_RUNS, Journal, StoredEvent, format_ts, utcnow

FORMAT = "backout-evidence/1"
_PAGE = 2000
# Runbook and approval events about a run's executions; gate refusals may carry no run id.
_EXEC_KINDS = (
    "runbook.*",
    "approval.*",
    "gate.refused",
    "escalation",
    "target.locked",
    "target.unlocked",
)

NOTE = (
    "Each included event re-hashes to its stored hash from the previous event's hash, and "
    "consecutive included events (seq and seq+1) are linked; this proves they are the events "
    "the journal hashed, in that order. It does not prove the filtered ranges are complete or "
    "unaltered: verify the whole journal for that (backout journal verify)."
)


def events_digest(events: Iterable[dict[str, Any]]) -> str:
    """sha256 over the included events' ``seq hash`` lines: names this exact evidence."""
    lines = "".join(f"{e['seq']} {e['hash']}\n" for e in events)
    return hashlib.sha256(lines.encode()).hexdigest()


def related_runs(journal: Journal, run_id: str) -> list[Any]:
    """The run's rollbacks, fixes and reapplies, and theirs (a rollback can be rolled back)."""
    found: list[Any] = []
    seen = {run_id}
    frontier = [run_id]
    with journal.read() as conn:
        while frontier:
            rows = conn.execute(
                select(T_RUNS)
                .where(T_RUNS.c.parent_run.in_(frontier))
                .order_by(T_RUNS.c.created_at, T_RUNS.c.id)
            ).all()
            frontier = []
            for row in rows:
                if row.id not in seen:
                    seen.add(row.id)
                    frontier.append(row.id)
                    found.append(row)
    return found


def _run_events(journal: Journal, run_id: str, head_seq: int) -> list[StoredEvent]:
    out: list[StoredEvent] = []
    after = 0
    while True:
        page = journal.events(run_id, after_seq=after, before_seq=head_seq + 1, limit=_PAGE)
        out.extend(page)
        if len(page) < _PAGE:
            return out
        after = page[-1].seq


def _exec_events(
    journal: Journal, execs: set[str], after_seq: int, head_seq: int
) -> list[StoredEvent]:
    """Run-less runbook/approval events whose ``exec`` is one of the run's executions."""
    out: list[StoredEvent] = []
    after = after_seq
    while True:
        page = journal.events(
            None, after_seq=after, before_seq=head_seq + 1, limit=_PAGE, kinds=_EXEC_KINDS
        )
        out.extend(e for e in page if e.run_id is None and e.payload.get("exec") in execs)
        if len(page) < _PAGE:
            return out
        after = page[-1].seq


def _prev_hashes(journal: Journal, by_seq: dict[int, StoredEvent]) -> dict[int, str]:
    """The stored hash of event ``seq - 1`` for each seq (genesis for event 1).

    Inside a run of consecutive included events it is already at hand; only the first event
    after each left-out range needs a read."""
    out = {s: by_seq[s - 1].hash for s in by_seq if s - 1 in by_seq}
    seqs = list(by_seq)
    wanted = sorted(s - 1 for s in seqs if s > 1 and s - 1 not in by_seq)
    with journal.read() as conn:
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            rows = conn.execute(
                select(T_EVENTS.c.seq, T_EVENTS.c.hash).where(T_EVENTS.c.seq.in_(chunk))
            ).all()
            out.update({int(r.seq) + 1: str(r.hash) for r in rows})
    if 1 in seqs:
        out[1] = genesis_hash(journal.journal_id)
    return out


def _gaps(seqs: list[int], head_seq: int) -> list[dict[str, int]]:
    """Ranges of seqs left out, from event 1 to the head."""
    gaps: list[dict[str, int]] = []
    expected = 1
    for s in [*seqs, head_seq + 1]:
        if s > expected:
            gaps.append({"from": expected, "to": s - 1, "count": s - expected})
        expected = s + 1
    return gaps


def build_bundle(journal: Journal, run_ref: str, exported_by: str) -> dict[str, Any]:
    from console.journal.summary import run_summary

    # The head first: events appended while exporting are left out, so the head stays true.
    head_seq, head_hash = journal.head()
    run = journal.get_run(run_ref)
    related = related_runs(journal, run.id)
    run_ids = [run.id, *(r.id for r in related)]
    by_seq: dict[int, StoredEvent] = {}
    for rid in run_ids:
        for e in _run_events(journal, rid, head_seq):
            by_seq[e.seq] = e
    execs = {
        str(e.payload["exec"])
        for e in by_seq.values()
        if e.kind == "runbook.started" and e.payload.get("exec")
    }
    if execs and by_seq:
        for e in _exec_events(journal, execs, min(by_seq) - 1, head_seq):
            by_seq[e.seq] = e
    seqs = sorted(by_seq)
    prev = _prev_hashes(journal, by_seq)
    events = [
        {
            "seq": e.seq,
            "ts": e.ts,
            "kind": e.kind,
            "run_id": e.run_id,
            "corr": e.corr,
            "actor": e.actor,
            "payload_text": e.payload_text,
            "hash": e.hash,
            "prev_hash": prev[e.seq],
        }
        for e in (by_seq[s] for s in seqs)
    ]
    gaps = _gaps(seqs, head_seq)
    return {
        "format": FORMAT,
        "journal_id": journal.journal_id,
        "journal": journal.display_url,
        "exported_at": format_ts(utcnow()),
        "exported_by": exported_by,
        "run": run_summary(run),
        "related_runs": [run_summary(r) for r in related],
        "head": {"seq": head_seq, "hash": head_hash},
        "filtered": {
            "included": len(events),
            "left_out": sum(g["count"] for g in gaps),
            "rule": (
                "included: every event of the run and of its related runs (run_id), and "
                "run-less runbook/approval events of their runbook executions; left out: "
                "every other event of the journal up to the head (other runs, journal-wide "
                "events)"
            ),
            "left_out_ranges": gaps,
        },
        "digest": events_digest(events),
        "note": NOTE,
        "events": events,
    }
