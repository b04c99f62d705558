"""The batches scenarios send: realistic price and catalog changes on the sandbox CRM, drawn
from the seed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from console.drill.scenarios.model import Stage

SEGMENT = 20


def price_rows(stage: Stage, region: str, n: int) -> list[tuple[str, Decimal]]:
    """``n`` products of a region (seeded choice), in key order, with their current price."""
    rows = stage.box.query("SELECT sku, price FROM products WHERE region = ? ORDER BY sku", region)
    picked = sorted(stage.rng.sample(rows, n))
    return [(str(sku), Decimal(str(price)).quantize(Decimal("0.01"))) for sku, price in picked]


def uplift(rows: list[tuple[str, Decimal]], percent: int) -> list[dict[str, Any]]:
    factor = Decimal(100 + percent) / 100
    return [
        {
            "op": "update",
            "key": {"sku": sku},
            "set": {"price": str((price * factor).quantize(Decimal("0.01")))},
        }
        for sku, price in rows
    ]


def changeset(
    stage: Stage,
    base: str,
    operations: list[dict[str, Any]],
    *,
    description: str,
    invariants: list[dict[str, Any]] | None = None,
    version: int = 1,
    **options: Any,
) -> dict[str, Any]:
    step: dict[str, Any] = {
        "name": base,
        "table": "products",
        "key": ["sku"],
        "operations": operations,
    }
    if invariants:
        step["invariants"] = invariants
    return {
        "changeset": stage.name(base),
        "version": version,
        "automation": "n8n:workflow/pricing-sync",
        "description": description,
        "target": stage.box.target_url,
        "options": {"segment_size": SEGMENT, "on_error": "pause", **options},
        "steps": [step],
    }
