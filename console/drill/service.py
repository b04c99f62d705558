"""Starting a drill and finding it again: build the sandbox, run the scenario's batch through
the drill's journal handle, and journal ``drill.started`` for the trainer and the score."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.config import Settings
from console.drill import scenarios
from console.drill.sandbox import MANIFEST, STATES, Rows, Sandbox, default_root
from console.errors import BadInput, NotFound
from console.journal import Journal, new_id
from console.journal.setup import open_journal


def states_digest(states: dict[str, dict[str, Rows]]) -> str:
    return hashlib.sha256(json.dumps(states, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Started:
    drill_id: str
    scenario: scenarios.Scenario
    seed: int
    box: Sandbox
    run_id: str
    facts: dict[str, Any]

    @property
    def command(self) -> str:
        return f"backout runbook start {self.scenario.runbook} --run {self.run_id}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "drill_id": self.drill_id,
            "scenario": self.scenario.id,
            "seed": self.seed,
            "sandbox": str(self.box.root),
            "target": self.box.target_url,
            "run_id": self.run_id,
            "runbook": self.scenario.runbook,
            "briefing": self.scenario.briefing,
            "next": self.command,
        }


def start(
    journal_url: str,
    settings: Settings,
    actor: str,
    scenario_id: str,
    *,
    seed: int | None = None,
    root: Path | None = None,
    config: Path | None = None,
) -> Started:
    """Build a fresh sandbox for the scenario and run its batch; every event goes through a
    handle opened with the drill's id, so it is flagged and kept out of real run lists."""
    scenario = scenarios.get(scenario_id)
    seed = random.SystemRandom().randrange(1, 1_000_000) if seed is None else seed
    drill_id = new_id()
    box = Sandbox.create(root or default_root(drill_id), products=scenario.products, seed=seed)
    journal = open_journal(journal_url, actor, drill=drill_id)
    try:
        baseline = box.dump()
        built = scenario.build(
            scenarios.Stage(journal, settings, box, seed, drill_id, config=config)
        )
        states = {"baseline": baseline, "batch": box.dump()}
        box.write_json(STATES, states)
        manifest = {
            "drill_id": drill_id,
            "scenario": scenario.id,
            "seed": seed,
            "run_id": built.run_id,
            "states_digest": states_digest(states),
        }
        box.write_json(MANIFEST, manifest)
        journal.append(
            "drill.started",
            {
                **scenario.as_dict(),
                "scenario": scenario.id,
                "seed": seed,
                "sandbox": str(box.root),
                "target": box.target_url,
                "states_digest": manifest["states_digest"],
                "facts": built.facts,
            },
            run_id=built.run_id,
        )
    finally:
        journal.close()
    return Started(drill_id, scenario, seed, box, built.run_id, built.facts)


@dataclass(frozen=True)
class Drill:
    """A started drill as the journal recorded it."""

    drill_id: str
    run_id: str
    started_seq: int
    started_ts: str
    payload: dict[str, Any]

    @property
    def scenario(self) -> scenarios.Scenario:
        return scenarios.get(str(self.payload["scenario"]))

    def states(self) -> dict[str, dict[str, Rows]]:
        """The sandbox's recorded target states, refused if they no longer match the digest
        journaled when the drill started."""
        box = Sandbox.open(Path(self.payload["sandbox"]))
        states: dict[str, dict[str, Rows]] = box.read_json(STATES)
        if states_digest(states) != self.payload["states_digest"]:
            raise BadInput(
                f"{box.root / STATES}: the recorded target states were changed since the "
                "drill started; the drill cannot be scored."
            )
        return states


def find(journal: Journal, ref: str) -> Drill:
    """A drill by id or unique id prefix, from its ``drill.started`` event."""
    found = {
        str(e.payload["drill"]): e
        for e in journal.events(kinds=["drill.started"], limit=100_000)
        if str(e.payload.get("drill", "")).startswith(ref)
    }
    if not found:
        raise NotFound(f"no drill '{ref}' in {journal.display_url}; `backout drill start` one.")
    if len(found) > 1 and ref not in found:
        raise BadInput(f"drill id '{ref}' is ambiguous; type more characters.")
    e = found.get(ref) or next(iter(found.values()))
    return Drill(str(e.payload["drill"]), str(e.run_id), e.seq, e.ts, dict(e.payload))


__all__ = ["MANIFEST", "Drill", "Started", "find", "start"]
