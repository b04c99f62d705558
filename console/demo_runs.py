"""The demo's runs, each produced by the real engine against the sandbox CRM:
a completed batch, a batch that fails midway on a constraint (paused, part applied), a batch
whose rows are then edited out of band, and a large batch."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import yaml

from console.changes import load_changeset
from console.config import Settings
from console.demo import Workspace
from console.engine.apply import Engine
from console.journal import Journal


def _prices(conn: sqlite3.Connection, region: str, limit: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT sku, price FROM products WHERE region = ? ORDER BY sku LIMIT ?", (region, limit)
    ).fetchall()
    return [(sku, str(Decimal(str(price)))) for sku, price in rows]


def _write_yaml(path: Path, doc: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _uplift(sku_prices: list[tuple[str, str]], factor: str) -> list[dict[str, object]]:
    return [
        {
            "op": "update",
            "key": {"sku": sku},
            "set": {"price": str((Decimal(p) * Decimal(factor)).quantize(Decimal("0.01")))},
        }
        for sku, p in sku_prices
    ]


def write_changesets(ws: Workspace) -> dict[str, Path]:
    conn = sqlite3.connect(ws.crm)
    files: dict[str, Path] = {}
    files["uplift"] = _write_yaml(
        ws.changesets / "eu-price-uplift.yaml",
        {
            "changeset": "eu-price-uplift",
            "version": 3,
            "automation": "n8n:workflow/42",
            "description": "Raise EU list prices by 5 %",
            "target": ws.crm_url,
            "touchpoints": {
                "source": "n8n:workflow/42",
                "writes": ["crm.products"],
                "readers": ["shop-frontend", "nightly-erp-export"],
            },
            "steps": [
                {
                    "name": "raise-prices",
                    "table": "products",
                    "key": ["sku"],
                    "operations": _uplift(_prices(conn, "EU", 400), "1.05"),
                    "invariants": [
                        {
                            "name": "no-negative-prices",
                            "sql": "SELECT COUNT(*) FROM products WHERE price < 0",
                            "expect": 0,
                        }
                    ],
                }
            ],
        },
    )
    us = _uplift(_prices(conn, "US", 600), "0.90")
    us[350]["set"] = {"price": "-1.00"}  # a bad row midway: the CHECK constraint refuses it
    files["discount"] = _write_yaml(
        ws.changesets / "us-discount.yaml",
        {
            "changeset": "us-black-friday-discount",
            "version": 1,
            "automation": "zapier:zap/9931",
            "description": "Black Friday: US prices -10 %",
            "target": ws.crm_url,
            "options": {"segment_size": 50},
            "steps": [{"name": "discount", "table": "products", "key": ["sku"], "operations": us}],
        },
    )
    stock = conn.execute(
        "SELECT sku, stock FROM products WHERE region = 'APAC' AND stock IS NOT NULL "
        "ORDER BY sku LIMIT 500"
    ).fetchall()
    files["restock"] = _write_yaml(
        ws.changesets / "apac-restock.yaml",
        {
            "changeset": "apac-restock",
            "version": 1,
            "automation": "make:scenario/311",
            "description": "Weekly APAC restock from the warehouse sheet",
            "target": ws.crm_url,
            "steps": [
                {
                    "name": "restock",
                    "table": "products",
                    "key": ["sku"],
                    "operations": [
                        {"op": "update", "key": {"sku": s}, "set": {"stock": n + 25}}
                        for s, n in stock
                    ],
                },
                {
                    "name": "new-products",
                    "table": "products",
                    "key": ["sku"],
                    "operations": [
                        {
                            "op": "insert",
                            "row": {
                                "sku": f"NEW-{i:04d}",
                                "name": f"New product {i}",
                                "region": "APAC",
                                "price": "19.99",
                                "stock": 10,
                                "updated_at": "2026-11-27 08:00:00",
                            },
                        }
                        for i in range(40)
                    ],
                },
            ],
        },
    )
    big = conn.execute("SELECT sku, price FROM products ORDER BY sku LIMIT 30000").fetchall()
    csv_path = ws.changesets / "catalog-resync.csv"
    with csv_path.open("w", encoding="utf-8") as fh:
        fh.write("sku,price\n")
        for sku, price in big:
            fh.write(f"{sku},{(Decimal(str(price)) + Decimal('0.01')).quantize(Decimal('0.01'))}\n")
    files["resync"] = csv_path
    conn.close()
    return files


def populate(ws: Workspace, journal: Journal) -> None:
    """Fill the demo journal once (an existing demo journal is reused as it is)."""
    if journal.count_runs(drills=None):
        return
    files = write_changesets(ws)
    settings = Settings()
    actor = journal.actor
    try:
        journal.actor = "n8n-bot"
        Engine(journal, settings).apply(load_changeset(files["uplift"]))
        journal.actor = "zapier-bot"
        Engine(journal, settings).apply(load_changeset(files["discount"]))
        journal.actor = "make-bot"
        Engine(journal, settings).apply(load_changeset(files["restock"]))
        # Someone fixes a few rows by hand after the batch: rollback must not clobber them.
        with sqlite3.connect(ws.crm) as conn:
            conn.execute(
                "UPDATE products SET stock = stock - 3 WHERE sku IN (SELECT sku FROM products "
                "WHERE region = 'APAC' AND stock IS NOT NULL ORDER BY sku LIMIT 5)"
            )
        journal.actor = "retool-sync"
        cs = load_changeset(
            files["resync"],
            table="products",
            key=["sku"],
            op="update",
            name="catalog-resync",
            version=7,
            target=ws.crm_url,
        )
        Engine(journal, settings).apply(
            cs,
            segment_size=500,
            source_args={
                "table": "products",
                "key": ["sku"],
                "op": "update",
                "name": "catalog-resync",
                "version": 7,
                "target": ws.crm_url,
            },
        )
    finally:
        journal.actor = actor
