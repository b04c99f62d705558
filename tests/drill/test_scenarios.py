"""Each scenario worked end to end through the CLI by its intended runbook, with the trainee,
two approvers and a trainer, reaching its expected outcome and scoring as correct; every
event of the drill carries its id and its runs stay out of real run lists."""

from __future__ import annotations

from typing import Any

import pytest

from console.drill.scenarios import SCENARIOS, get
from console.journal import Journal
from console.journal.verify import verify
from tests.drill.conftest import Drills

# Each scenario, and the `backout reconcile-and-fix` extra argument it needs.
NEEDS_BACKUP = ("--backup-ref", "nightly-2026-11-27")


def _runbook_args(scenario: str) -> tuple[str, ...]:
    return NEEDS_BACKUP if get(scenario).runbook == "reconcile-and-fix" else ()


def _all_events(d: Drills) -> list[Any]:
    j = Journal(d.url, actor="test")
    try:
        return list(j.events(limit=100_000))
    finally:
        j.close()


@pytest.mark.parametrize("scenario", [s.id for s in SCENARIOS])
def test_scenario_worked_by_its_runbook_scores_correct(drills: Drills, scenario: str) -> None:
    d = drills
    started = d.start(scenario)
    assert started["next"] == f"backout runbook start {started['runbook']} --run {d.run_id}"
    ex = d.start_runbook(get(scenario).runbook, *_runbook_args(scenario))
    d.walk(ex)
    r = d.score()
    assert r.code == 0, r.out
    score = r.json()
    assert score["checks"] == dict.fromkeys(score["checks"], True)
    assert score["correct"], score["wrong_branches"]
    assert score["path"] == list(get(scenario).expected.path)
    assert score["time_to_detect_s"] is not None and score["time_to_decision_s"] is not None
    assert score["time_to_detect_s"] <= score["time_to_decision_s"]

    # Every event in this journal is the drill's (the batch, a rejected change set, the
    # trainee's runbook, approvals, rollback runs, the score): each carries the drill's id.
    events = _all_events(d)
    assert {e.kind for e in events} >= {"drill.started", "runbook.started", "drill.scored"}
    assert {e.payload.get("drill") for e in events} == {d.drill_id}
    j = Journal(d.url, actor="test")
    try:
        assert j.runs(drills=False) == []
        assert d.run_id in [r.id for r in j.runs(drills=True)]
        assert verify(j, remember=False).ok
    finally:
        j.close()
