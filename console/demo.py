"""The demo workspace: a sandbox SQLite "CRM" plus a journal, filled deterministically."""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

DEMO_SEED = 20261127


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def crm(self) -> Path:
        return self.root / "crm.db"

    @property
    def crm_url(self) -> str:
        return f"sqlite:///{self.crm}"

    @property
    def journal(self) -> Path:
        return self.root / "journal.db"

    @property
    def journal_url(self) -> str:
        return f"sqlite:///{self.journal}"

    @property
    def changesets(self) -> Path:
        return self.root / "changesets"


def create_crm(path: Path, *, products: int = 50_000, seed: int = DEMO_SEED) -> None:
    """A small CRM: products (decimal prices, NULLable fields, timestamps) and customers."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript(
            """
            CREATE TABLE products (
                sku TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                region TEXT NOT NULL,
                price NUMERIC(10, 2) NOT NULL CHECK (price >= 0),
                stock INTEGER,
                updated_at TIMESTAMP
            );
            CREATE TABLE customers (
                id INTEGER PRIMARY KEY,
                email TEXT NOT NULL UNIQUE,
                tier TEXT NOT NULL,
                credit NUMERIC(12, 2)
            );
            """
        )
        regions = ["EU", "US", "APAC"]
        conn.executemany(
            "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)",
            (
                (
                    f"SKU-{i:06d}",
                    f"Product {i}",
                    regions[i % 3],
                    str(Decimal(rng.randint(100, 99_999)) / 100),
                    None if i % 17 == 0 else rng.randint(0, 500),
                    f"2026-11-{1 + i % 26:02d} 09:{i % 60:02d}:00",
                )
                for i in range(products)
            ),
        )
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)",
            (
                (
                    i,
                    f"user{i}@example.com",
                    ["free", "pro", "enterprise"][i % 3],
                    str(Decimal(rng.randint(0, 500_000)) / 100),
                )
                for i in range(1, 2001)
            ),
        )
    conn.close()


def prepare(root: Path) -> Workspace:
    """Create (or reuse) the workspace at ``root``. Returns it; runs are added separately."""
    ws = Workspace(root.resolve())
    ws.root.mkdir(parents=True, exist_ok=True)
    ws.changesets.mkdir(exist_ok=True)
    if not ws.crm.exists():
        create_crm(ws.crm)
    return ws
