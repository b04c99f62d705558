"""Helpers for the command-line tests: run the real ``backout`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from console.journal import Journal

BACKOUT = Path(sys.executable).with_name("backout")


def backout(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``backout`` command (the console script)."""
    command = [str(BACKOUT)] if BACKOUT.exists() else [sys.executable, "-m", "console"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The contract for expected errors: one sentence on stderr, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("backout: ")
    return lines[0]


def _op(op_no: int) -> dict[str, Any]:
    sku = f"SKU-{op_no}"
    return {
        "op_no": op_no,
        "table": "products",
        "op": "update",
        "key": {"sku": sku},
        "before": {"sku": sku, "price": Decimal("10.00")},
        "after": {"sku": sku, "price": Decimal("10.50")},
        "inverse": {"op": "update", "set": {"price": Decimal("10.00")}},
        "idem": f"i{op_no}",
    }


@dataclass
class Filled:
    path: Path
    completed: str
    failed: str
    running: str

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"


def fill(journal: Journal) -> None:
    """Three runs: one completed (with operations), one failed, one still running."""
    created = {
        "changeset": "eu-price-uplift",
        "version": 3,
        "automation": "n8n:workflow/42",
        "target": "sqlite:///crm.db",
        "rows_total": 4,
        "steps": [{"step_no": 1, "name": "raise", "table": "products", "key": ["sku"]}],
    }
    for run, outcome in (("aaa111", "run.completed"), ("bbb222", "run.failed"), ("ccc333", None)):
        with journal.write() as w:
            w.append("run.created", created, run_id=run, corr=f"corr-{run}")
            w.append("run.started", {}, run_id=run, corr=f"corr-{run}")
            for seg in (1, 2):
                ops = [_op(seg * 2 - 1), _op(seg * 2)]
                w.append(
                    "segment.intent",
                    {"seg_no": seg, "step_no": 1, "ops": ops},
                    run_id=run,
                    corr=f"corr-{run}",
                )
                w.append(
                    "segment.applied",
                    {"seg_no": seg, "applied": [o["op_no"] for o in ops]},
                    run_id=run,
                    corr=f"corr-{run}",
                )
                w.append("checkpoint", {"seg_no": seg, "op_no": seg * 2}, run_id=run)
            if outcome:
                w.append(outcome, {"reason": "circuit breaker"}, run_id=run, corr=f"corr-{run}")


@pytest.fixture
def filled(tmp_path: Path) -> Filled:
    path = tmp_path / "journal.db"
    j = Journal(str(path), actor="alice")
    fill(j)
    j.close()
    return Filled(path, "aaa111", "bbb222", "ccc333")
