"""Facts the gate needs, read from the journal: a run's environment and age, the kinds of
write an action performs, the locks on a target, the execution a request claims to come from."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from console.config import Settings
from console.errors import BackoutError
from console.journal import Journal, parse_ts
from console.journal.models import Run, RunbookExec
from console.journal.store import T_EXECS, T_LOCKS, T_OPS
from console.runbook.gate import ACTION_OF, INVERSE, GateRequest


def environment_of(ref: str, settings: Settings) -> str | None:
    """The environment of a target reference (a name from backout.toml or a URL)."""
    try:
        from console.targets import resolve

        found = resolve.environment_of(ref, settings)
        return None if found is None else str(found)
    except (ImportError, AttributeError):
        pass
    if ref in settings.targets:
        return settings.targets[ref].environment
    for target in settings.targets.values():
        if target.url == ref:
            return target.environment
    return None


def run_targets(journal: Journal, run: Run) -> list[str]:
    """The target references a run wrote to (names from backout.toml or URLs)."""
    created = journal.events(run.id, kinds=["run.created"], limit=1)
    refs: list[str] = []
    if created:
        for step in created[0].payload.get("steps", []):
            ref = str(step.get("target_ref") or step.get("target") or "")
            if ref and ref not in refs:
                refs.append(ref)
    if not refs and run.target:
        refs.append(run.target)
    return refs


def lock_keys(journal: Journal, run: Run) -> list[str]:
    """What a target lock is keyed by: the target's display URL as journaled (the same for a
    target named in backout.toml and for its URL); the engine asks the gate with it."""
    created = journal.events(run.id, kinds=["run.created"], limit=1)
    keys: list[str] = []
    if created:
        for step in created[0].payload.get("steps", []):
            key = str(step.get("target") or "")
            if key and key not in keys:
                keys.append(key)
    return keys or [run.target]


def run_environment(journal: Journal, settings: Settings, run: Run) -> str | None:
    """The strictest-named environment among the run's targets (production wins)."""
    envs = [e for e in (environment_of(r, settings) for r in run_targets(journal, run)) if e]
    if not envs:
        return None
    return "production" if "production" in envs else sorted(envs)[0]


def rollback_operations(journal: Journal, run_id: str) -> tuple[str, ...]:
    """Kinds of write a rollback of the run performs (inverse of what is still applied)."""
    with journal.read() as conn:
        kinds = (
            conn.execute(
                select(T_OPS.c.op)
                .where(T_OPS.c.run_id == run_id, T_OPS.c.status == "applied")
                .distinct()
            )
            .scalars()
            .all()
        )
    return tuple(sorted({INVERSE.get(k, k) for k in kinds}))


def locks_on(journal: Journal, target: str) -> tuple[str, ...]:
    with journal.read() as conn:
        rows = (
            conn.execute(
                select(T_LOCKS.c.exec_id).where(
                    T_LOCKS.c.target == target, T_LOCKS.c.released_at.is_(None)
                )
            )
            .scalars()
            .all()
        )
    return tuple(sorted(set(rows)))


def _exec_is_acting(journal: Journal, exec_id: str, run_id: str, action: str) -> bool:
    """Whether execution ``exec_id`` is, for this run, executing a step of this action now
    (a step runs only after the gate cleared it, under the execution's lease)."""
    from console.runbook import state

    with journal.read() as conn:
        row = conn.execute(select(T_EXECS).where(T_EXECS.c.id == exec_id)).mappings().first()
    if row is None or row["run_id"] != run_id or row["status"] != "running":
        return False
    ex = RunbookExec(**row)
    step = state.pinned(journal, ex).runbook.step(str(ex.current_step))
    return step.kind == "action" and ACTION_OF.get(step.action or "") == action


def complete(journal: Journal, settings: Settings, request: GateRequest) -> GateRequest:
    changes: dict[str, object] = {}
    if request.now is None:
        changes["now"] = journal.clock()
    if request.action == "apply" and request.target and not request.locked_by:
        changes["locked_by"] = locks_on(journal, request.target)
    if request.run_id and request.action != "apply":
        try:
            run = journal.get_run(request.run_id)
        except BackoutError:
            return replace(request, **changes)  # type: ignore[arg-type]
        if request.environment is None:
            changes["environment"] = run_environment(journal, settings, run)
        if request.run_created_at is None and run.created_at:
            changes["run_created_at"] = parse_ts(run.created_at)
        if request.action == "rollback" and not request.operations:
            changes["operations"] = rollback_operations(journal, run.id)
        if request.via_runbook is not None:
            if _exec_is_acting(journal, request.via_runbook, run.id, request.action):
                changes["cleared"] = True
            else:
                # A claimed execution that is not executing this action is no runbook.
                changes["via_runbook"] = None
    return replace(request, **changes)  # type: ignore[arg-type]
