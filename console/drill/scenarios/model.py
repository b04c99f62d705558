"""What a scenario declares (goal, runbook, expected outcome) and what its build gets and
gives back."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from console.changes import load_changeset
from console.config import Settings
from console.drill.sandbox import Sandbox
from console.engine.apply import Engine
from console.engine.report import ProgressFn, RunReport
from console.journal import Journal


@dataclass(frozen=True)
class Expected:
    """The correct outcome, machine-checkable.

    ``target``: the state the sandbox target must hold at the end: ``baseline`` (before the
    batch) or ``batch`` (as the scenario left it); ``path``: the runbook steps done, in
    order, on the right branch; ``against``/``findings``: the reconciliation run at scoring
    time and the finding counts it must give; ``rollback``: rolling back is right;
    ``runbook_optional``: the work may be done without the runbook (a replay's trainee may
    roll back from the CLI), but a runbook started must end as ``runbook_status``.
    Resuming the scenario's run is never right: it would apply more of a batch gone wrong.
    """

    target: str
    runbook_status: str
    path: tuple[str, ...]
    run_status: str | None = None
    against: str = "expected"
    findings: dict[str, int] = field(default_factory=dict)
    rollback: bool = False
    runbook_optional: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": list(self.path)}


@dataclass
class Stage:
    """What a build works with: the drill's journal handle (every event it appends carries
    the drill id), the trainee's settings, the sandbox, and the seed's random source."""

    journal: Journal
    settings: Settings
    box: Sandbox
    seed: int
    drill_id: str
    config: Path | None = None
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def name(self, base: str) -> str:
        """A change set name unique to this drill: the engine refuses a name+version applied
        before with other content, and drills of one journal must not meet."""
        return f"{base}-{self.drill_id[:8]}"

    def apply(self, path: Path, progress: ProgressFn | None = None) -> RunReport:
        engine = Engine(self.journal, self.settings, progress=progress, drill=True)
        return engine.apply(load_changeset(str(path)))


@dataclass(frozen=True)
class Built:
    run_id: str  # the run the trainee works on
    facts: dict[str, Any] = field(default_factory=dict)  # what went wrong, for the trainer


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    goal: str
    runbook: str
    expected: Expected
    build: Callable[[Stage], Built]
    briefing: str  # what the trainee is told (the alert), not how to solve it
    products: int = 900

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "goal": self.goal,
            "runbook": self.runbook,
            "briefing": self.briefing,
            "expected": self.expected.as_dict(),
        }
