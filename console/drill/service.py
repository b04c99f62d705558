"""Starting a drill and finding it again: build the sandbox, run the scenario's batch through
the drill's journal handle, and journal ``drill.started`` for the trainer and the score."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.config import Settings
from console.demo import create_crm
from console.drill import scenarios
from console.drill.sandbox import MANIFEST, STATES, Rows, Sandbox, drills_dir, states_digest
from console.drill.scenarios import Expected
from console.errors import BadInput, NotFound
from console.journal import Journal, StoredEvent, new_id, parse_ts
from console.journal.kinds import FAILURE_KINDS
from console.journal.setup import open_journal


@dataclass(frozen=True)
class Started:
    drill_id: str
    scenario: scenarios.Scenario
    seed: int
    box: Sandbox
    run_id: str
    facts: dict[str, Any]
    journal: str  # where the drill's events are (the configured journal, as displayed)

    @property
    def command(self) -> str:
        return f"backout runbook start {self.scenario.runbook} --run {self.run_id}"

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.box.as_dict(),
            "kind": "scenario",
            "journal": self.journal,
            "run_id": self.run_id,
            "scenario": self.scenario.id,
            "seed": self.seed,
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
    box = Sandbox.create(drill_id, root)
    create_crm(box.target, products=scenario.products, seed=seed)
    journal = open_journal(journal_url, actor, drill=drill_id)
    try:
        baseline = box.dump()
        built = scenario.build(
            scenarios.Stage(journal, settings, box, seed, drill_id, config=config)
        )
        manifest = {
            "drill_id": drill_id,
            "scenario": scenario.id,
            "seed": seed,
            "run_id": built.run_id,
            "states_digest": box.keep_states(baseline=baseline, batch=box.dump()),
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
        shown = journal.display_url
    finally:
        journal.close()
    return Started(drill_id, scenario, seed, box, built.run_id, built.facts, shown)


@dataclass(frozen=True)
class Drill:
    """A drill as its journal recorded it, a scenario's or a replay's: what the trainee works
    on, what the right ending is, and where the trainee's part begins."""

    drill_id: str
    kind: str  # "scenario" | "replay"
    name: str  # the scenario's id, or "replay:<expect>"
    run_id: str
    runbook: str
    expected: Expected
    started_seq: int  # the trainee's events come after this one
    shown_at: tuple[str, ...]  # when the trouble showed (a replay's: on either clock)
    sandbox: Path
    states_digest: str | None  # None: the target states are not known yet
    payload: dict[str, Any]

    def counted_from(self, first: str) -> float:
        """What a timing counts from (epoch seconds), for the trainee's first event at
        ``first``: the latest moment the trouble showed before it, else the earliest (a
        trainee faster than the replay)."""
        moments = sorted(parse_ts(t).timestamp() for t in self.shown_at)
        before = [m for m in moments if m <= parse_ts(first).timestamp()]
        return before[-1] if before else moments[0]

    def states(self) -> dict[str, dict[str, Rows]]:
        """The sandbox's recorded target states, refused if they no longer match the digest
        journaled when the drill was set up."""
        box = Sandbox.open(self.sandbox)
        if self.states_digest is None:
            raise BadInput(
                f"drill {self.drill_id}: the replay has not finished, so the state it leaves "
                "is not known; play it to the end (or `drill replay --headless`) and score again."
            )
        states: dict[str, dict[str, Rows]] = box.read_json(STATES)
        if states_digest(states) != self.states_digest:
            raise BadInput(
                f"{box.root / STATES}: the recorded target states were changed since the "
                "drill started; the drill cannot be scored."
            )
        return states


def _scenario_drill(e: StoredEvent) -> Drill:
    scenario = scenarios.get(str(e.payload["scenario"]))
    return Drill(
        drill_id=str(e.payload["drill"]),
        kind="scenario",
        name=scenario.id,
        run_id=str(e.run_id),
        runbook=scenario.runbook,
        expected=scenario.expected,
        started_seq=e.seq,
        shown_at=(e.ts,),
        sandbox=Path(e.payload["sandbox"]),
        states_digest=str(e.payload["states_digest"]),
        payload=dict(e.payload),
    )


def _replay_drill(journal: Journal, e: StoredEvent) -> Drill:
    """A replay: the trainee's part is whatever was not replayed. The trouble showed when the
    first failure was replayed (recorded time: the console's simulated clock) or when the
    replay finished (simulated, and wall time for a trainee on the CLI after ``--headless``)."""
    expect = str(e.payload.get("expect") or "baseline")
    runbook, expected = scenarios.REPLAY_EXPECT[expect]
    finished = next(iter(journal.events(kinds=["drill.replay.finished"], limit=1)), None)
    failures = journal.events(kinds=list(FAILURE_KINDS), limit=100_000)
    failed = next((x for x in failures if x.payload.get("replayed")), None)
    shown = [x.ts for x in (failed, finished) if x is not None]
    if finished is not None and finished.payload.get("wall_ts"):
        shown.append(str(finished.payload["wall_ts"]))
    return Drill(
        drill_id=str(e.payload["drill"]),
        kind="replay",
        name=f"replay:{expect}",
        run_id=str(e.payload["source_run"]),
        runbook=runbook,
        expected=expected,
        started_seq=e.seq,
        shown_at=tuple(shown) or (e.ts,),
        sandbox=Path(str(e.payload["sandbox"])),
        states_digest=None if finished is None else finished.payload.get("states_digest"),
        payload=dict(e.payload),
    )


def find(journal: Journal, ref: str) -> Drill:
    """A drill by id or unique id prefix, from its ``drill.started`` (a scenario, in the
    configured journal) or ``drill.replay.started`` (a replay, in its sandbox journal)."""
    found = {
        str(e.payload["drill"]): e
        for e in journal.events(kinds=["drill.started", "drill.replay.started"], limit=100_000)
        if str(e.payload.get("drill", "")).startswith(ref)
    }
    if not found:
        raise NotFound(
            f"no drill '{ref}' in {journal.display_url}; `backout drill start` one, or give "
            "a replay's sandbox with --dir."
        )
    if len(found) > 1 and ref not in found:
        raise BadInput(f"drill id '{ref}' is ambiguous; type more characters.")
    e = found.get(ref) or next(iter(found.values()))
    return _scenario_drill(e) if e.kind == "drill.started" else _replay_drill(journal, e)


def replay_sandbox(ref: str) -> Sandbox | None:
    """The replay sandbox under the default drills directory whose drill id starts with
    ``ref`` (``replay-`` may be left out); None when there is none."""
    root = drills_dir()
    if not ref or not root.is_dir():
        return None
    found = [
        d
        for d in root.iterdir()
        if d.name.startswith((ref, f"replay-{ref}")) and Sandbox(d, d.name).is_replay
    ]
    if len(found) > 1:
        raise BadInput(f"drill id '{ref}' is ambiguous; type more characters.")
    return Sandbox.open(found[0]) if found else None


__all__ = ["MANIFEST", "Drill", "Started", "find", "replay_sandbox", "start"]
