"""Leases: one live executor per run. A holder renews its lease at every segment; a lease
expires when its holder stops renewing (killed, crashed), or at once when the holder was a
process on this host that no longer exists."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.engine import Connection

from console.errors import BackoutError, Exit
from console.journal import Journal, format_ts, parse_ts
from console.journal.store import T_LEASES, T_RUNS, T_SNAPSHOTS

LEASE_TTL = dt.timedelta(seconds=60)


class RunHeld(BackoutError):
    exit_code = Exit.BLOCKED


class LeaseLost(BackoutError):
    """The lease expired while its holder was stalled, and another process took the run:
    the stalled one must not record or write anything more for it."""

    exit_code = Exit.FAILED


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    token: str

    @classmethod
    def me(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.token}"

    @classmethod
    def parse(cls, text: str) -> Holder:
        host, pid, token = text.rsplit(":", 2)
        return cls(host, int(pid), token)


def _process_gone(holder: Holder) -> bool:
    if holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def live_holder(conn: Connection, journal: Journal, run_id: str) -> Holder | None:
    """Who holds the run's lease and is still alive, if anyone."""
    row = conn.execute(select(T_LEASES).where(T_LEASES.c.run_id == run_id)).mappings().first()
    if row is None:
        return None
    current = Holder.parse(row["holder"])
    alive = parse_ts(row["expires_at"]) > journal.clock() and not _process_gone(current)
    return current if alive else None


def acquire(conn: Connection, journal: Journal, run_id: str, holder: Holder) -> None:
    """Take the run's lease inside a journal write transaction (which serialises takers)."""
    now = journal.clock()
    current = live_holder(conn, journal, run_id)
    if current is not None and current != holder:
        raise RunHeld(
            f"run {run_id} is being executed by process {current.pid} on {current.host}; "
            f"wait for it, or pause it with `backout pause {run_id}`."
        )
    conn.execute(delete(T_LEASES).where(T_LEASES.c.run_id == run_id))
    conn.execute(
        T_LEASES.insert(),
        [{"run_id": run_id, "holder": str(holder), "expires_at": format_ts(now + LEASE_TTL)}],
    )


# Built once (renewed at every segment): SQLAlchemy compiles it once.
_RENEW = (
    T_LEASES.update()
    .where(T_LEASES.c.run_id == bindparam("r_run_id"), T_LEASES.c.holder == bindparam("r_holder"))
    .values(expires_at=bindparam("r_expires_at"))
)


_SQLITE_RENEW = "UPDATE leases SET expires_at = ? WHERE run_id = ? AND holder = ?"


def renew(conn: Connection, journal: Journal, run_id: str, holder: Holder) -> None:
    """Extend the lease, inside the journal transaction that is about to record our next step;
    ``LeaseLost`` (and so nothing recorded) if the lease is no longer ours."""
    expires = format_ts(journal.clock() + LEASE_TTL)
    if conn.dialect.name == "sqlite":  # straight to the driver: this runs at every segment
        found = conn.exec_driver_sql(_SQLITE_RENEW, (expires, run_id, str(holder))).rowcount
    else:
        found = conn.execute(
            _RENEW, {"r_run_id": run_id, "r_holder": str(holder), "r_expires_at": expires}
        ).rowcount
    if found == 0:
        raise LeaseLost(
            f"run {run_id} was taken over by another process while this one was stalled past "
            f"its {int(LEASE_TTL.total_seconds())} s lease; this one stops without writing "
            f"more (`backout show {run_id}` shows where the run is)."
        )


def release(conn: Connection, run_id: str, holder: Holder) -> None:
    conn.execute(
        delete(T_LEASES).where(T_LEASES.c.run_id == run_id, T_LEASES.c.holder == str(holder))
    )


def sweep_abandoned(conn: Connection, journal: Journal) -> list[str]:
    """Forget the starts of applies killed before their run existed: a lease with no run
    whose holder is gone, and the baseline rows written under it (a run is created only
    after its baseline is captured, so that a refused change set leaves nothing but its
    rejection). The ids swept. A runbook execution's lease has no run either; a dead
    one goes too, which changes nothing (a dead holder's lease is taken over anyway)."""
    orphans = conn.execute(
        select(T_LEASES.c.run_id).where(~exists().where(T_RUNS.c.id == T_LEASES.c.run_id))
    ).scalars()
    gone = [r for r in orphans.all() if live_holder(conn, journal, r) is None]
    if gone:
        conn.execute(delete(T_SNAPSHOTS).where(T_SNAPSHOTS.c.run_id.in_(gone)))
        conn.execute(delete(T_LEASES).where(T_LEASES.c.run_id.in_(gone)))
    return gone
