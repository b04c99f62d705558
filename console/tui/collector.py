"""Python's cyclic garbage collector, kept from freezing the interface.

A full collection walks every tracked object with the GIL held, so the event loop stands
still meanwhile, whichever thread triggered it (a worker allocating a reconciliation's rows
stalls the screen as much as the loop itself would): 50-150 ms at the console's size on a
loaded machine, the longest freezes the benchmark saw while loading. So:

* what is alive at startup (modules, classes, functions, parsed CSS: about 85,000 objects)
  is frozen, out of the collector's reach for good: a full collection walks the console's
  own objects only (20-60,000; more after a large reconciliation);
* full collections are not automatic while the console runs: it runs one when it is idle
  (no key or mouse for a second, no worker running) and enough survived since the last,
  or, never idle, after ``MAX_PENDING`` young collections. Young collections stay
  automatic: they are short, whatever the size of the heap.

The cost moves, it does not vanish: garbage waits for the idle moment (Textual's strips
keep themselves in their own caches, so every line drawn is a cycle), and that collection
is as long as the heap and the garbage together (tens of ms on a quiet machine, a few
hundred after a large reconciliation on a loaded one). A key pressed during it waits.
"""

from __future__ import annotations

import gc

MIN_PENDING = 10  # young (generation 1) collections since the last full one: Python's own bar
MAX_PENDING = 200  # never idle that long (some 1.4 million survivors of generation 0): collect
NEVER = 1 << 30

_frozen = False


def freeze_startup_objects() -> None:
    """Freeze what is alive now. Once per process: frozen objects are never freed, so a
    second app in the same process (tests) must not freeze the first one's."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


def _young_collections() -> int:
    return int(gc.get_stats()[1]["collections"])


class IdleCollector:
    """Full collections when the console is idle instead of when the heap decides."""

    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None
        self._full_at = 0

    def start(self) -> None:
        freeze_startup_objects()
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(self._saved[0], self._saved[1], NEVER)
        self._full_at = _young_collections()

    def stop(self) -> None:
        """Give full collections back to Python (the process may go on: tests)."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def tick(self, idle: bool) -> bool:
        """Collect if enough survived since the last full collection and the console is
        idle (or it has waited too long); whether it did."""
        pending = _young_collections() - self._full_at
        if self._saved is None or pending < MIN_PENDING or (not idle and pending < MAX_PENDING):
            return False
        gc.collect()
        self._full_at = _young_collections()
        return True
