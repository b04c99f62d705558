"""Roles and grants enforced by PostgreSQL itself, not by backout's Python."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from console.cli import main
from console.errors import Blocked
from console.journal.setup import grant, open_journal, setup
from console.journal.verify import verify
from tests.engine.helpers import changeset_doc, make_items, write_changeset
from tests.hostile import cli, journal_head
from tests.shared_journal.conftest import Team

DECISION = {
    "exec": "e1",
    "step": "s1",
    "request": 1,
    "roles": ["dba"],
    "comment": "ok",
    "plan_digest": "p" * 64,
    "runbook_digest": "r" * 64,
    "head": {"seq": 0, "hash": "0" * 64},
}


def test_setup_and_grant_are_idempotent(team: Team, capsys: pytest.CaptureFixture[str]) -> None:
    again = setup(team.url, team.roles)
    assert again["created"] == []
    prefix = team.roles.prefix
    with pytest.raises(SystemExit) as done:
        main(["journal", "setup", "--postgres", team.url, "--role-prefix", prefix])
    assert done.value.code in (0, None)
    assert "roles created: none" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(
            [
                "journal",
                "grant",
                team.auditor,
                "auditor",
                "--postgres",
                team.url,
                "--role-prefix",
                prefix,
            ]
        )
    assert done.value.code in (0, None)
    assert grant(team.url, team.operator, "operator", team.roles)["created"] is False
    j = open_journal(team.url_as(team.operator), "ignored")
    j.append("note", {"text": "hello"})
    assert j.actor == team.operator
    assert verify(j, remember=False).ok
    j.close()


def test_operator_cannot_write_an_approval_decision(team: Team) -> None:
    j = open_journal(team.url_as(team.operator), "x")
    with pytest.raises(Blocked, match=r"only members of .*_approver decide approvals\.$"):
        j.append("approval.granted", DECISION, run_id="r1")
    assert j.head()[0] == 0
    j.close()
    a = open_journal(team.url_as(team.approver), "x")
    ev = a.append("approval.granted", DECISION, run_id="r1")
    assert ev.actor == team.approver
    # A bare decision (no run, no execution): the chain verifies; projections need the run.
    assert verify(a, remember=False, projections=False).ok
    a.close()


def test_nobody_can_update_or_delete_events(team: Team) -> None:
    j = open_journal(team.url_as(team.operator), "x")
    j.append("note", {"text": "hello"})
    j.close()
    for user in (team.operator, team.approver, team.auditor, "postgres"):
        engine = create_engine(team.url_as(user))
        for sql in (
            "UPDATE events SET payload = '{}'",
            "DELETE FROM events",
            "TRUNCATE events",
        ):
            with (
                engine.connect() as conn,
                pytest.raises(DBAPIError, match=r"permission denied|append-only"),
            ):
                conn.execute(text(sql))
        engine.dispose()


def test_auditor_reads_but_cannot_write(team: Team) -> None:
    open_journal(team.url_as(team.operator), "x").append("note", {"text": "hello"})
    j = open_journal(team.url_as(team.auditor), "x")
    assert j.head()[0] == 1
    assert verify(j, remember=False).ok
    with pytest.raises(Blocked, match=r"refused the write as .*: permission denied for table"):
        j.append("note", {"text": "sneaky"})
    j.close()


def test_actor_forged_by_the_client_is_refused(team: Team) -> None:
    j = open_journal(team.url_as(team.operator), "x")
    j.actor = team.approver  # pretending to be someone else
    with pytest.raises(Blocked, match="is not the connected role"):
        j.append("note", {"text": "as someone else"})
    assert j.head()[0] == 0
    j.close()


def test_setup_by_a_team_member_is_refused_in_one_sentence(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    url = team.url_as(team.operator)
    with pytest.raises(SystemExit) as done:
        main(["journal", "setup", "--postgres", url, "--role-prefix", team.roles.prefix])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("backout: journal setup needs a PostgreSQL superuser")
    assert "internal error" not in err and len(err.strip().splitlines()) == 1


APPROVE_THEN_NOTIFY = """
runbook: rb-approve
version: 1
steps:
  - id: approve
    approval: {quorum: 1}
  - id: notify
    action: notify
    with: {message: done}
    next: end
"""


def test_refusals_through_the_cli_are_one_sentence_exit_4(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses, the CLI says so in one line: an operator approving, an auditor
    approving or applying. The approver's approval then goes through."""
    monkeypatch.chdir(tmp_path)
    target = f"sqlite:///{tmp_path / 'target.db'}"
    make_items(target, 5)
    as_operator = ["--journal", team.url_as(team.operator)]
    cs = write_changeset(tmp_path / "cs.yaml", changeset_doc(target, updates=range(1, 3)))
    run_id = json.loads(cli([*as_operator, "apply", str(cs), "--json"]).out)["run_id"]
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "rb-approve.yaml").write_text(APPROVE_THEN_NOTIFY)
    started = cli([*as_operator, "runbook", "start", "rb-approve", "--run", run_id, "--json"])
    ex = json.loads(started.out)["exec_id"]
    head = journal_head(team.url)
    cs2 = write_changeset(
        tmp_path / "cs2.yaml", changeset_doc(target, name="b", updates=range(3, 5))
    )
    for user, args, why in (
        (team.add_user("operator"), ["approve", ex], "only members of .*_approver decide"),
        (team.auditor, ["approve", ex], "permission denied"),
        (team.auditor, ["apply", str(cs2)], "permission denied"),
    ):
        r = cli(["--journal", team.url_as(user), *args])
        assert r.code == 4, (args, r.code, r.err)
        assert re.match(rf"backout: the journal refused the write as {user}: .*{why}", r.err)
        assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert journal_head(team.url) == head
    assert cli(["--journal", team.url_as(team.auditor), "journal", "verify"]).code == 0
    assert cli(["--journal", team.url_as(team.approver), "approve", ex]).code == 0
