"""Scoring a drill (a scenario's or a replay's) from its journal: how fast the trainee
noticed and decided, whether the approvals were obtained cleanly, which wrong branches they
took, and whether the sandbox ended where it should (the scenario's expected outcome, or the
one the trainer declared for a replay: target rows compared with the expected state, and
reconciled through the real reconciliation service against the sandbox target).

Every ``backout drill score`` recomputes from the journal and the sandbox, and journals the
result as ``drill.scored``; the trainer reviews the latest one (``backout events RUN``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from console.config import Settings
from console.drill.sandbox import Sandbox
from console.drill.service import Drill
from console.journal import Journal, StoredEvent, parse_ts
from console.reconcile.service import compute

# What shows the trainee noticed (first touch of the run), and what is a decision.
DETECT = (
    "runbook.started",
    "run.pause_requested",
    "run.paused",
    "run.resumed",
    "reconcile.finished",
    "annotation",
    "run.created",
)
# Concluding a runbook with nothing to do (all good) is a decision too.
DECIDE = (
    "approval.granted",
    "approval.denied",
    "run.resumed",
    "run.created",
    "escalation",
    "runbook.finished",
)
# A `next` pressed while approvals are still coming is waiting, not a mistake.
WAITING_RULES = ("approval.quorum",)


@dataclass
class Score:
    drill_id: str
    scenario: str
    run_id: str
    time_to_detect_s: float | None
    time_to_decision_s: float | None
    approvals: dict[str, int]
    approvals_correct: bool
    runbook: str | None
    runbook_status: str | None
    path: list[str]
    wrong_branches: list[str]
    outcome: dict[str, Any]
    matches: bool = False
    correct: bool = False
    checks: dict[str, bool] = field(default_factory=dict)
    kind: str = "scenario"  # or "replay"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        def secs(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}s"

        lines = [
            f"drill {self.drill_id} ({self.scenario}), run {self.run_id}: "
            + ("CORRECT" if self.correct else "outcome matches" if self.matches else "WRONG"),
            f"  time to detect    {secs(self.time_to_detect_s)}",
            f"  time to decision  {secs(self.time_to_decision_s)}",
            f"  approvals         {self.approvals['granted']} granted, "
            f"{self.approvals['denied']} denied, {self.approvals['refused']} refused",
            f"  runbook           {self.runbook or '-'} ({self.runbook_status or 'not started'}): "
            + " > ".join(self.path),
        ]
        lines += [f"  check {name:<14} {'ok' if ok else 'NO'}" for name, ok in self.checks.items()]
        lines += [f"  wrong branch: {w}" for w in self.wrong_branches]
        return "\n".join(lines)


def _events(journal: Journal, drill: Drill) -> list[StoredEvent]:
    """The trainee's events: the drill's after it started, on its run and on the runs made
    from it, minus what a replay re-appended from the recording (``replayed``)."""
    runs = [drill.run_id] + [
        r.id for r in journal.runs(limit=100_000, drills=True) if r.parent_run == drill.run_id
    ]
    events = [
        e
        for run in runs
        for e in journal.events(run, after_seq=drill.started_seq, limit=100_000)
        if e.payload.get("drill") == drill.drill_id
        and not e.kind.startswith("drill.")
        and not e.payload.get("replayed")
    ]
    return sorted(events, key=lambda e: e.seq)


def _after(drill: Drill, events: list[StoredEvent], kinds: tuple[str, ...]) -> float | None:
    first = next((e for e in events if e.kind in kinds), None)
    if first is None:
        return None
    return max(0.0, parse_ts(first.ts).timestamp() - drill.counted_from(first.ts))


def _walk(events: list[StoredEvent], runbook: str) -> tuple[str | None, list[str]]:
    """The last execution of ``runbook``: its status and the steps it finished, in order."""
    started = [e for e in events if e.kind == "runbook.started"]
    mine = [e.payload["exec"] for e in started if e.payload.get("runbook") == runbook]
    if not mine:
        return None, []
    ex = mine[-1]
    status: str | None = "active"
    path = []
    for e in events:
        if e.payload.get("exec") != ex:
            continue
        if e.kind == "runbook.step.finished" and e.payload.get("state") != "failed":
            path.append(str(e.payload["step"]))
            status = str(e.payload.get("status") or status)
        elif e.kind == "runbook.finished":
            status = str(e.payload["status"])
    return status, path


def _wrong_branches(
    drill: Drill, events: list[StoredEvent], path: list[str], refusals: list[StoredEvent]
) -> list[str]:
    expected = drill.expected
    wrong = [
        f"started runbook {e.payload.get('runbook')} (expected {drill.runbook})"
        for e in events
        if e.kind == "runbook.started" and e.payload.get("runbook") != drill.runbook
    ]
    wrong += [f"took step '{s}', off the expected path" for s in path if s not in expected.path]
    if [s for s in path if s in expected.path] != list(expected.path[: len(path)]):
        wrong.append(f"steps out of order: {' > '.join(path)}")
    wrong += [
        f"refused by the gate: {e.payload.get('rule')} ({e.actor})"
        for e in refusals
        if e.payload.get("rule") not in WAITING_RULES
    ]
    rollbacks = [
        e for e in events if e.kind == "run.created" and e.payload.get("kind") == "rollback"
    ]
    resumed = [e for e in events if e.kind == "run.resumed" and e.run_id == drill.run_id]
    if rollbacks and not expected.rollback:
        wrong.append("rolled back although the right decision was not to")
    if resumed:
        wrong.append("resumed a run that should not have been resumed")
    return wrong


def _outcome(
    journal: Journal, settings: Settings, drill: Drill, runbook_status: str | None
) -> tuple[dict[str, Any], dict[str, bool]]:
    expected = drill.expected
    box = Sandbox.open(drill.sandbox)
    states = drill.states()
    run = journal.get_run(drill.run_id)
    result = compute(journal, settings, drill.run_id, expected.against)
    counts = result.counts
    checks = {
        "target_state": box.dump() == states[expected.target],
        "run_status": expected.run_status is None or run.status == expected.run_status,
        "runbook": runbook_status == expected.runbook_status
        or (expected.runbook_optional and runbook_status is None),
        "reconcile": all(counts.get(k, 0) == n for k, n in expected.findings.items()),
    }
    outcome = {
        "run_status": run.status,
        "reconcile": {"against": expected.against, "counts": counts},
        "expected": expected.as_dict(),
    }
    return outcome, checks


def score(journal: Journal, settings: Settings, drill: Drill) -> Score:
    events = _events(journal, drill)
    refusals = [e for e in events if e.kind == "gate.refused"]
    status, path = _walk(events, drill.runbook)
    outcome, checks = _outcome(journal, settings, drill, status)
    wrong = _wrong_branches(drill, events, path, refusals)
    counted = [e for e in refusals if e.payload.get("rule") not in WAITING_RULES]
    approvals = {
        "granted": sum(e.kind == "approval.granted" for e in events),
        "denied": sum(e.kind == "approval.denied" for e in events),
        "refused": len(counted),
    }
    result = Score(
        drill_id=drill.drill_id,
        scenario=drill.name,
        kind=drill.kind,
        run_id=drill.run_id,
        time_to_detect_s=_after(drill, events, DETECT),
        time_to_decision_s=_after(drill, events, DECIDE),
        approvals=approvals,
        approvals_correct=not counted,
        runbook=drill.runbook if status else None,
        runbook_status=status,
        path=path,
        wrong_branches=wrong,
        outcome=outcome,
        checks=checks,
    )
    result.matches = all(checks.values())
    result.correct = result.matches and not wrong and result.approvals_correct
    return result


def record(journal: Journal, settings: Settings, drill: Drill) -> Score:
    """Score now and journal it as ``drill.scored`` on the drill's run (flagged like every
    event of the drill; a replay's, in its sandbox journal) for the trainer's review."""
    result = score(journal, settings, drill)
    journal.append("drill.scored", result.as_dict(), run_id=drill.run_id)
    return result
