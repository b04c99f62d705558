"""A pause of Python's cyclic garbage collector around bulk work that makes no cycles."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside: the work allocates many containers (rows, decoded
    payloads, a run's plan) and next to no cycles, and the collector would walk them, and the
    heap behind them, over and over as they pile up: a fifth to a third of a journal flush or
    of verify, 13-20 % of a 100,000-row apply or rollback (which make about 1,300 cyclic
    objects per 30,000 rows, freed by the first collection after). Reference counting still
    frees everything else; the collector's thresholds are left alone (the console sets its
    own), and it is enabled again only if it was enabled here. Also a decorator."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
