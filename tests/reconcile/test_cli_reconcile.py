"""``backout reconcile`` and ``backout fix`` as scripts see them: one JSON document, exit
codes 0/3, plan digest stable between --plan and --apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

import console.cli  # noqa: F401 - registers every command on the app
from console.changes import load_changeset
from console.cli.app import app
from console.config import Settings
from console.engine.apply import Engine
from console.errors import BackoutError
from console.journal import Journal
from tests.engine.helpers import changeset_doc, make_items, write_changeset


def _cli(journal: Path, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["--journal", str(journal), "--as", "tester", *args])
    if isinstance(r.exception, BackoutError):  # main() turns these into their exit code
        return int(r.exception.exit_code), r.stdout
    return r.exit_code, r.stdout


def _doc(out: str) -> Any:
    return json.loads(out)


def test_reconcile_and_fix_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    jpath = tmp_path / "journal.db"
    make_items(url, 20)
    j = Journal(f"sqlite:///{jpath}", actor="tester")
    doc = changeset_doc(url, updates=range(1, 6))
    run_id = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "c.yaml", doc)))
    assert run_id.run_id
    rid = run_id.run_id

    code, out = _cli(jpath, "reconcile", rid, "--json")
    assert code == 0
    assert _doc(out)["counts"] == {"applied": 5} and _doc(out)["against"] == "expected"

    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("UPDATE items SET note = 'oops' WHERE id = 4"))
    eng.dispose()
    code, out = _cli(jpath, "reconcile", rid[:8])
    assert code == 3
    assert "wrong_value" in out and "worst rows:" in out and "checked:" in out

    code, out = _cli(jpath, "fix", rid, "--plan", "--json")
    assert code == 0
    plan = _doc(out)
    assert [op["set"] for op in plan["ops"]] == [{"note": "v2"}]
    code, out = _cli(jpath, "fix", rid, "--plan")
    assert code == 0 and f"plan sha256 {plan['digest']}" in out

    code, out = _cli(jpath, "fix", rid, "--apply", "--class", "wrong_value", "--json")
    assert code == 0, out
    applied = _doc(out)
    assert applied["verified"] and applied["plan_digest"] == plan["digest"]
    code, out = _cli(jpath, "reconcile", rid, "--json")
    assert code == 0 and _doc(out)["counts"] == {"applied": 5}

    code, _out = _cli(jpath, "reconcile", rid, "--against", "sideways")
    assert code == 2
