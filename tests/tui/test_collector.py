"""Full garbage collections when the console is idle (console/tui/collector.py)."""

from __future__ import annotations

import gc
import weakref

from console.tui.collector import MIN_PENDING, IdleCollector


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def _old_garbage() -> weakref.ref[Node]:
    """A cycle that lived long enough to reach the oldest generation, then became garbage."""
    node = Node()
    gc.collect(1)  # survives the young generations: now in the oldest
    return weakref.ref(node)


def _full_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


def test_an_idle_console_collects_what_survived_since_the_last_full_collection() -> None:
    collector = IdleCollector()
    collector.start()
    gc.collect()  # a full collection: nothing pending after it
    dead = _old_garbage()
    assert not collector.tick(idle=True)  # too little since
    for _ in range(MIN_PENDING):
        gc.collect(1)  # what allocating does meanwhile: young collections
    full = _full_collections()
    assert not collector.tick(idle=False)  # busy: Python's own collections decide
    assert dead() is not None and _full_collections() == full
    assert collector.tick(idle=True)
    assert dead() is None
    assert not collector.tick(idle=True)  # nothing new since


def test_an_automatic_full_collection_counts_as_one() -> None:
    collector = IdleCollector()
    collector.start()
    for _ in range(MIN_PENDING):
        gc.collect(1)
    gc.collect()  # as Python runs one when the oldest generation has grown
    assert not collector.tick(idle=True)
