"""Full garbage collections wait for an idle console and walk only what is new
(console/tui/collector.py)."""

from __future__ import annotations

import gc
import weakref

from console.tui.collector import (
    COMPACT_AFTER,
    GROWTH,
    MAX_PENDING,
    MIN_FROZEN,
    MIN_PENDING,
    NEVER,
    IdleCollector,
)
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
    assert gc.get_freeze_count() == 0  # the heap is Python's again


def test_survivors_of_an_idle_collection_are_out_of_the_next_ones_reach() -> None:
    collector = IdleCollector()
    collector.start()
    try:
        kept = [Node() for _ in range(20_000)]
        for _ in range(MIN_PENDING):
            gc.collect(1)
        before = gc.get_freeze_count()
        assert collector.tick(idle=True)
        assert gc.get_freeze_count() >= before + len(kept)
        assert not any(o is kept[0] for o in gc.get_objects())  # the collector's view
    finally:
        collector.stop()


def test_a_console_never_idle_freezes_instead_of_walking_the_heap() -> None:
    collector = IdleCollector()
    collector.start()
    try:
        dead = _old_garbage()
        full = _full_collections()
        frozen = gc.get_freeze_count()
        for _ in range(MAX_PENDING - 2):  # one more came with the garbage
            gc.collect(1)
        assert not collector.tick(idle=False)
        assert gc.get_freeze_count() == frozen  # not yet
        gc.collect(1)
        assert not collector.tick(idle=False)  # no collection: no pause
        assert _full_collections() == full
        assert gc.get_freeze_count() > frozen  # the survivors went out of reach instead
        assert dead() is not None  # a cycle that died frozen waits for the compaction
        collector.compact()
        assert dead() is None
    finally:
        collector.stop()


def test_the_frozen_heap_is_compacted_when_left_alone_long_enough() -> None:
    collector = IdleCollector()
    collector.start()
    try:
        dead = _old_garbage()
        grow = max(MIN_FROZEN, int(gc.get_freeze_count() * GROWTH)) + 1
        kept = [[i] for i in range(grow)]
        for _ in range(MAX_PENDING):
            gc.collect(1)
        collector.tick(idle=False)  # a long load: everything frozen, the dead cycle too
        assert dead() is not None
        assert not collector.tick(idle=True, quiet_for=1.0)  # grown, but a key is likely
        assert dead() is not None
        assert collector.tick(idle=True, quiet_for=COMPACT_AFTER)
        assert dead() is None
        assert gc.get_freeze_count() >= len(kept)  # the living stay frozen
        assert not collector.tick(idle=True, quiet_for=COMPACT_AFTER)  # not grown since
    finally:
        collector.stop()


async def test_the_console_gives_full_collections_back_when_it_exits(built: BuiltJournal) -> None:
    saved = gc.get_threshold()
    app = make_app(built)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert gc.get_threshold()[2] == NEVER
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == saved
    assert gc.get_freeze_count() == 0


def test_a_strip_drawn_at_its_own_width_dies_without_the_cyclic_collector() -> None:
    from rich.segment import Segment
    from textual.strip import Strip

    from console.tui.collector import untangle_strips

    untangle_strips()
    gc.collect()
    gc.disable()
    try:
        strip = Strip([Segment("hello "), Segment("world")])
        assert strip.crop_extend(0, 11, None) is strip  # what every frame asks of a line
        assert list(strip.divide([11])) == [strip]
        assert strip.crop_extend(0, 13, None).text == "hello world  "  # others still cached
        del strip
        assert gc.collect() == 0  # freed by its reference count: no cycle was left behind
    finally:
        gc.enable()
