"""A drill's sandbox: one directory per drill, never a production place.

Both kinds of drill use it: a scenario puts a SQLite target made from a seed there (its events
go to the configured journal, flagged); a replay puts its own drill journal there too, next to a
target holding the recorded run's rows, with a note (``replay.json``) that makes every command
on that journal stamp the drill id. Either way the directory must be new or empty, and the
only target a drill writes is the sandbox's own SQLite file. ``states.json`` keeps the target
states a score compares against (``baseline``: before the batch; ``batch``: after it).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from console.errors import BadInput
from console.paths import data_dir

MANIFEST = "drill.json"  # a scenario drill's: id, scenario, seed, run, states digest
NOTE = "replay.json"  # a replay drill's: id, paths, what it replays (read by Ctx.journal)
STATES = "states.json"
Rows = list[list[Any]]


def states_digest(states: dict[str, dict[str, Rows]]) -> str:
    return hashlib.sha256(json.dumps(states, sort_keys=True).encode()).hexdigest()


def drills_dir() -> Path:
    """Where sandboxes go unless ``--dir`` says otherwise: ``$XDG_DATA_HOME/backout/drills``."""
    return data_dir() / "drills"


@dataclass(frozen=True)
class Sandbox:
    """A drill's directory: its target (and, for a replay, its journal)."""

    root: Path
    drill_id: str

    @property
    def target(self) -> Path:
        return self.root / "target.db"

    @property
    def journal_path(self) -> Path:  # a replay's; a scenario's events are in the main journal
        return self.root / "journal.db"

    @property
    def target_url(self) -> str:
        return f"sqlite:///{self.target}"

    @property
    def journal_url(self) -> str:
        return f"sqlite:///{self.journal_path}"

    def as_dict(self) -> dict[str, str]:
        return {
            "drill_id": self.drill_id,
            "sandbox": str(self.root),
            "journal": self.journal_url,
            "target": self.target_url,
        }

    @classmethod
    def create(cls, drill_id: str, directory: Path | None = None) -> Sandbox:
        """The drill's new directory (default: under ``drills_dir()``), refused unless it is
        new or empty: a drill never shares a place with anything else."""
        root = (directory or drills_dir() / drill_id).expanduser().resolve()
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise BadInput(
                f"--dir {root}: a drill sandbox needs a new or empty directory, and this one "
                "already holds files (a drill?); pick another directory."
            )
        root.mkdir(parents=True, exist_ok=True)
        return cls(root, drill_id)

    @classmethod
    def open(cls, root: Path) -> Sandbox:
        """A sandbox made by ``drill start`` or ``drill replay``, by its note."""
        root = Path(root).expanduser().resolve()
        for name in (MANIFEST, NOTE):
            if (root / name).is_file():
                note = json.loads((root / name).read_text())
                return cls(root, str(note.get("drill_id") or note.get("drill")))
        raise BadInput(f"{root} is not a drill sandbox (no {MANIFEST} or {NOTE}); check --dir.")

    @property
    def is_replay(self) -> bool:
        return (self.root / NOTE).is_file()

    def clear(self) -> None:
        """Remove the drill journal and target (a rebuild); the directory stays."""
        for path in (self.journal_path, self.target):
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    def sql(self, *statements: str) -> None:
        """Write to the sandbox target as someone outside backout would (no journal)."""
        conn = sqlite3.connect(self.target)
        try:
            with conn:
                for stmt in statements:
                    conn.execute(stmt)
        finally:
            conn.close()

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.target)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def dump(self) -> dict[str, Rows]:
        """Every row of every table of the target, in a stable order, as JSON-able lists:
        what "the target equals the expected state" compares."""
        tables = self.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
        dumped: dict[str, Rows] = {}
        for (table,) in tables:
            width = len(self.query(f"PRAGMA table_info('{table}')"))
            order = ", ".join(str(n) for n in range(1, width + 1))
            rows = self.query(f'SELECT * FROM "{table}" ORDER BY {order}')
            dumped[table] = [list(r) for r in rows]
        return dumped

    def keep_states(self, **states: dict[str, Rows]) -> str:
        """Add target states to ``states.json``; the digest of all it holds (journaled, so a
        score can tell they were not edited since)."""
        kept = self.read_json(STATES) if (self.root / STATES).is_file() else {}
        kept.update(states)
        # Written as digested, in one line: a big replay's states are megabytes.
        text = json.dumps(kept, sort_keys=True)
        (self.root / STATES).write_text(text)
        return hashlib.sha256(text.encode()).hexdigest()

    def write_changeset(self, name: str, doc: dict[str, Any]) -> Path:
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def write_json(self, name: str, value: Any) -> None:
        (self.root / name).write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")

    def read_json(self, name: str) -> Any:
        return json.loads((self.root / name).read_text())
