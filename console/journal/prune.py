"""``backout journal prune``: drop the payloads of old events, keep the chain verifiable.

An event's hash covers its payload text, so a pruned event keeps its columns and its hash and
its payload becomes a tombstone ``{"payload_sha256", "pruned": true, "pruned_by": S}``. The
prune appends one ``journal.pruned`` event (seq ``S``, in the chain like any other) that
attests what it removed:

- ``ranges``: the seqs pruned; ``events_sha256``: sha256 over them, in order, of each one's
  columns with its payload's sha256 in place of the payload, and its hash. ``verify`` cannot
  re-hash a tombstone, so it takes a pruned event's stored hash as the link and checks the lot
  against this digest when it reaches ``S``: an edited tombstone, column or hash, a tombstone
  outside the ranges, a missing event all fail.
- ``state_sha256``: the digest of the projection rows the pruned events touched, as they stood
  at ``S`` (kept in ``pruned_state``). ``verify`` replays projections from those rows onward.

Before pruning, each pruned event's link to its predecessor is re-hashed, so a checkpoint
never attests a chain that was already broken. Runs not finished, runs with an open runbook
execution and events newer than the cut are never pruned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection

from console.canonical import canonical_json
from console.errors import Blocked, JournalTampered
from console.journal import models
from console.journal.chain import event_bytes, genesis_hash, next_hash
from console.journal.projections import PRIMARY_KEYS, Change, EventView, Insert, project
from console.journal.store import T_EVENTS, T_EXECS, T_RUNS, TABLES, Journal, format_ts

PRUNED_KIND = "journal.pruned"
TOMBSTONE_PREFIX = '{"payload_sha256":"'
# Statuses after which a run or a runbook execution writes nothing more of its own. Not
# ``failed``: such a run can still be resumed, which reloads its journaled change set.
FINISHED_RUNS = ("completed", "rolled_back", "rollback_partial")
OPEN_EXECS = ("active", "running", "awaiting_approval", "blocked")

T_STATE = models.table_of(models.PrunedState)
T_PERMITS = models.table_of(models.PrunePermit)
_CHUNK = 500


def tombstone(payload_sha256: str, prune_seq: int) -> str:
    value = {"payload_sha256": payload_sha256, "pruned": True, "pruned_by": prune_seq}
    return canonical_json(value)


def events_digest_line(
    seq: int,
    ts: str,
    kind: str,
    run_id: str | None,
    corr: str | None,
    actor: str,
    payload_sha256: str,
    hash_: str,
) -> bytes:
    """What a checkpoint attests of one pruned event: every column, its payload by digest."""
    body = event_bytes(seq, ts, kind, run_id, corr, actor, f'"{payload_sha256}"')
    return body + f" {hash_}\n".encode()


def state_digest(rows: Iterable[tuple[str, str, str]]) -> str:
    """sha256 of ``(table, key_text, row)`` triples, in sorted order."""
    h = hashlib.sha256()
    for tbl, key_text, row in sorted(rows):
        h.update(f"{tbl}\t{key_text}\t{row}\n".encode())
    return h.hexdigest()


@dataclass
class PrunePlan:
    before: str
    runs: list[str] = field(default_factory=list)
    kept: list[dict[str, str]] = field(default_factory=list)  # {run, reason}
    events: int = 0
    bytes: int = 0


@dataclass
class PruneReport:
    plan: PrunePlan
    dry_run: bool
    seq: int | None = None  # the journal.pruned event
    state_rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self.plan)
        out.update(dry_run=self.dry_run, seq=self.seq, state_rows=self.state_rows)
        return out


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


# Says why a finished run must be kept all the same (its target's environment keeps longer),
# given the run's id, target and finish time; None lets it go.
KeepRule = Callable[[str, str, str], str | None]


def _select_runs(
    conn: Connection, before: str, plan: PrunePlan, keep: KeepRule | None = None
) -> None:
    """Runs created before the cut: prunable when finished before it with no open execution."""
    rows = conn.execute(
        select(T_RUNS.c.id, T_RUNS.c.status, T_RUNS.c.finished_at, T_RUNS.c.target)
        .where(T_RUNS.c.created_at < before)
        .order_by(T_RUNS.c.created_at, T_RUNS.c.id)
    ).all()
    open_execs = dict(
        conn.execute(
            select(T_EXECS.c.run_id, T_EXECS.c.id).where(T_EXECS.c.status.in_(OPEN_EXECS))
        ).all()
    )
    for run_id, status, finished_at, target in rows:
        longer = keep(run_id, target, finished_at) if keep and finished_at else None
        if status not in FINISHED_RUNS or finished_at is None:
            plan.kept.append({"run": run_id, "reason": f"not finished (status {status})"})
        elif finished_at >= before:
            plan.kept.append({"run": run_id, "reason": "finished after the cut"})
        elif run_id in open_execs:
            plan.kept.append(
                {"run": run_id, "reason": f"runbook execution {open_execs[run_id]} is open"}
            )
        elif longer is not None:
            plan.kept.append({"run": run_id, "reason": longer})
        else:
            plan.runs.append(run_id)


_CANDIDATES = (
    "SELECT e.seq, e.ts, e.kind, e.run_id, e.corr, e.actor, e.payload, e.hash, p.hash "
    "FROM events e LEFT JOIN events p ON p.seq = e.seq - 1 "
    "WHERE e.run_id IN (MARKS) AND e.ts < :before AND e.kind <> :pruned_kind "
    "AND substr(e.payload, 1, 19) <> :tombstone ORDER BY e.seq"
)


def _candidates(conn: Connection, runs: Sequence[str], before: str) -> list[Any]:
    """The events to prune (not yet pruned), with the hash of the event before each."""
    out: list[Any] = []
    fixed = {"before": before, "pruned_kind": PRUNED_KIND, "tombstone": TOMBSTONE_PREFIX}
    for chunk in _chunks(runs):
        params = {f"r{i}": r for i, r in enumerate(chunk)}
        sql = _CANDIDATES.replace("MARKS", ", ".join(f":{k}" for k in params))
        out.extend(conn.execute(text(sql), {**params, **fixed}).all())
    out.sort(key=lambda r: r[0])
    return out


def _check_links(rows: Sequence[Any], genesis: str) -> None:
    for seq, ts, kind, run_id, corr, actor, payload, stored, before in rows:
        prev = genesis if seq == 1 else before
        body = event_bytes(seq, ts, kind, run_id, corr, actor, payload)
        if prev is None or next_hash(prev, body) != stored:
            raise JournalTampered(
                f"event {seq} does not match its hash; nothing was pruned "
                "(run `backout journal verify`)."
            )


def _key(change: Change) -> tuple[Any, ...]:
    pk = PRIMARY_KEYS[change.table]
    values = change.row if isinstance(change, Insert) else change.where
    return tuple(values[c] for c in pk)


def _touched(rows: Sequence[Any]) -> dict[str, set[tuple[Any, ...]]]:
    """The projection rows the events' handlers touch (and their runs' ``last_seq``)."""
    touched: dict[str, set[tuple[Any, ...]]] = {}
    for seq, ts, kind, run_id, corr, actor, payload, _h, _p in rows:
        data = json.loads(payload)
        view = EventView(seq, ts, kind, run_id, actor, corr, data if isinstance(data, dict) else {})
        for change in project(view):
            touched.setdefault(change.table, set()).add(_key(change))
        if run_id is not None:
            touched.setdefault("runs", set()).add((run_id,))
    return touched


def _state_rows(
    conn: Connection, touched: Mapping[str, set[tuple[Any, ...]]]
) -> list[tuple[str, str, str]]:
    """``(table, key_text, row)`` of the touched rows as they stand now."""
    out: list[tuple[str, str, str]] = []
    for name, keys in touched.items():
        table = TABLES[name]
        pk = PRIMARY_KEYS[name]
        firsts = sorted({k[0] for k in keys})
        for chunk in _chunks(firsts):
            stmt = select(table).where(table.c[pk[0]].in_(list(chunk)))
            for row in conn.execute(stmt).mappings():
                key = tuple(row[c] for c in pk)
                if key in keys:
                    out.append((name, canonical_json(list(key)), canonical_json(dict(row))))
    return out


def _ranges(seqs: Sequence[int]) -> list[list[int]]:
    ranges: list[list[int]] = []
    for s in seqs:
        if ranges and ranges[-1][1] == s - 1:
            ranges[-1][1] = s
        else:
            ranges.append([s, s])
    return ranges


def _require_admin(conn: Connection, actor: str) -> None:
    """On PostgreSQL only the journal's owner role may prune (the database enforces it too)."""
    if conn.dialect.name != "postgresql":
        return
    allowed = conn.execute(
        text("SELECT has_table_privilege(current_user, 'prune_permits', 'INSERT')")
    ).scalar()
    if not allowed:
        raise Blocked(
            f"{actor} may not prune this journal: only members of the journal's owner role "
            "(`backout journal setup`) may."
        )


