"""`backout drill list|start|score` contracts: bad input exits 2 in one line and writes
nothing, a sandbox is never a directory holding other files, the same seed gives the same
data and failure point, and a wrong path scores as wrong (exit 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.config import Settings
from console.drill import service
from console.drill.sandbox import STATES
from console.drill.scenarios import SCENARIOS
from console.journal import Journal
from tests.drill.conftest import Drills


def test_list_shows_every_scenario_with_goal_and_runbook(drills: Drills) -> None:
    r = drills.cli("trainer", "drill", "list", "--json")
    assert r.code == 0, r.err
    listed = r.json()
    assert [s["id"] for s in listed] == [s.id for s in SCENARIOS] and len(listed) >= 6
    assert all(s["goal"] and s["runbook"] and s["expected"]["path"] for s in listed)
    text = drills.cli("trainer", "drill", "list").out
    assert all(s.id in text and s.runbook in text for s in SCENARIOS)


def test_unknown_scenario_is_one_line_exit_2_and_writes_nothing(drills: Drills) -> None:
    r = drills.cli("trainer", "drill", "start", "meteor-strike", "--dir", str(drills.tmp / "x"))
    assert r.code == 2 and r.out == ""
    assert r.err.count("\n") == 1 and "meteor-strike" in r.err and "drill list" in r.err
    assert not (drills.tmp / "x").exists() and not (drills.tmp / "journal.db").exists()
    r = drills.cli("trainer", "drill", "score", "nope")
    assert r.code == 2 and r.err.count("\n") == 1


def test_a_directory_holding_other_files_is_refused(drills: Drills) -> None:
    other = drills.tmp / "prod"
    other.mkdir()
    (other / "crm.db").write_bytes(b"precious")
    r = drills.cli("trainer", "drill", "start", "retry-storm", "--dir", str(other))
    assert r.code == 2 and "new or empty directory" in r.err and r.err.count("\n") == 1
    assert (other / "crm.db").read_bytes() == b"precious" and len(list(other.iterdir())) == 1


def test_default_sandbox_is_under_the_data_dir_and_text_output(drills: Drills) -> None:
    r = drills.cli("trainer", "drill", "start", "retry-storm", "--seed", "3")
    assert r.code == 0, r.err
    assert "backout runbook start reconcile-and-fix --run" in r.out
    assert str(drills.tmp / "xdg" / "backout" / "drills") in r.out


def test_same_seed_same_sandbox_and_failure_point(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.db'}"

    def build(seed: int, name: str) -> tuple[object, ...]:
        s = service.start(
            url, Settings(), "trainer", "constraint-midway", seed=seed, root=tmp_path / name
        )
        j = Journal(url, actor="t")
        try:
            run = j.get_run(s.run_id)
            seen = [run.status, run.rows_applied, len(j.segments(s.run_id))]
        finally:
            j.close()
        # The change set names the drill (drills of one journal never meet) and its sandbox.
        text = (s.box.root / "us-discount.yaml").read_text()
        changeset = text.replace(s.drill_id[:8], "ID").replace(str(s.box.root), "BOX")
        return s.box.target.read_bytes(), changeset, s.box.read_json(STATES), s.facts, seen

    first, again, other = build(11, "a"), build(11, "b"), build(12, "c")
    assert first == again  # same target bytes, change set, states, failure point
    assert all(x != y for x, y in zip(first[:4], other[:4], strict=True))


def test_a_wrong_path_scores_wrong(drills: Drills) -> None:
    """Collateral damage worked with the fix runbook instead of rollback-batch, and a
    self-approval attempt: the score names both wrong branches and exits 3."""
    d = drills
    d.start("collateral-damage", 5)
    ex = d.start_runbook("reconcile-and-fix", "--backup-ref", "snap-1")
    assert d.cli("oncall1", "approve", ex).code == 4  # self-approval: refused, journaled
    d.walk(ex)
    r = d.score()
    assert r.code == 3, r.out
    score = r.json()
    assert not score["correct"] and not score["approvals_correct"]
    assert any("started runbook reconcile-and-fix" in w for w in score["wrong_branches"])
    assert any("refused by the gate" in w for w in score["wrong_branches"])
    assert score["checks"]["runbook"] is False
    text = d.cli("trainer", "drill", "score", d.drill_id)
    assert text.code == 3 and "WRONG" in text.out and "wrong branch" in text.out
    scored = d.events(kinds=["drill.scored"])
    assert len(scored) == 2 and all(e.payload["drill"] == d.drill_id for e in scored)


@pytest.mark.slow
def test_resuming_the_run_in_doubt_before_rolling_back_scores_wrong(drills: Drills) -> None:
    """The outage's run is resumed (which applies the rest of the bad batch) before the
    runbook rolls it back: the rollback still restores everything, but the score names the
    resume as a wrong branch."""
    d = drills
    d.start("outage-midway", 9)
    r = d.cli("oncall1", "resume", d.run_id)
    assert r.code == 0, r.err
    ex = d.start_runbook("rollback-batch")
    d.walk(ex)
    r = d.score()
    assert r.code == 0, r.out  # the outcome matches; the way there did not
    score = r.json()
    assert score["checks"] == dict.fromkeys(score["checks"], True) and not score["correct"]
    assert "resumed a run that should not have been resumed" in score["wrong_branches"]
