"""Python's cyclic garbage collector, kept from freezing the interface.

A full collection walks every tracked object with the GIL held, so the event loop stands
still meanwhile, whichever thread triggered it (a worker allocating a reconciliation's rows
stalls the screen as much as the loop itself would): 50-150 ms at the console's size. So
full collections are never automatic while the console runs, and none walks the whole heap
at a moment a key is likely:

* what is alive at startup (modules, classes, functions, parsed CSS: about 85,000 objects)
  is frozen (``gc.freeze``), out of the collector's reach;
* when the console is idle (no key or mouse for a second, no worker running) and enough
  survived since the last look, it collects what is not frozen, then freezes the survivors:
  each idle collection walks only what came since the previous one (a few ms), not the heap;
* never idle (a long load or reconciliation), after ``MAX_PENDING`` young collections the
  survivors are frozen without a walk (freezing moves a list head: no pause at all). Young
  collections stay automatic: they are short, whatever the size of the heap.

Frozen objects are still freed by reference counting; only a cycle that dies after it was
frozen waits (Textual's strips sit in their own caches, so every line drawn is a cycle). That
is the one full walk left, the compaction: everything unfrozen, collected, frozen again, once
the console has been left alone for ``COMPACT_AFTER`` seconds and the frozen heap has grown by
half since the last one (or, idle for a second, once it has grown fourfold, so memory stays
bounded for a user who never stops). It is as long as the heap (the 100-150 ms the idle
collections used to take); a key pressed during it waits.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Sequence

from rich.style import Style
from textual.strip import Strip

MIN_PENDING = 10  # young (generation 1) collections since the last look: Python's own bar
MAX_PENDING = 200  # never idle that long (some 1.4 million survivors of generation 0): freeze
NEVER = 1 << 30
COMPACT_AFTER = 30.0  # seconds without a key before the frozen heap's dead cycles are freed
GROWTH = 1.5  # frozen heap / after the last compaction: worth a compaction at long idle
MAX_GROWTH = 4.0  # ... worth one at any idle moment (memory stays bounded)
MIN_FROZEN = 50_000  # below this much growth a compaction frees too little to be worth it

_crop_extend = Strip.crop_extend
_divide = Strip.divide
_holders = 0  # collectors started and not stopped in this process (tests run several apps)


def _crop_extend_without_cycle(self: Strip, start: int, end: int, style: Style | None) -> Strip:
    if start == 0 and end == self.cell_length:
        return self  # cached, the strip would be a cycle (its cache holds itself)
    return _crop_extend(self, start, end, style)


def _divide_without_cycle(self: Strip, cuts: Iterable[int]) -> Sequence[Strip]:
    cuts = [cut for cut in cuts if cut <= self.cell_length]
    if cuts == [self.cell_length]:
        return [self]  # cached, a cycle as above
    return _divide(self, cuts)


def untangle_strips() -> None:
    """Textual's ``Strip`` caches its results in the strip, and where the result is the
    strip itself (``crop_extend`` to the width it has, ``divide`` at its end: most lines,
    every frame) the strip holds itself: a cycle, freed only by a full collection. Answered
    without caching there, nothing changes but that the strip dies with its line (textual
    8.2; harmless once fixed upstream)."""
    Strip.crop_extend = _crop_extend_without_cycle  # type: ignore[method-assign]
    Strip.divide = _divide_without_cycle  # type: ignore[method-assign]


def _young_collections() -> int:
    return int(gc.get_stats()[1]["collections"])


class IdleCollector:
    """Full collections when the console is idle instead of when the heap decides."""

    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None
        self._seen_at = 0
        self._compacted = 0  # frozen objects right after the last compaction (or startup)

    def start(self) -> None:
        global _holders
        if self._saved is not None:
            return
        self._saved = gc.get_threshold()
        gc.set_threshold(self._saved[0], self._saved[1], NEVER)
        _holders += 1
        untangle_strips()
        gc.freeze()
        self._compacted = gc.get_freeze_count()
        self._seen_at = _young_collections()

    def stop(self) -> None:
        """Give full collections, and the frozen heap, back to Python (the process may go
        on: tests)."""
        global _holders
        if self._saved is None:
            return
        gc.set_threshold(*self._saved)
        self._saved = None
        _holders -= 1
        if _holders == 0:
            gc.unfreeze()

    def tick(self, idle: bool, quiet_for: float = 0.0) -> bool:
        """One look, every half second: ``idle`` when no key came for a second and no worker
        runs, ``quiet_for`` the seconds since the last key. Whether it collected."""
        if self._saved is None:
            return False
        if idle and self._compaction_due(quiet_for):
            self.compact()
            return True
        pending = _young_collections() - self._seen_at
        if pending < MIN_PENDING or (not idle and pending < MAX_PENDING):
            return False
        if idle:
            gc.collect()  # the unfrozen part only: what survived since the last look
        gc.freeze()
        self._seen_at = _young_collections()
        return idle

    def _compaction_due(self, quiet_for: float) -> bool:
        grown = gc.get_freeze_count()
        if grown - self._compacted < MIN_FROZEN:
            return False
        bar = GROWTH if quiet_for >= COMPACT_AFTER else MAX_GROWTH
        return grown >= self._compacted * bar

    def compact(self) -> None:
        """Free the cycles that died frozen: a walk of the whole heap."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._compacted = gc.get_freeze_count()
        self._seen_at = _young_collections()
