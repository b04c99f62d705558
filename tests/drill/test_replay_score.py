"""``backout drill score`` on a replay drill: the trainer declares the right ending with
``drill replay --expect``; the trainee works the sandbox through the CLI; the score is kept in
the sandbox journal, and the recorded journal and target are never written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from console.drill.scenarios.catalog import ROLLED_BACK
from console.drill.service import Drill
from console.errors import Exit
from console.journal import Journal, parse_ts
from console.journal.verify import verify
from tests.drill.conftest import Drills
from tests.drill.test_replay import Recorded, files_digest, record, rollback_meeting_an_edit


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Recorded:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return record(tmp_path, f"sqlite:///{tmp_path / 'journal.db'}")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    """Exit code and the JSON printed (else what was said on stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), json.loads(out) if out.strip() else err


def replay(capsys: pytest.CaptureFixture[str], rec: Recorded, *args: str) -> dict[str, Any]:
    code, out = cli(
        capsys,
        *("--journal", rec.journal_url, "drill", "replay", rec.run_id),
        *("--speed", "1e6", "--headless", "--json", *args),
    )
    assert code == Exit.DONE and out["kind"] == "replay"
    return dict(out)


def roll_back(capsys: pytest.CaptureFixture[str], started: dict[str, Any]) -> None:
    """The trainee rolls the drill run back from the CLI, on the sandbox journal."""
    args = ("--journal", started["journal"], "--as", "trainee")
    code, out = cli(capsys, *args, "rollback", started["run_id"], "--json")
    assert code == Exit.DONE, out


def scored_events(journal_url: str) -> list[Any]:
    journal = Journal(journal_url, create=False)
    try:
        return list(journal.events(kinds=["drill.scored"], limit=100))
    finally:
        journal.close()


