"""Fixtures for the journal tests (the databases come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.journal import Journal

from .gen import ticking_clock


@pytest.fixture
def journal(journal_url: str) -> Iterator[Journal]:
    """A fresh journal on SQLite and on PostgreSQL, with a deterministic clock."""
    j = Journal(journal_url, actor="alice", clock=ticking_clock())
    yield j
    j.close()
