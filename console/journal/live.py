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
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.exc import DBAPIError

from console.journal.store import Journal

CHANNEL = "backout_events"
StatusFn = Callable[[str], None]


@dataclass(frozen=True)
class LiveState:
    """How the watcher hears about new events now (for a status bar)."""

    mode: Literal["live", "polling", "reconnecting"]
    attempt: int = 0  # reconnecting: failed attempts so far
    retry_in: float = 0.0  # reconnecting: seconds until the next attempt
    error: str = ""

    def label(self) -> str:
        if self.mode == "live":
            return "● live"
        if self.mode == "polling":
            return "◌ polling"
        return f"⚠ reconnecting (attempt {self.attempt}, next in {self.retry_in:.1f}s)"


StateFn = Callable[[LiveState], None]


def _quiet(_message: Any) -> None:
    pass


def _lost(exc: BaseException) -> bool:
    """A lost or refused connection (retry), as opposed to a bug (raise)."""
    if isinstance(exc, DBAPIError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return isinstance(exc, OSError)
    return isinstance(exc, psycopg.OperationalError | OSError)


class HeadWatcher:
    """Yields the journal's head seq each time it advances (never the same value twice)."""

    def __init__(
        self,
        journal: Journal,
        *,
        poll_interval: float = 0.2,
        on_status: StatusFn = _quiet,
        max_backoff: float = 10.0,
        on_state: StateFn = _quiet,
        start: int | None = None,
    ) -> None:
        self.journal = journal
        self.poll_interval = poll_interval
        self.on_status = on_status
        self.on_state = on_state
        self.max_backoff = max_backoff
        self.last = journal.head()[0] if start is None else start
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
        retry = _Retry(self)
        self.on_state(LiveState("polling"))
        while not self._stop.is_set():
            try:
                head = self.journal.head()[0]
            except Exception as exc:
                if not _lost(exc):
                    raise
                if retry.wait(exc):
                    return
                continue
            if retry.restored():
                self.on_state(LiveState("polling"))
            if self._advance(head):
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
        retry = _Retry(self)
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            if timeout is not None and time.monotonic() - quiet_since >= timeout:
                return
            try:
                if self._conn is None:
                    self._conn = self._connect()
                    # Events committed while we were not listening sent no notification to us.
                    head = self.journal.head()[0]
                    retry.restored()
                    self.on_state(LiveState("live"))
                    if self._advance(head):
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
            except Exception as exc:
                self._drop()
                if not _lost(exc):
                    raise
                if retry.wait(exc):
                    return


class _Retry:
    """Exponential backoff after a lost connection, told to the watcher's listeners."""

    def __init__(self, watcher: HeadWatcher) -> None:
        self.watcher = watcher
        self.attempt = 0
        self.backoff = 0.1

    def wait(self, exc: BaseException) -> bool:
        """Say so and wait before the next attempt; True if the watcher was stopped."""
        w = self.watcher
        self.attempt += 1
        error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        w.on_status(f"journal connection lost ({error}); retrying in {self.backoff:.1f}s")
        w.on_state(LiveState("reconnecting", self.attempt, self.backoff, error))
        stopped = w._stop.wait(self.backoff)
        self.backoff = min(self.backoff * 2, w.max_backoff)
        return stopped

    def restored(self) -> bool:
        """A read worked: True once after an outage (said to the listeners)."""
        if not self.attempt:
            return False
        self.attempt, self.backoff = 0, 0.1
        self.watcher.on_status("journal connection restored")
        return True


def watch(
    journal: Journal,
    callback: Callable[[int], None],
    *,
    poll_interval: float = 0.2,
    on_status: StatusFn = _quiet,
    on_state: StateFn = _quiet,
    start: int | None = None,
) -> HeadWatcher:
    """Call ``callback(head_seq)`` from a daemon thread whenever the journal grows; stop with
    ``watcher.close()``. ``start``: the head already known (None: read it now; -1: report the
    current head first, read in the thread)."""
    watcher = HeadWatcher(
        journal, poll_interval=poll_interval, on_status=on_status, on_state=on_state, start=start
    )

    def run() -> None:
        for seq in watcher.heads():
            callback(seq)

    threading.Thread(target=run, name="backout-journal-watch", daemon=True).start()
    return watcher
