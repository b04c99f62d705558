from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from console.targets.types import TableInfo

from .reflection import sqlite_tables

Tables = Callable[[str | None, str], TableInfo]


@pytest.fixture(scope="session")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Tables:
    """Reflected tables of a real SQLite database (products, stock, customers)."""
    return sqlite_tables(tmp_path_factory.mktemp("target") / "target.db")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """Write a file in tmp_path and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


@pytest.fixture(autouse=True)
def _slow_only_when_asked(request: pytest.FixtureRequest) -> None:
    """``@pytest.mark.slow`` tests here run only with ``-m slow`` (as pyproject describes)."""
    if request.node.get_closest_marker("slow") and "slow" not in (
        request.config.getoption("markexpr") or ""
    ):
        pytest.skip("slow: run with -m slow")
