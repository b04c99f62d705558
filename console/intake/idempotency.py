"""Idempotency keys: a retried or double-fired request finds the run its first copy started.

The mapping lives in ``intake_keys`` and is journaled as ``intake.accepted`` on the run, in
one transaction. Callers serialise lookup-then-start per key (``KeyLocks``)."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import insert, select

from console.intake.tables import KEYS
from console.journal import Journal, format_ts


@dataclass(frozen=True)
class Accepted:
    run_id: str
    digest: str


def find(journal: Journal, token: str, key: str) -> Accepted | None:
    with journal.read() as conn:
        row = conn.execute(
            select(KEYS.c.run_id, KEYS.c.digest).where(KEYS.c.token == token, KEYS.c.key == key)
        ).first()
    return None if row is None else Accepted(row.run_id, row.digest)


def record(journal: Journal, token: str, key: str, run_id: str, digest: str) -> None:
    """Remember ``key`` → ``run_id`` (the journal's actor is the token)."""
    with journal.write() as w:
        if w.conn.execute(
            select(KEYS.c.run_id).where(KEYS.c.token == token, KEYS.c.key == key)
        ).first():
            return
        now = format_ts(journal.clock())
        w.conn.execute(
            insert(KEYS).values(token=token, key=key, run_id=run_id, digest=digest, created_at=now)
        )
        w.append("intake.accepted", {"key": key, "digest": digest}, run_id=run_id)


class KeyLocks:
    """One lock per (token, key) in this process: two copies of a request never both start."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)

    def get(self, token: str, key: str) -> threading.Lock:
        with self._guard:
            return self._locks[(token, key)]
