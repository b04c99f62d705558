"""The scenario library: declared scenarios, found by id."""

from __future__ import annotations

from console.drill.scenarios.catalog import REPLAY_EXPECT, SCENARIOS
from console.drill.scenarios.model import Built, Expected, Scenario, Stage
from console.errors import BadInput

__all__ = ["REPLAY_EXPECT", "SCENARIOS", "Built", "Expected", "Scenario", "Stage", "get"]


def get(scenario_id: str) -> Scenario:
    for s in SCENARIOS:
        if s.id == scenario_id:
            return s
    names = ", ".join(s.id for s in SCENARIOS)
    raise BadInput(f"unknown scenario '{scenario_id}'; `backout drill list` shows: {names}.")
