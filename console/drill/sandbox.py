"""A drill's sandbox: its own directory with a SQLite target made from a seed, the change sets
the scenario's automation sends, and the target states the score compares against.

A sandbox is never a production target: its directory must be new or empty, and the only
target URL a scenario writes is the sandbox's own SQLite file.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from console.demo import create_crm
from console.errors import BadInput
from console.paths import data_dir

MANIFEST = "drill.json"
STATES = "states.json"
# Rows dumped per table, by key: what "the target equals the expected state" compares.
TABLES = {"products": "sku", "customers": "id"}
Rows = list[list[Any]]


def default_root(drill_id: str) -> Path:
    return data_dir() / "drills" / drill_id


@dataclass(frozen=True)
class Sandbox:
    root: Path

    @property
    def target(self) -> Path:
        return self.root / "crm.db"

    @property
    def target_url(self) -> str:
        return f"sqlite:///{self.target}"

    @classmethod
    def create(cls, root: Path, *, products: int, seed: int) -> Sandbox:
        """A new sandbox at ``root`` (refused unless new or empty), its target filled from
        ``seed``: the same seed gives the same rows."""
        root = root.expanduser().resolve()
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise BadInput(
                f"--dir {root}: a drill sandbox needs a new or empty directory, and this one "
                "holds other files; pick another directory."
            )
        root.mkdir(parents=True, exist_ok=True)
        box = cls(root)
        create_crm(box.target, products=products, seed=seed)
        return box

    @classmethod
    def open(cls, root: Path) -> Sandbox:
        box = cls(Path(root))
        if not (box.root / MANIFEST).is_file():
            raise BadInput(f"{root} is not a drill sandbox (no {MANIFEST}); start a drill there.")
        return box

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
        """Every row of the sandbox tables, ordered by key, as JSON-able lists."""
        return {
            table: [list(r) for r in self.query(f"SELECT * FROM {table} ORDER BY {key}")]
            for table, key in TABLES.items()
        }

    def write_changeset(self, name: str, doc: dict[str, Any]) -> Path:
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def write_json(self, name: str, value: Any) -> None:
        (self.root / name).write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")

    def read_json(self, name: str) -> Any:
        return json.loads((self.root / name).read_text())
