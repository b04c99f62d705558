"""``backout drill score`` on a replay drill: the trainer declares the right ending with
``drill replay --expect``; the trainee works the sandbox through the CLI; the score is kept in
the sandbox journal, and the recorded journal and target are never written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from console.errors import Exit
from console.journal import Journal
from tests.drill.test_replay import Recorded, files_digest, record


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
