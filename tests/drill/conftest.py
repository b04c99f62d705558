"""A training team around one journal: a trainer starts drills, trainees and approvers work
them through the CLI (``--as`` on SQLite), with the shipped runbooks and a policy with roles."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.journal import Journal
from tests.runbook.conftest import PEOPLE, POLICY, Result, Team

ROLLED_BACK = ("pause", "assess", "approve", "rollback", "verify", "notify")


class Drills(Team):
    """``Team`` with drill helpers; ``run_id`` is the run of the last drill started."""

    drill_id: str = ""

    def start(self, scenario: str, seed: int = 7, *extra: str) -> dict[str, Any]:
        box = self.tmp / f"sandbox-{uuid.uuid4().hex[:6]}"
        r = self.cli(
            "trainer",
            "drill",
            "start",
            scenario,
            "--seed",
            str(seed),
            "--dir",
            str(box),
            "--json",
            *extra,
        )
        assert r.code == 0, r.err
        started: dict[str, Any] = r.json()
        self.run_id, self.drill_id = started["run_id"], started["drill_id"]
        return started

    def next(self, ex: str, person: str = "oncall1", *args: str) -> Result:
        return self.cli(person, "runbook", "next", ex, *args)

    def start_runbook(self, name: str, *args: str, person: str = "oncall1") -> str:
        r = self.cli(person, "runbook", "start", name, "--run", self.run_id, "--json", *args)
        assert r.code == 0, r.err
        return str(r.json()["exec_id"])

    def status(self, ex: str) -> dict[str, Any]:
        r = self.cli("oncall1", "runbook", "status", ex, "--json")
        assert r.code == 0, r.err
        return dict(r.json())

    def walk(self, ex: str, approvers: tuple[str, ...] = ("owner1", "ic1")) -> list[int]:
        """``next`` until the execution ends, as the trainee would: approvers sign when an
        approval is pending, manual steps are confirmed. The exit codes of ``next``."""
        codes = []
        for _ in range(20):
            status = self.status(ex)
            if status["status"] in ("completed", "escalated", "denied", "aborted"):
                break
            step = next(s for s in status["steps"] if s["id"] == status["current_step"])
            if status["status"] == "awaiting_approval":
                self.approve(ex, *approvers)
            extra = ("--confirm", "--answer", "checked") if step["kind"] == "manual" else ()
            codes.append(self.next(ex, "oncall1", *extra).code)
        return codes

    def approve(self, ex: str, *people: str) -> None:
        for person in people:
            r = self.cli(person, "approve", ex, "--comment", "plan read")
            assert r.code == 0, r.err

    def score(self, *args: str) -> Result:
        return self.cli("trainer", "drill", "score", self.drill_id, "--json", *args)

    def events(self, **kw: Any) -> list[Any]:
        j = Journal(self.url, actor="test")
        try:
            return list(j.events(limit=100_000, **kw))
        finally:
            j.close()


@pytest.fixture
def drills(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Drills]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    names = {p: p for p in (*PEOPLE, "trainer")}
    team = Drills("sqlite", f"sqlite:///{tmp_path / 'journal.db'}", tmp_path, "", names)
    team.config = tmp_path / "backout.toml"
    team.config.write_text(POLICY.format(**names))
    yield team
