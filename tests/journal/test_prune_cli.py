"""``backout journal prune`` on the command line: the cut from flags or the policy, exit codes,
``--json``, the SQLite role rule, and pruned runs still shown by ``show`` and ``events``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from console.cli import main
from console.journal import Journal

from .gen import populate, ticking_clock


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    path = str(tmp_path / "journal.db")
    # Long ago, so that any retention of days covers it.
    j = Journal(path, actor="alice", clock=ticking_clock(dt.datetime(2025, 1, 5, tzinfo=dt.UTC)))
    populate(j, seed=3, runs=3, max_segments=2)
    j.close()
    return path


def test_prune_by_policy_retention_then_verify(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "backout.toml").write_text('[policy]\nversion = 7\nretention = "1d"\n')
    code, out, _ = _cli(capsys, "--journal", db, "journal", "prune", "--dry-run", "--json")
    assert code == 0
    dry = json.loads(out)
    assert dry["dry_run"] is True and dry["events"] > 0 and dry["seq"] is None
    code, out, _ = _cli(capsys, "--journal", db, "journal", "prune", "--json")
    assert code == 0
    done = json.loads(out)
    assert done["events"] == dry["events"] and done["seq"] > 0
    code, out, err = _cli(capsys, "--journal", db, "journal", "verify", "--json")
    assert code == 0, err
    assert json.loads(out)["ok"] is True
    code, out, err = _cli(capsys, "--journal", db, "journal", "verify")
    assert code == 0, err
    assert f"note: {done['events']} event payloads pruned by 1 journal.pruned" in out
    j = Journal(db)
    try:
        cp = j.events(kinds=["journal.pruned"], limit=1)[0]
        assert cp.payload["policy_version"] == 7
        assert cp.payload["reason"] == "policy version 7 retention 1d"
        run = done["runs"][0]
    finally:
        j.close()
    code, out, _ = _cli(capsys, "--journal", db, "show", run, "--json")
    assert code == 0 and json.loads(out)["id"] == run
    code, out, _ = _cli(capsys, "--journal", db, "events", run)
    assert code == 0 and '"pruned":true' in out
    code, out, _ = _cli(capsys, "--journal", db, "journal", "prune", "--keep", "1")
    assert code == 0 and out.startswith("nothing to prune")


def test_prune_needs_a_cut(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "--journal", db, "journal", "prune")
    assert code == 2 and "retention" in err and "Traceback" not in err
    code, _, err = _cli(
        capsys, "--journal", db, "journal", "prune", "--keep", "3", "--before", "2026-01-01"
    )
    assert code == 2 and "not both" in err
    code, _, err = _cli(capsys, "--journal", db, "journal", "prune", "--before", "yesterday")
    assert code == 2 and "--before 'yesterday'" in err


def test_only_the_journal_admin_role_prunes_when_the_policy_names_roles(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "backout.toml").write_text(
        '[policy]\nversion = 2\n[policy.roles]\njournal_admin = ["root1"]\noncall = ["op1"]\n'
    )
    j = Journal(db)
    head = j.head()
    code, _, err = _cli(capsys, "--journal", db, "--as", "op1", "journal", "prune", "--keep", "0")
    assert code == 4 and "journal_admin" in err
    assert j.head() == head
    code, out, err = _cli(
        capsys, "--journal", db, "--as", "root1", "journal", "prune", "--keep", "0"
    )
    assert code == 0, err
    assert out.startswith("pruned the payloads of")
    assert j.events(kinds=["journal.pruned"], limit=1)[0].actor == "root1"
    j.close()


def test_an_environment_with_a_longer_retention_keeps_its_runs(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unconfigured targets count as production; production keeps ten years here, so the
    policy's one day prunes nothing, and each run says why it was kept."""
    (tmp_path / "backout.toml").write_text(
        '[policy]\nversion = 4\nretention = "1d"\n\n'
        '[policy.environments.production]\nretention = "3650d"\n'
    )
    code, out, _ = _cli(capsys, "--journal", db, "journal", "prune", "--json")
    assert code == 0
    done = json.loads(out)
    assert done["events"] == 0 and done["runs"] == [], done
    reasons = {k["reason"] for k in done["kept"] if not k["reason"].startswith("not finished")}
    assert reasons == {"inside production's retention (3650d, policy version 4)"}
    (tmp_path / "backout.toml").write_text(
        '[policy]\nversion = 5\nretention = "1d"\n\n'
        '[policy.environments.production]\nretention = "2d"\n'
    )
    code, out, _ = _cli(capsys, "--journal", db, "journal", "prune", "--json")
    assert code == 0 and json.loads(out)["events"] > 0