def prune(
    journal: Journal,
    before: dt.datetime,
    *,
    dry_run: bool = False,
    reason: str = "",
    policy_version: int = 0,
    policy_digest: str = "",
    keep: KeepRule | None = None,
) -> PruneReport:
    """Prune the payloads of events older than ``before`` of finished runs (one transaction);
    ``keep`` may hold back a run all the same (a longer retention for its environment)."""
    cut = format_ts(before)
    plan = PrunePlan(before=cut)
    report = PruneReport(plan=plan, dry_run=dry_run)
    if dry_run:
        with journal.read() as conn:
            _select_runs(conn, cut, plan, keep)
            rows = _candidates(conn, plan.runs, cut)
            plan.events = len(rows)
            plan.bytes = sum(len(r[6]) for r in rows)
        return report
    with journal.read() as conn:
        _require_admin(conn, journal.actor)
    with journal.write() as w:
        _select_runs(w.conn, cut, plan, keep)
        rows = _candidates(w.conn, plan.runs, cut)
        plan.events = len(rows)
        plan.bytes = sum(len(r[6]) for r in rows)
        if not rows:
            return report
        _check_links(rows, genesis_hash(journal.journal_id))
        state = _state_rows(w.conn, _touched(rows))
        digests = [hashlib.sha256(r[6].encode()).hexdigest() for r in rows]
        events_sha = hashlib.sha256()
        for r, d in zip(rows, digests, strict=True):
            seq, ts, kind, run_id, corr, actor, _payload, hash_, _prev = r
            events_sha.update(events_digest_line(seq, ts, kind, run_id, corr, actor, d, hash_))
        seqs = [r[0] for r in rows]
        ranges = _ranges(seqs)
        ev = w.append(
            PRUNED_KIND,
            {
                "before": cut,
                "reason": reason,
                "policy_version": policy_version,
                "policy_digest": policy_digest,
                "runs": sorted({r[3] for r in rows}),
                "ranges": ranges,
                "events": len(rows),
                "bytes": plan.bytes,
                "events_sha256": events_sha.hexdigest(),
                "state_rows": len(state),
                "state_sha256": state_digest(state),
            },
        )
        report.seq, report.state_rows = ev.seq, len(state)
        w.conn.execute(
            T_STATE.insert(),
            [{"prune_seq": ev.seq, "tbl": t, "key_text": k, "row": r} for t, k, r in state],
        )
        w.conn.execute(T_PERMITS.insert(), [{"lo": lo, "hi": hi} for lo, hi in ranges])
        w.conn.execute(
            T_EVENTS.update()
            .where(T_EVENTS.c.seq == bindparam("p_seq"))
            .values(payload=bindparam("p_payload")),
            [
                {"p_seq": s, "p_payload": tombstone(d, ev.seq)}
                for s, d in zip(seqs, digests, strict=True)
            ],
        )
        w.conn.execute(T_PERMITS.delete())
    return report


