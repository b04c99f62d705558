"""Fixtures for the console: a real journal built once per test process, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.tui.journal_builder import BuiltJournal, FixedClock, build_journal


@pytest.fixture(scope="session")
def journal_template(tmp_path_factory: pytest.TempPathFactory) -> BuiltJournal:
    path = tmp_path_factory.mktemp("journal-template") / "journal.db"
    return build_journal(path)


@pytest.fixture
def built(journal_template: BuiltJournal, tmp_path: Path) -> BuiltJournal:
    """A private copy of the scenario journal (tests may append to it)."""
    path = tmp_path / "journal.db"
    shutil.copyfile(journal_template.path, path)
    clock = FixedClock(journal_template.clock.now)
    return BuiltJournal(path, f"sqlite:///{path}", clock, dict(journal_template.runs))
