"""The plan digest approvals bind to: hashed as it is put together, it must equal the sha256
of the canonical plan it always was, for every kind of value a plan holds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from console.canonical import canonical_json, digest
from console.changes import load_changeset
from console.config import Settings
from console.engine.apply import Engine
from console.errors import Exit
from console.journal import Journal
from console.journal.models import Run
from console.journal.projections import Encoded
from console.rollback.execute import Options, Rollback
from console.rollback.plan import Inverse, RollbackPlan, Scope
from tests.engine.helpers import changeset_doc, make_items, write_changeset


def _reference(plan: RollbackPlan) -> str:
    """The digest as first defined: one canonical encoding of the whole plan."""
    return digest(
        {
            "run": plan.run.id,
            "scope": plan.scope.as_dict(),
            "items": [i.as_dict() for i in plan.items],
        }
    )


def _encoded(row: dict[str, Any]) -> Encoded:
    return Encoded(row, canonical_json(row))


def test_digest_equals_the_canonical_plan_for_every_value_kind() -> None:
    ours = {"id": 7, "amount": "12.50", "note": 'café ☕ "q"', "at": None}
    now = {"id": 7, "amount": Decimal("99.10"), "note": "x\ny", "at": dt.datetime(2026, 1, 2)}
    items = [
        Inverse(9, 2, "tbl \"é\"", _encoded({"id": 7}), "update", _encoded(ours),
                {"amount": Decimal("1.5")}, ("amount",), now, True),
        Inverse(8, 1, "items", {"id": 8}, "delete", {"id": 8, "v": 1.25}, None, (), None, False),
        Inverse(3, 1, "items", _encoded({"id": 3}), "insert", None, _encoded({"id": 3, "b": True}),
                (), None, False),
    ]  # fmt: skip
    run = cast(Run, SimpleNamespace(id="r-ü"))
    plan = RollbackPlan(run, Scope(("a",), ({"id": "3"},)), items)
    assert plan.digest == _reference(plan)
    assert RollbackPlan(run, Scope()).digest == _reference(RollbackPlan(run, Scope()))
    items[1] = Inverse(8, 1, "items", {"id": 8}, "delete", {"id": 8, "v": 1.5}, None, (), None, 0)  # type: ignore[arg-type]
    assert plan.digest == _reference(plan)  # a non-bool conflict flag: the general encoding


def test_digest_of_a_real_plan_is_stable_and_canonical(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 60)
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="oncall")
    doc = changeset_doc(url, updates=range(1, 30), inserts=range(100, 110), deletes=range(40, 45))
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "c.yaml", doc)))
    assert report.exit_code == Exit.DONE, report.message
    first = Rollback(j, Settings()).plan(report.run_id or "", Options())
    again = Rollback(j, Settings()).plan(report.run_id or "", Options())
    assert len(first.items) == 44
    assert first.digest == again.digest == _reference(first)
