"""``backout journal verify``: recompute the chain and the projections; compare with the last
head this machine trusted (grew: must extend it; same size: same head; shrank: fail).

The pass itself is ``verify_pass``; on a long SQLite journal two processes share it
(``verify_parallel``)."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from console.canonical import sha256_hex
from console.gcpause import gc_paused
from console.journal.chain import genesis_hash
from console.journal.projections import MemoryProjection
from console.journal.prune import load_checkpoints, load_state
from console.journal.store import T_HEAD, Journal
from console.journal.verify_parallel import in_two, sqlite_path
from console.journal.verify_pass import (
    Progress,
    Pruned,
    compare_projections,
    event_batches,
    reported,
    walk,
)
from console.paths import state_dir


@dataclass
class VerifyReport:
    ok: bool
    journal: str
    journal_id: str
    events: int = 0
    head_seq: int = 0
    head_hash: str = ""
    first_bad_seq: int | None = None
    problem: str | None = None
    projections_checked: bool = False
    trusted_seq: int | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _trusted_file(journal: Journal) -> Path:
    key = sha256_hex(journal.url)[:16]
    return state_dir() / "trusted" / f"{key}.json"


def _load_trusted(journal: Journal) -> dict[str, Any] | None:
    path = _trusted_file(journal)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _save_trusted(journal: Journal, seq: int, head: str) -> None:
    path = _trusted_file(journal)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # one per writer
    tmp.write_text(
        json.dumps(
            {"journal_id": journal.journal_id, "url": journal.display_url, "seq": seq, "hash": head}
        )
    )
    os.replace(tmp, path)


# From this many events on (and with a CPU to spare), verify runs in two processes on SQLite
# (``in_two``). Starting the other one costs about 0.5 s of CPU (a fresh interpreter), and
# the two passes read the events twice: below this, one pass is as fast.
PARALLEL_MIN_EVENTS = 100_000


def _spare_cpu() -> bool:
    """Whether a second process would get a CPU of its own: two passes cost about a fifth more
    CPU time than one, which only pays when they run side by side."""
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        load = 0.0
    return cpus > 1 and load < cpus - 0.5


def verify(
    journal: Journal,
    *,
    projections: bool = True,
    remember: bool = True,
    trusted: dict[str, Any] | None = None,
    parallel: bool | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check the whole journal; on success remember its head as trusted (per journal URL).

    ``progress(read, total)``: told after each batch of events read (a bar on a terminal).

    ``parallel``: check the chain in a second process while this one replays the projections
    (None: when the journal is long enough and the machine has the CPUs for it; see
    ``in_two``). Same verdict and same report either way.
    """
    report = VerifyReport(ok=False, journal=journal.display_url, journal_id=journal.journal_id)
    trusted = trusted if trusted is not None else _load_trusted(journal)
    trusted_seq = trusted.get("seq") if trusted is not None else None
    genesis = genesis_hash(journal.journal_id)

    def fail(seq: int | None, problem: str) -> VerifyReport:
        report.first_bad_seq = seq
        report.problem = problem
        return report

    with gc_paused(), journal.read(snapshot=True) as conn:
        head = conn.execute(select(T_HEAD.c.seq, T_HEAD.c.hash)).one()
        checkpoints = load_checkpoints(conn)
        pruned = Pruned(checkpoints, load_state(conn)) if checkpoints else None
        if pruned is not None:
            report.notes.append(
                f"{sum(cp.events for cp in checkpoints)} event payloads pruned by "
                f"{len(checkpoints)} journal.pruned checkpoint(s): their hashes are attested "
                "by the checkpoints, not recomputed"
            )
        if parallel is None:
            parallel = head.seq >= PARALLEL_MIN_EVENTS and _spare_cpu()
        # A pruned journal's checkpoints are walked along the chain: one pass does it all.
        path = sqlite_path(conn) if parallel and projections and pruned is None else None
        result = in_two(path, genesis, trusted_seq, head.seq, head.hash, progress) if path else None
        memory = None
        if result is None:  # one pass (also what reports any problem the two passes found)
            memory = MemoryProjection() if projections else None
            result = walk(
                reported(event_batches(conn), progress, head.seq),
                genesis=genesis,
                pruned=pruned,
                trusted_seq=trusted_seq,
                chain=True,
                memory=memory,
                passive_json=memory is not None,
                part=None,
            )
        if result.failure is not None:
            return fail(*result.failure)
        prev = result.head
        count = result.count
        trusted_hash_seen = result.trusted_hash_seen
        report.events = count
        report.head_seq, report.head_hash = count, prev
        if head.seq != count or head.hash != prev:
            return fail(
                min(head.seq, count) + 1 if head.seq != count else count,
                f"the journal head says event {head.seq} but the chain ends at event {count} "
                "(events were removed or the head was altered)",
            )
        if trusted is not None:
            if trusted.get("journal_id") not in (None, journal.journal_id):
                return fail(
                    None,
                    "the journal id differs from the one this machine trusted "
                    "(the journal was replaced)",
                )
            report.trusted_seq = int(trusted["seq"])
            if count < report.trusted_seq:
                return fail(
                    count + 1,
                    f"the journal shrank: this machine trusted event "
                    f"{report.trusted_seq}, the journal now ends at {count}",
                )
            if trusted_hash_seen != trusted.get("hash"):
                return fail(
                    report.trusted_seq,
                    f"history changed below the trusted head "
                    f"(event {report.trusted_seq} has another hash)",
                )
        if memory is not None:
            if memory.problems:
                seq, problem = memory.problems[0]
                return fail(seq, problem)
            mismatch = compare_projections(conn, memory, None)
            if mismatch is not None:
                return fail(None, mismatch)
        report.projections_checked = projections
    report.ok = True
    if remember:
        _save_trusted(journal, report.head_seq, report.head_hash)
    return report
