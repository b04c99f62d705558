"""Full garbage collections wait for an idle console (console/tui/collector.py)."""

from __future__ import annotations

import gc
import weakref

from console.tui.collector import MAX_PENDING, MIN_PENDING, NEVER, IdleCollector
from tests.tui.helpers import make_app
from tests.tui.journal_builder import BuiltJournal


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


def test_a_full_collection_waits_for_an_idle_moment() -> None:
    saved = gc.get_threshold()
    collector = IdleCollector()
    collector.start()
    try:
        assert gc.get_threshold() == (saved[0], saved[1], NEVER)
        dead = _old_garbage()
        for _ in range(MIN_PENDING):
            gc.collect(1)  # what allocating does meanwhile: young collections only
        assert dead() is not None  # the oldest generation was left alone
        full = _full_collections()
        assert not collector.tick(idle=False)
        assert _full_collections() == full
        assert collector.tick(idle=True)
        assert dead() is None
        assert not collector.tick(idle=True)  # nothing new since
    finally:
        collector.stop()
    assert gc.get_threshold() == saved


def test_a_console_never_idle_still_collects_in_the_end() -> None:
    collector = IdleCollector()
    collector.start()
    try:
        dead = _old_garbage()
        for _ in range(MAX_PENDING):
            gc.collect(1)
        assert collector.tick(idle=False)
        assert dead() is None
    finally:
        collector.stop()


async def test_the_console_gives_full_collections_back_when_it_exits(built: BuiltJournal) -> None:
    saved = gc.get_threshold()
    app = make_app(built)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert gc.get_threshold()[2] == NEVER
    assert gc.get_threshold() == saved
