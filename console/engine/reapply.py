"""``backout reapply``: selected rows of a rolled-back run's change set, applied again as a
new journaled run (kind ``reapply``), without reprocessing the rest of the batch."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from console.canonical import canonical_json
from console.changes import ChangeSet
from console.changes.model import Operation
from console.config import Settings
from console.engine.apply import Engine
from console.engine.report import ProgressFn, RunReport
from console.errors import BadInput
from console.journal import Journal


def filter_changeset(
    cs: ChangeSet, steps: Sequence[str], keys: Sequence[dict[str, Any]]
) -> ChangeSet:
    """The same change set limited to some steps and keys (key values compared as text)."""
    known = {s.name for s in cs.steps}
    for name in steps:
        if name not in known:
            raise BadInput(f"--step {name}: the change set has no such step.")
    wanted = {canonical_json({k: str(v) for k, v in key.items()}) for key in keys}
    chosen = []
    for step in cs.steps:
        if steps and step.name not in steps:
            continue

        def ops(step: Any = step) -> Iterator[Operation]:
            for op in step.operations():
                text = canonical_json({c: str(op.key[c]) for c in step.key})
                if not wanted or text in wanted:
                    yield op

        count = sum(1 for _ in ops())
        if count:
            chosen.append(dataclasses.replace(step, operations=ops, count=count))
    if not chosen:
        raise BadInput("nothing to reapply: no operation of the change set is in that scope.")
    return dataclasses.replace(cs, steps=chosen)


def reapply(
    journal: Journal,
    settings: Settings,
    run_ref: str,
    *,
    steps: Sequence[str] = (),
    keys: Sequence[dict[str, Any]] = (),
    progress: ProgressFn | None = None,
) -> RunReport:
    parent = journal.get_run(run_ref)
    if parent.status not in ("rolled_back", "rollback_partial"):
        raise BadInput(
            f"run {parent.id} is {parent.status}; only a rolled-back run can be re-applied."
        )
    engine = Engine(journal, settings, progress=progress)
    created = journal.events(parent.id, kinds=["run.created"], limit=1)[0].payload
    scope = {"steps": list(steps), "keys": [dict(k) for k in keys]}
    cs = filter_changeset(engine.reload(parent, created, None), steps, keys)
    return engine.apply(
        cs,
        target=created.get("target_override"),
        source_args=created.get("source_args") or {},
        kind="reapply",
        parent_run=parent.id,
        reapply_scope=scope,
    )
