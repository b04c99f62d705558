"""A run as one JSON-able summary: what `backout show --json`, the HTTP intake and the
evidence bundle all print, so they agree."""

from __future__ import annotations

from typing import Any


def run_summary(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "changeset": run.changeset,
        "version": run.version,
        "digest": run.digest,
        "automation": run.automation,
        "target": run.target,
        "parent_run": run.parent_run,
        "drill": run.drill,
        "dry_run": run.dry_run,
        "drifted": run.drifted,
        "actor": run.actor,
        "corr": run.corr,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "reason": run.reason,
        "counts": {
            "total": run.rows_total,
            "applied": run.rows_applied,
            "failed": run.rows_failed,
            "conflicts": run.rows_conflict,
            "reverted": run.rows_reverted,
            "skipped": run.rows_skipped,
        },
    }
