"""Python's cyclic garbage collector, kept from freezing the interface.

A full collection walks every tracked object with the GIL held, so the event loop stands
still meanwhile, whichever thread triggered it (a worker allocating a reconciliation's rows
stalls the screen as much as the loop itself would): 50-150 ms at the console's size on a
loaded machine, the longest freezes the benchmark saw. So:

* what is alive at startup (modules, classes, functions, parsed CSS: about 85,000 objects)
  is frozen, out of the collector's reach for good: a full collection walks the console's
  own objects only (20-60,000; more after a large reconciliation);
* when the console is idle (no key or mouse for a second, no worker running) and enough has
  survived since the last full collection, it runs one then, which puts off the automatic
  one that would otherwise come in the middle of the next load. Automatic collections stay
  on: with them off, garbage piles up (Textual's strips keep themselves in their own caches,
  so every line drawn is a cycle) and the eventual collection is the longest pause of all.
"""

from __future__ import annotations

import gc

MIN_PENDING = 10  # young (generation 1) collections since the last full one: Python's own bar

_frozen = False


def freeze_startup_objects() -> None:
    """Freeze what is alive now. Once per process: frozen objects are never freed, so a
    second app in the same process (tests) must not freeze the first one's."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


def _collections(generation: int) -> int:
    return int(gc.get_stats()[generation]["collections"])


class IdleCollector:
    """Full collections when the console is idle, ahead of Python's automatic ones."""

    def __init__(self) -> None:
        self._full = -1  # full collections counted when last looked at
        self._young_then = 0  # young collections counted at the last full one

    def start(self) -> None:
        freeze_startup_objects()
        self._seen()

    def _seen(self) -> None:
        full = _collections(2)
        if full != self._full:  # a full collection since (automatic or ours)
            self._full = full
            self._young_then = _collections(1)

    def tick(self, idle: bool) -> bool:
        """Collect if the console is idle and enough survived since the last full
        collection; whether it did."""
        self._seen()
        if not idle or _collections(1) - self._young_then < MIN_PENDING:
            return False
        gc.collect()
        self._seen()
        return True
