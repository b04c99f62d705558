"""Per-user state in XDG locations (trusted journal heads, default journal)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "backout"


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "backout"


def default_journal_url() -> str:
    """The documented default: ``$XDG_DATA_HOME/backout/journal.db``."""
    return f"sqlite:///{data_dir() / 'journal.db'}"