def test_a_trainee_rolling_back_from_the_cli_scores_correct(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files_digest(tmp_path / "journal.db", recorded.target_path)
    box = tmp_path / "gameday"
    started = replay(capsys, recorded, "--dir", str(box), "--expect", "baseline")
    assert started["expect"] == "baseline" and started["sandbox"] == str(box.resolve())
    # Nothing done yet: the run still stands as the batch left it.
    code, early = cli(capsys, "drill", "score", "--dir", str(box), "--json")
    assert code == Exit.REVIEW and not early["matches"] and not early["checks"]["target_state"]
    roll_back(capsys, started)
    code, score = cli(capsys, "drill", "score", "--dir", str(box), "--json")
    assert code == Exit.DONE, score
    assert score["correct"] and score["matches"] and score["wrong_branches"] == []
    assert score["drill_id"] == started["drill_id"] and score["kind"] == "replay"
    assert score["scenario"] == "replay:baseline" and score["run_id"] == started["run_id"]
    assert all(score["checks"].values()) and score["outcome"]["run_status"] == "rolled_back"
    assert score["outcome"]["reconcile"]["against"] == "baseline"
    # Timed from the replay's end (the trainee used the CLI after a headless replay).
    assert 0 <= score["time_to_detect_s"] <= score["time_to_decision_s"] < 600
    # Kept in the sandbox journal, flagged with the drill id; the recording untouched.
    scored = scored_events(started["journal"])
    assert len(scored) == 2 and {e.payload["drill"] for e in scored} == {started["drill_id"]}
    assert scored[-1].payload["correct"] and not scored[0].payload["correct"]
    assert scored_events(recorded.journal_url) == []
    assert files_digest(tmp_path / "journal.db", recorded.target_path) == before
    # The sandbox journal named with --journal finds it too.
    code, again = cli(
        capsys, "--journal", started["journal"], "drill", "score", started["drill_id"], "--json"
    )
    assert code == Exit.DONE and again["correct"]


def test_a_wrong_path_scores_wrong(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The trainer says the batch must stay; the trainee rolls it back anyway. The drill is
    found by its id through the default sandbox directory."""
    started = replay(capsys, recorded, "--expect", "batch")
    assert started["sandbox"].startswith(str(tmp_path / "xdg" / "backout" / "drills"))
    roll_back(capsys, started)
    short = started["drill_id"].removeprefix("replay-")[:8]
    code, score = cli(capsys, "drill", "score", short, "--json")
    assert code == Exit.REVIEW, score
    assert not score["correct"] and not score["matches"]
    assert not score["checks"]["target_state"]
    assert "rolled back although the right decision was not to" in score["wrong_branches"]
    assert score["outcome"]["expected"]["target"] == "batch"


def test_replay_input_errors_are_one_line(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--journal", recorded.journal_url, "drill", "replay", recorded.run_id, "--headless"]
    with pytest.raises(SystemExit) as bad:
        main([*args, "--expect", "panic", "--dir", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert bad.value.code == Exit.BAD_INPUT and "--expect panic" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit) as none:
        main(["drill", "score"])
    assert none.value.code == Exit.BAD_INPUT and "--dir" in capsys.readouterr().err


@pytest.mark.slow
def test_a_replay_worked_by_the_runbook_with_approvals_scores_correct(
    drills: Drills, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The trainee works rollback-batch on the sandbox journal, two approvers sign: the
    path, the approvals and the ending are scored as for a scenario."""
    (tmp_path / "rec").mkdir()
    rec = record(tmp_path / "rec", f"sqlite:///{tmp_path / 'rec' / 'journal.db'}")
    started = replay(capsys, rec, "--dir", str(tmp_path / "gameday"))
    drills.url, drills.run_id, drills.drill_id = (
        started["journal"],
        started["run_id"],
        started["drill_id"],
    )
    drills.walk(drills.start_runbook("rollback-batch"))
    r = drills.score()
    assert r.code == Exit.DONE, r.out
    score = r.json()
    assert score["correct"], score["wrong_branches"]
    assert score["path"] == list(ROLLED_BACK.path) and score["runbook_status"] == "completed"
    assert score["approvals"]["granted"] >= 2 and score["approvals_correct"]
    # A second runbook, the wrong one, is a wrong branch even though the ending is right.
    drills.start_runbook("reconcile-and-fix", "--backup-ref", "nightly")
    wrong = drills.score()
    assert wrong.code == Exit.DONE and not wrong.json()["correct"]
    assert any("reconcile-and-fix" in w for w in wrong.json()["wrong_branches"])


def test_timings_count_from_when_the_trouble_showed() -> None:
    """A failure replayed at 10:00 (the console's simulated clock), the replay finished at
    10:05 simulated and 12:00 wall: a trainee's first event counts from the latest of these
    before it, or from the earliest if it came before all of them."""
    drill = Drill(
        drill_id="replay-x",
        kind="replay",
        name="replay:baseline",
        run_id="r",
        runbook="rollback-batch",
        expected=ROLLED_BACK,
        started_seq=1,
        shown_at=(
            "2026-11-27T10:00:00.000000Z",
            "2026-11-27T10:05:00.000000Z",
            "2026-11-27T12:00:00.000000Z",
        ),
        sandbox=Path("."),
        states_digest=None,
        payload={},
    )

    def since(first: str) -> float:
        return parse_ts(first).timestamp() - drill.counted_from(first)

    assert since("2026-11-27T10:01:00.000000Z") == 60  # in the console, during the replay
    assert since("2026-11-27T10:06:00.000000Z") == 60  # in the console, after it ended
    assert since("2026-11-27T12:02:00.000000Z") == 120  # on the CLI after a headless replay
    assert since("2026-11-27T09:59:00.000000Z") == -60  # before anything showed: counted negative


def test_start_and_replay_print_the_same_shape(
    drills: Drills, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a trainer scripts against: the same keys for both kinds of drill."""
    common = {"drill_id", "kind", "sandbox", "journal", "target", "run_id"}
    started = drills.start("retry-storm")
    assert started.keys() >= common and started["kind"] == "scenario"
    assert started["journal"] == drills.url
    (tmp_path / "rec").mkdir()
    rec = record(tmp_path / "rec", f"sqlite:///{tmp_path / 'rec' / 'journal.db'}")
    replayed = replay(capsys, rec)
    assert replayed.keys() >= common and replayed["journal"].endswith("/journal.db")
    assert Path(replayed["sandbox"]).parent == tmp_path / "xdg" / "backout" / "drills"
    assert replayed["kind"] == "replay" and replayed["drill_id"].startswith("replay-")


def test_a_replay_stopped_midway_is_not_scored(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its batch state is not known yet: bad input naming what to do, nothing journaled."""
    from console.drill.replay import Recording, Replayer, build_sandbox

    source = Journal(recorded.journal_url, create=False)
    try:
        recording = Recording.read(source, recorded.run_id)
    finally:
        source.close()
    replayer = Replayer(recording, build_sandbox(recording, tmp_path / "midway"), speed=1e6)
    replayer.open()
    try:
        replayer.seek(3)
    finally:
        replayer.close()
    code, err = cli(capsys, "drill", "score", "--dir", str(tmp_path / "midway"), "--json")
    assert code == Exit.BAD_INPUT and "has not finished" in err and err.count("\n") == 1
    assert scored_events(replayer.sandbox.journal_url) == []


def test_a_replayed_rollback_that_met_a_conflict_is_escalated_and_scores_correct(
    drills: Drills, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--expect review``: the recorded rollback met a row someone had edited by hand, so the
    right ending is to escalate, not to force it. The trainee works rollback-batch on the
    replay; its assessment finds the edit and the runbook escalates: scored correct, with the
    sandbox left as the recording ended."""
    from console.drill.scenarios.catalog import ESCALATED

    (tmp_path / "rec").mkdir()
    rec = record(tmp_path / "rec", f"sqlite:///{tmp_path / 'rec' / 'journal.db'}")
    conflicted = rollback_meeting_an_edit(rec)
    started = replay(capsys, conflicted, "--dir", str(tmp_path / "gameday"), "--expect", "review")
    assert started["expect"] == "review"
    # The rollback's parent came along (it is what reconciling the rollback reads): the
    # sandbox journal tells the same story as the recording, statuses included.
    source = Journal(rec.journal_url, create=False)
    sandbox = Journal(started["journal"], create=False)
    try:
        for run_id in (rec.run_id, conflicted.run_id):
            assert sandbox.get_run(run_id).status == source.get_run(run_id).status
        assert sandbox.operation_status_counts(rec.run_id) == source.operation_status_counts(
            rec.run_id
        )
        assert verify(sandbox, remember=False).ok
    finally:
        sandbox.close()
        source.close()
    drills.url, drills.run_id, drills.drill_id = (
        started["journal"],
        started["run_id"],
        started["drill_id"],
    )
    # Nothing done yet: no runbook, so not the escalation the trainer expects.
    early = drills.score()
    assert early.code == Exit.REVIEW and not early.json()["correct"]
    drills.walk(drills.start_runbook("rollback-batch"))
    r = drills.score()
    assert r.code == Exit.DONE, r.out
    score = r.json()
    assert score["correct"], score["wrong_branches"]
    assert score["scenario"] == "replay:review" and score["runbook_status"] == "escalated"
    assert score["path"] == list(ESCALATED.path)
    assert score["checks"] == dict.fromkeys(score["checks"], True)
