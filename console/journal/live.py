"""Live updates: learn that the journal grew, without re-reading it in a loop.

PostgreSQL: ``LISTEN backout_events`` (a statement-level trigger on ``events`` notifies at
commit with the new largest seq). SQLite: poll ``journal_head`` (a one-row read). Either way
the consumer gets the new head seq and reads the new events itself (keyset ``after_seq``).

A lost PostgreSQL connection is retried with exponential backoff; ``on_status`` hears about it
(for a status bar or stderr), and the head is re-read after reconnecting, so nothing committed
while disconnected is missed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from console.journal.store import Journal

CHANNEL = "backout_events"
StatusFn = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


class HeadWatcher:
    """Yields the journal's head seq each time it advances (never the same value twice)."""

    def __init__(
        self,
        journal: Journal,
        *,
        poll_interval: float = 0.2,
        on_status: StatusFn = _quiet,
        max_backoff: float = 10.0,
    ) -> None:
        self.journal = journal
        self.poll_interval = poll_interval
        self.on_status = on_status
        self.max_backoff = max_backoff
        self.last = journal.head()[0]
        self._stop = threading.Event()
        self._conn: Any = None

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop; a thread inside ``heads()`` returns within ``poll_interval`` and disconnects."""
        self.stop()

    def _drop(self) -> None:
        if self._conn is not None:
            # Closing a dead connection may fail; it is gone either way.
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def heads(self, timeout: float | None = None) -> Iterator[int]:
        """New head seqs until ``stop()`` or ``timeout`` seconds pass without one."""
        source = self._pg_heads if self.journal.dialect == "postgresql" else self._polled_heads
        try:
            yield from source(timeout)
        finally:
            self._drop()

    def _advance(self, seq: int) -> bool:
        if seq > self.last:
            self.last = seq
            return True
        return False

    def _polled_heads(self, timeout: float | None) -> Iterator[int]:
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            if self._advance(self.journal.head()[0]):
                quiet_since = time.monotonic()
                yield self.last
            elif timeout is not None and time.monotonic() - quiet_since >= timeout:
                return
            self._stop.wait(self.poll_interval)

    def _connect(self) -> Any:
        import psycopg

        url = self.journal.engine.url.set(drivername="postgresql")
        conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def _pg_heads(self, timeout: float | None) -> Iterator[int]:
        import psycopg

        backoff = 0.1
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            if timeout is not None and time.monotonic() - quiet_since >= timeout:
                return
            try:
                if self._conn is None:
                    self._conn = self._connect()
                    if backoff > 0.1:
                        self.on_status("journal connection restored")
                    backoff = 0.1
                    # Events committed while we were not listening sent no notification to us.
                    if self._advance(self.journal.head()[0]):
                        quiet_since = time.monotonic()
                        yield self.last
                wait = self.poll_interval if timeout is None else min(self.poll_interval, timeout)
                newest = 0
                for note in self._conn.notifies(timeout=wait):
                    newest = max(newest, int(note.payload or 0))
                    if newest > self.last:
                        break  # deliver now; more will be waiting for the next round
                if self._advance(newest):
                    quiet_since = time.monotonic()
                    yield self.last
            except (psycopg.OperationalError, OSError) as exc:
                self._drop()
                self.on_status(f"journal connection lost ({exc}); retrying in {backoff:.1f}s")
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, self.max_backoff)


def watch(
    journal: Journal,
    callback: Callable[[int], None],
    *,
    poll_interval: float = 0.2,
    on_status: StatusFn = _quiet,
) -> HeadWatcher:
    """Call ``callback(head_seq)`` from a daemon thread whenever the journal grows; stop with
    ``watcher.close()``."""
    watcher = HeadWatcher(journal, poll_interval=poll_interval, on_status=on_status)

    def run() -> None:
        for seq in watcher.heads():
            callback(seq)

    threading.Thread(target=run, name="backout-journal-watch", daemon=True).start()
    return watcher
