"""The report's timeline stays compact when a run has thousands of row-level events."""

from __future__ import annotations

import json
from typing import Any, cast

from console.export.report import TIMELINE_PER_KIND, render_markdown
from console.journal import Journal


class _NoOps:
    def operations(self, run_id: str, **_: Any) -> list[Any]:
        return []

    def count_operations(self, run_id: str, status: Any = None) -> int:
        return 0


def _run() -> dict[str, Any]:
    counts = dict.fromkeys(("total", "applied", "failed", "conflicts", "reverted", "skipped"), 0)
    return {
        "id": "r1",
        "kind": "apply",
        "status": "paused",
        "changeset": "cs",
        "version": 1,
        "digest": "d",
        "automation": None,
        "target": "t",
        "actor": "a",
        "corr": "c",
        "created_at": "2026-11-27T01:00:00.000000Z",
        "started_at": None,
        "finished_at": None,
        "reason": None,
        "counts": counts,
    }


def test_row_level_events_are_capped() -> None:
    events = [
        {
            "seq": i,
            "ts": "2026-11-27T02:13:00.000000Z",
            "kind": "op.conflict",
            "run_id": "r1",
            "corr": "c",
            "actor": "a",
            "hash": "0" * 64,
            "prev_hash": "0" * 64,
            "payload_text": json.dumps({"op_no": i, "detail": {"table": "t", "key": {"id": i}}}),
        }
        for i in range(1, 26)
    ]
    bundle = {
        "run": _run(),
        "related_runs": [],
        "events": events,
        "journal_id": "j",
        "head": {"seq": 25, "hash": "0" * 64},
        "digest": "x",
        "exported_at": "",
        "exported_by": "",
        "filtered": {"included": 25, "left_out": 0},
    }
    md = render_markdown(cast(Journal, _NoOps()), bundle)
    assert md.count("conflict on op") == TIMELINE_PER_KIND
    assert f"{25 - TIMELINE_PER_KIND} more op.conflict" in md
