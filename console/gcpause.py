"""A pause of Python's cyclic garbage collector around bulk work that makes no cycles."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside: the work allocates many short-lived containers (rows,
    decoded payloads) and no cycles, and the collector would walk them, and the heap behind
    them, over and over as they pile up (a fifth to a third of such work). Reference counting
    still frees everything; the collector's thresholds are left alone (the console sets its
    own), and it is enabled again only if it was enabled here."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
