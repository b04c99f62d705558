"""A first end-to-end check of the journal on both databases."""

from __future__ import annotations

from console.journal import Journal
from console.journal.verify import verify


def test_append_project_verify(journal_url: str) -> None:
    j = Journal(journal_url, actor="alice")
    with j.write() as w:
        w.append(
            "run.created",
            {
                "changeset": "cs",
                "version": 1,
                "rows_total": 2,
                "steps": [
                    {"step_no": 1, "name": "s", "table": "t", "key": ["id"], "operations": 2}
                ],
            },
            run_id="r1",
            corr="c1",
        )
        w.append("run.started", {}, run_id="r1", corr="c1")
    j.append("run.completed", {}, run_id="r1", corr="c1")
    run = j.get_run("r1")
    assert run.status == "completed"
    assert run.last_seq == 3
    report = verify(j)
    assert report.ok, report.problem
    assert report.events == 3
    assert report.projections_checked
    j.close()
