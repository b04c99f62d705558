"""Where an apply's segment writes run: inline (one worker), or on worker threads
(``--workers N`` on PostgreSQL and MariaDB), each worker with its own target connection.

Only the caller's thread touches the journal: workers run ``SegmentRunner.execute(defer=True)``,
which leaves the outcome (or failure) in the runner's ``pending`` list, and the caller writes
it in its next journal transaction once it has collected that segment (``idle_runners``). The
caller journals every intent, in segment order, before it submits the write: the journal's
order (segment numbers) is what drives rollback and resume, whatever order the target
transactions commit in.

Segments run concurrently only when their keys are disjoint (same target, table and key:
the later one waits for the earlier), and never across a step boundary (a step may depend on
the rows an earlier step wrote, e.g. a parent row a foreign key points to). Results are
collected oldest first, so counters, guards and ``on_error`` see segments in journal order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from console.changes import PlannedSegment
from console.engine.segments import SegmentPlan, SegmentResult, SegmentRunner
from console.errors import BadInput
from console.targets.sql import SqlTarget

KeySet = frozenset[tuple[str, str, str]]  # (target ref, table, key text)


def check_workers(workers: int, dialects: dict[str, str]) -> None:
    """``--workers`` above 1 needs targets with concurrent writers (``dialects``: display URL
    to dialect). SQLite has one writer at a time: workers would only queue on its lock (and
    hit "database is locked"), so the request is refused rather than silently ignored."""
    if workers <= 1:
        return
    for url, dialect in sorted(dialects.items()):
        if dialect == "sqlite":
            raise BadInput(
                f"--workers {workers}: target {url} is SQLite, which takes one writer at a "
                "time; use --workers 1 (the default) for SQLite targets."
            )


@dataclass
class InFlight:
    ref: str
    seg: PlannedSegment
    plan: SegmentPlan
    runner: SegmentRunner
    keys: KeySet
    future: Future[SegmentResult]


@dataclass
class Lanes:
    """Segment writes in flight, at most ``workers`` at once."""

    workers: int
    # A runner for a target reference (the inline lane reuses the engine's target; a worker
    # lane opens a connection of its own).
    make_runner: Callable[[str, bool], SegmentRunner]
    runners: dict[str, list[SegmentRunner]] = field(default_factory=dict)
    idle: dict[str, list[SegmentRunner]] = field(default_factory=dict)
    flight: deque[InFlight] = field(default_factory=deque)
    _pool: ThreadPoolExecutor | None = None
    _step: int | None = None

    @property
    def parallel(self) -> bool:
        return self.workers > 1

    def idle_runners(self) -> Iterator[SegmentRunner]:
        """Runners whose segment was collected: their pending journal writes are safe to
        take (a busy runner's are still being produced on its thread)."""
        for runners in self.idle.values():
            yield from runners

    def targets(self) -> Iterator[SqlTarget]:
        for runners in self.runners.values():
            for r in runners:
                yield r.target

    def make_room(self, step_no: int, keys: KeySet) -> Iterator[InFlight]:
        """Collect (oldest first) what must finish before a segment of ``step_no`` with
        ``keys`` may start: everything at a step boundary, overlapping keys, and one when
        all workers are busy."""
        if self._step is not None and step_no != self._step:
            yield from self.drain()
        self._step = step_no
        while self.flight and (
            len(self.flight) >= self.workers or any(keys & f.keys for f in self.flight)
        ):
            yield self._collect()

    def drain(self) -> Iterator[InFlight]:
        while self.flight:
            yield self._collect()

    def _collect(self) -> InFlight:
        done = self.flight.popleft()
        try:
            done.future.result()  # waits; re-raises what the write raised
        finally:
            self.idle.setdefault(done.ref, []).append(done.runner)
        return done

    def settle(self) -> None:
        """Wait for every write in flight, whatever it raised (the run is stopping on an
        error already): their outcomes become pending journal writes of idle runners, so
        the pause that follows journals them instead of leaving them in doubt."""
        while self.flight:
            try:
                self._collect()
            except Exception:  # journaled, or resolved on resume
                continue

    def submit(self, ref: str, seg: PlannedSegment, plan: SegmentPlan, keys: KeySet) -> None:
        """Write the (journaled) segment: inline with one worker, else on a worker thread."""
        idle = self.idle.setdefault(ref, [])
        if idle:
            runner = idle.pop()
        else:
            runner = self.make_runner(ref, self.parallel)
            self.runners.setdefault(ref, []).append(runner)
        future: Future[SegmentResult]
        if self._pool is None and self.parallel:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="backout-segment")
        if self._pool is None:
            future = Future()
            try:
                future.set_result(runner.execute(plan, defer=True))
            except BaseException:  # raised here, before another intent is journaled
                idle.append(runner)
                raise
        else:
            future = self._pool.submit(runner.execute, plan, defer=True)
        self.flight.append(InFlight(ref, seg, plan, runner, keys, future))

    def close(self) -> None:
        """Wait for the writes in flight (never leave a thread writing) and close the
        connections the worker lanes opened."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
            for target in self.targets():
                target.close()