@dataclass(frozen=True)
class Checkpoint:
    """A ``journal.pruned`` event as ``verify`` needs it."""

    seq: int
    payload: str
    ranges: list[list[int]]
    events: int
    events_sha256: str
    state_sha256: str


def load_checkpoints(conn: Connection) -> list[Checkpoint]:
    """Every ``journal.pruned`` event (not yet verified: ``verify`` re-checks each at its seq)."""
    rows = conn.execute(
        select(T_EVENTS.c.seq, T_EVENTS.c.payload)
        .where(T_EVENTS.c.kind == PRUNED_KIND)
        .order_by(T_EVENTS.c.seq)
    ).all()
    out = []
    for seq, payload in rows:
        try:
            data = json.loads(payload)
            out.append(
                Checkpoint(
                    seq,
                    payload,
                    [[int(lo), int(hi)] for lo, hi in data["ranges"]],
                    int(data["events"]),
                    str(data["events_sha256"]),
                    str(data["state_sha256"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # verify fails on it when it gets there (hash or shape)
    return out


def load_state(conn: Connection) -> dict[int, list[tuple[str, str, str]]]:
    """``pruned_state`` rows per prune seq."""
    out: dict[int, list[tuple[str, str, str]]] = {}
    stmt = select(T_STATE.c.prune_seq, T_STATE.c.tbl, T_STATE.c.key_text, T_STATE.c.row)
    for prune_seq, tbl, key_text, row in conn.execute(stmt):
        out.setdefault(int(prune_seq), []).append((str(tbl), str(key_text), str(row)))
    return out
