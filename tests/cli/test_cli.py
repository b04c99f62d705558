"""The ``backout`` command as users and scripts see it: real subprocesses, real journals.

Contracts (DESIGN.md): ``--json`` prints one JSON document (JSON lines for streams) and nothing
else on stdout; exit codes 0/1/2; expected errors are one line on stderr without a traceback
unless ``--debug``; the journal location is ``--journal`` > ``BACKOUT_JOURNAL`` > config >
default.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import create_engine, text

from console.journal import Journal
from console.journal.db import resolve_url

from .conftest import BACKOUT, Filled, backout, fill, one_line_error


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    """The whole of stdout must be one JSON document."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- init -------------------------------------------------------------------------------


def test_init_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "team.db"
    first = _json(backout("--journal", str(path), "init", "--json"))
    second = _json(backout("--journal", str(path), "init", "--json"))
    assert first == second
    assert first["events"] == 0
    assert first["journal"] == resolve_url(str(path))
    human = backout("--journal", str(path), "init")
    assert human.returncode == 0
    assert first["journal_id"] in human.stdout


def test_commands_create_the_journal_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "new.db"
    assert _json(backout("--journal", str(path), "runs", "--json")) == []
    assert path.exists()


# --- runs / show / events ---------------------------------------------------------------


def test_runs_json(filled: Filled) -> None:
    runs = _json(backout("--journal", str(filled.path), "runs", "--json"))
    assert [r["id"] for r in runs] == [filled.running, filled.failed, filled.completed]
    by_id = {r["id"]: r for r in runs}
    assert by_id[filled.completed]["status"] == "completed"
    assert by_id[filled.completed]["counts"]["applied"] == 4
    assert by_id[filled.failed]["reason"] == "circuit breaker"
    failed = _json(backout("--journal", str(filled.path), "runs", "--status", "failed", "--json"))
    assert [r["id"] for r in failed] == [filled.failed]
    one = _json(backout("--journal", str(filled.path), "runs", "-n", "1", "--json"))
    assert [r["id"] for r in one] == [filled.running]


def test_runs_human(filled: Filled) -> None:
    result = backout("--journal", str(filled.path), "runs")
    assert result.returncode == 0
    for run in (filled.completed, filled.failed, filled.running):
        assert run in result.stdout


def test_show_json(filled: Filled) -> None:
    data = _json(backout("--journal", str(filled.path), "show", "aaa", "--json"))
    assert data["id"] == filled.completed
    assert data["status"] == "completed"
    assert data["corr"] == f"corr-{filled.completed}"
    assert data["steps"] == [{"step_no": 1, "name": "raise", "table": "products", "operations": 0}]
    assert data["operations_by_status"] == {"applied": 4}
    assert data["events"] == 9
    human = backout("--journal", str(filled.path), "show", filled.completed)
    assert human.returncode == 0 and filled.completed in human.stdout


def test_events_json_lines(filled: Filled) -> None:
    result = backout("--journal", str(filled.path), "events", filled.failed, "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 9
    assert all(e["run_id"] == filled.failed for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert events[0]["kind"] == "run.created"
    assert events[-1]["kind"] == "run.failed"
    assert events[-1]["payload"] == {"reason": "circuit breaker"}
    assert set(events[0]) == {"seq", "ts", "kind", "run_id", "corr", "actor", "payload", "hash"}
    segs = backout(
        "--journal", str(filled.path), "events", filled.failed, "-k", "segment.*", "--json"
    )
    kinds = [json.loads(line)["kind"] for line in segs.stdout.splitlines()]
    assert kinds == ["segment.intent", "segment.applied"] * 2


@pytest.mark.parametrize("command", ["show", "events"])
def test_unknown_run_is_exit_2_and_one_line(filled: Filled, command: str) -> None:
    result = backout("--journal", str(filled.path), command, "zzz999", "--json")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "no run 'zzz999'" in line
    # Scripts reading --json get the same sentence as one JSON line on stdout.
    assert json.loads(result.stdout) == {"error": line.removeprefix("backout: "), "exit_code": 2}


def test_bad_status_and_usage_errors_are_exit_2(filled: Filled) -> None:
    bad = backout("--journal", str(filled.path), "runs", "--status", "exploded")
    assert bad.returncode == 2
    assert "--status exploded" in one_line_error(bad)
    usage = backout("--journal", str(filled.path), "runs", "--no-such-option")
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr


def test_unsupported_journal_url_is_exit_2(tmp_path: Path) -> None:
    result = backout("--journal", "oracle://scott@tiger/db", "runs")
    assert result.returncode == 2
    assert "not supported" in one_line_error(result)


def _garbage(tmp_path: Path) -> Path:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database file at all" * 100)
    return garbage


def test_a_journal_that_cannot_be_opened_is_one_sentence_unless_debug(tmp_path: Path) -> None:
    garbage = _garbage(tmp_path)
    quiet = backout("--journal", str(garbage), "runs")
    assert quiet.returncode == 2
    assert "Traceback" not in quiet.stderr
    assert quiet.stderr.startswith(f"backout: journal {garbage} cannot be opened (")
    assert "give a journal file or PostgreSQL URL with --journal" in quiet.stderr
    assert quiet.stdout == ""
    for bad in (tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/x"):
        other = backout("--journal", str(bad), "runs")
        assert other.returncode == 2 and "cannot be opened" in other.stderr, other.stderr
    loud = backout("--debug", "--journal", str(garbage), "runs")
    assert loud.returncode != 0
    assert "Traceback (most recent call last)" in loud.stderr


def test_internal_errors_are_one_line(tmp_path: Path) -> None:
    one_line_error(backout("--journal", str(_garbage(tmp_path)), "runs"))


# --- journal verify ---------------------------------------------------------------------


FORGED = '{"forged":true}'


def _tamper(url: str, seq: int) -> None:
    """An attacker with file or superuser access edits one stored event."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET payload = ? WHERE seq = ?", (FORGED, seq))
        conn.close()
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("ALTER TABLE events DISABLE TRIGGER ALL"))
        conn.execute(text("UPDATE events SET payload = :p WHERE seq = :s"), {"p": FORGED, "s": seq})
    engine.dispose()


def test_journal_verify_exit_codes(journal_url: str) -> None:
    j = Journal(journal_url, actor="alice")
    fill(j)
    j.close()
    intact = backout("--journal", journal_url, "journal", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "journal intact: 26 events" in intact.stdout
    report = _json(backout("--journal", journal_url, "journal", "verify", "--json"))
    assert report["ok"] is True
    assert report["events"] == 26
    assert report["trusted_seq"] == 26  # the first run remembered the head

    _tamper(journal_url, 5)
    broken = backout("--journal", journal_url, "journal", "verify")
    assert broken.returncode == 1
    assert "at event 5" in one_line_error(broken)
    as_json = backout("--journal", journal_url, "journal", "verify", "--json")
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert (data["ok"], data["first_bad_seq"]) == (False, 5)
    assert "changed" in data["problem"]


# --- journal location, identity, structured logs ----------------------------------------


def test_journal_location_precedence(tmp_path: Path) -> None:
    flag, env, conf = tmp_path / "flag.db", tmp_path / "env.db", tmp_path / "conf.db"
    config = tmp_path / "backout.toml"
    config.write_text(f'journal = "sqlite:///{conf}"\n')

    def where(*args: str, **env_vars: str) -> str:
        result = backout(*args, "init", "--json", env=env_vars, cwd=tmp_path)
        return str(_json(result)["journal"])

    assert where("--journal", str(flag), BACKOUT_JOURNAL=str(env)) == resolve_url(str(flag))
    assert where(BACKOUT_JOURNAL=str(env)) == resolve_url(str(env))
    assert where() == f"sqlite:///{conf}"  # ./backout.toml
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    result = backout("init", "--json", cwd=elsewhere)  # no config: the documented default
    default = Path(str(_json(result)["journal"]).split("///", 1)[1])
    assert default.name == "journal.db" and default.parent.name == "backout"
    assert default.is_relative_to(Path(os.environ["XDG_DATA_HOME"]))


def test_missing_or_invalid_config_is_exit_2(tmp_path: Path) -> None:
    missing = backout("runs", env={"BACKOUT_CONFIG": str(tmp_path / "nope.toml")})
    assert missing.returncode == 2
    assert "nope.toml" in one_line_error(missing)
    bad = tmp_path / "bad.toml"
    bad.write_text('journal = "x.db"\nrollbak = 1\n')
    invalid = backout("runs", env={"BACKOUT_CONFIG": str(bad)})
    assert invalid.returncode == 2
    line = one_line_error(invalid)
    assert f"{bad}:2:" in line and "rollbak" in line


def test_actor_from_as_and_backout_user(filled: Filled) -> None:
    by_flag = backout("--journal", str(filled.path), "--as", "carol", "pause", filled.running)
    assert by_flag.returncode == 0, by_flag.stderr
    by_env = backout(
        "--journal", str(filled.path), "pause", filled.running, env={"BACKOUT_USER": "dave"}
    )
    assert by_env.returncode == 0, by_env.stderr
    j = Journal(str(filled.path))
    requested = j.events(filled.running, kinds=["run.pause_requested"])
    assert [e.actor for e in requested] == ["carol", "dave"]
    j.close()


def test_log_json_file_gets_one_line_per_event(filled: Filled, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    result = backout(
        "--journal",
        str(filled.path),
        "--log-json",
        str(log),
        "--as",
        "erin",
        "pause",
        filled.running,
    )
    assert result.returncode == 0, result.stderr
    backout(
        "--journal", str(filled.path), "pause", filled.running, env={"BACKOUT_LOG_JSON": str(log)}
    )
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["kind"] == "run.pause_requested"
    assert first["run_id"] == filled.running
    assert first["corr"] == f"corr-{filled.running}"
    assert first["actor"] == "erin"
    assert first["seq"] == 27
    assert first["payload"] == {"by": "erin"}
    assert json.loads(lines[1])["seq"] == 28


def test_log_json_sink_writes_every_event_of_a_transaction(tmp_path: Path) -> None:
    from console.cli.context import Ctx

    log = tmp_path / "log.jsonl"
    ctx = Ctx(journal_arg=str(tmp_path / "j.db"), user_arg="frank", log_json=str(log))
    with ctx.journal.write() as w:
        for i in range(3):
            w.append("annotation", {"i": i}, run_id="r1", corr="c1")
    with pytest.raises(RuntimeError), ctx.journal.write() as w:  # rolled back: not logged
        w.append("annotation", {"i": 99})
        raise RuntimeError
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["seq"], e["payload"]["i"], e["actor"]) for e in lines] == [
        (1, 0, "frank"),
        (2, 1, "frank"),
        (3, 2, "frank"),
    ]
    assert {e["run_id"] for e in lines} == {"r1"}
    ctx.journal.close()


# --- events --follow --------------------------------------------------------------------


def _reader(stream: IO[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _take(lines: queue.Queue[str], n: int, timeout: float = 60) -> list[dict[str, Any]]:
    return [json.loads(lines.get(timeout=timeout)) for _ in range(n)]


def test_events_follow_prints_events_appended_by_another_process(filled: Filled) -> None:
    command = [str(BACKOUT)] if BACKOUT.exists() else [sys.executable, "-m", "console"]
    proc = subprocess.Popen(
        [*command, "--journal", str(filled.path), "events", filled.running, "--follow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _reader(proc.stdout)  # type: ignore[arg-type]
        existing = _take(lines, 8)
        assert existing[-1]["kind"] == "checkpoint"
        writer = Journal(str(filled.path), actor="bob")
        writer.append("annotation", {"text": "other run"}, run_id=filled.completed)
        writer.append("annotation", {"text": "look here"}, run_id=filled.running)
        writer.append("run.completed", {}, run_id=filled.running)
        writer.close()
        new = _take(lines, 2)
        assert [e["kind"] for e in new] == ["annotation", "run.completed"]
        assert new[0]["payload"] == {"text": "look here"}
        assert new[0]["actor"] == "bob"
        assert lines.empty()
        assert proc.poll() is None  # still following
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- help -------------------------------------------------------------------------------


def _commands() -> list[list[str]]:
    """Every leaf command path, from the app itself."""
    import typer
    from typer import _click as click

    from console.cli import app

    paths: list[list[str]] = []

    def walk(group: Any, prefix: list[str]) -> None:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            sub = group.get_command(ctx, name)
            if hasattr(sub, "list_commands"):
                walk(sub, [*prefix, name])
            else:
                paths.append([*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_help_lists_every_command() -> None:
    result = backout("--help")
    assert result.returncode == 0
    commands = _commands()
    assert {"init", "runs", "show", "events", "demo"} <= {p[0] for p in commands}
    assert ["journal", "verify"] in commands
    for top in {p[0] for p in commands}:
        assert f" {top} " in result.stdout, top


def test_every_command_has_help_with_examples() -> None:
    from typer.testing import CliRunner

    from console.cli import app

    runner = CliRunner()
    for path in _commands():
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Examples" in result.output, path


def test_help_does_not_import_textual() -> None:
    program = (
        "import sys\n"
        "from console.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "sys.stderr.write('TEXTUAL=' + ','.join(loaded) + '\\n')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Commands" in result.stdout
    assert "TEXTUAL=\n" in result.stderr, result.stderr
    # The real entry point too, measured by the interpreter's own import log.
    timed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "console", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert timed.returncode == 0
    imported = [line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines()]
    assert "typer" in imported  # the log is real
    assert not [m for m in imported if m.split(".")[0] == "textual"]


def test_a_log_file_that_cannot_be_written_is_bad_input(tmp_path: Path) -> None:
    for bad in (tmp_path, tmp_path / "missing" / "x.log"):
        r = backout("--journal", str(tmp_path / "j.db"), "--log-json", str(bad), "runs")
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith(f"backout: --log-json {bad}: ") and "Traceback" not in r.stderr


def test_a_csv_gets_a_new_version_from_the_command_line(tmp_path: Path) -> None:
    """A CSV carries no name or version: the second export of the same file name with new
    content is refused until `--version` says it is a new version."""
    from tests.engine.helpers import make_items

    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 5)
    csv = tmp_path / "prices.csv"
    journal = str(tmp_path / "j.db")
    common = ("--table", "items", "--key", "id", "--op", "update", "--target", url)
    csv.write_text("id,amount\n1,2.50\n")
    assert backout("--journal", journal, "apply", str(csv), *common).returncode == 0
    csv.write_text("id,amount\n1,3.50\n")
    again = backout("--journal", journal, "apply", str(csv), *common)
    assert again.returncode == 2 and "new version" in again.stderr, again.stderr
    bumped = backout("--journal", journal, "apply", str(csv), *common, "--version", "2")
    assert bumped.returncode == 0, bumped.stderr
    named = backout("--journal", journal, "apply", str(csv), *common, "--name", "eu-prices")
    assert named.returncode == 0, named.stderr
    runs = {(r.changeset, r.version) for r in Journal(f"sqlite:///{journal}").runs(limit=10)}
    assert runs == {("prices", 1), ("prices", 2), ("eu-prices", 1)}


def test_the_console_needs_a_terminal(tmp_path: Path) -> None:
    """In a script or a pipe, bare `backout` would draw the console into the pipe and wait
    for keys that never come: it says so instead."""
    for args in ((), ("console",)):
        r = backout("--journal", str(tmp_path / "j.db"), *args)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.startswith("backout: the console needs a terminal")


def test_demo_off_a_terminal_builds_the_workspace_and_lists_its_runs(tmp_path: Path) -> None:
    r = backout("demo", "--dir", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    assert "not on a terminal" in r.stderr
    assert f"workspace: {tmp_path / 'demo'}" in r.stdout
    runs = Journal(f"sqlite:///{tmp_path / 'demo' / 'journal.db'}").runs(limit=50)
    assert {"completed", "paused"} <= {r.status for r in runs}


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('[policy]\nversion = "3"\n', "backout.toml:2: 'policy.version' input should be a valid"),
        ('[policy.approval]\nquorum = "2"\n', "'policy.approval.quorum' input should be a valid"),
        ('[policy.rollback]\nrequire_runbook = "no"\n', "require_runbook' input should be a"),
    ],
)
def test_a_configuration_value_of_the_wrong_type_is_refused(
    tmp_path: Path, toml: str, words: str
) -> None:
    """Strict: "no" is not False, "2" is not 2 (a policy that reads other than it is meant)."""
    (tmp_path / "backout.toml").write_text(toml)
    r = backout("--journal", str(tmp_path / "j.db"), "runs", cwd=tmp_path)
    assert r.returncode == 2 and words in r.stderr, r.stderr


def test_a_failed_command_with_json_still_prints_one_json_document(tmp_path: Path) -> None:
    journal = str(tmp_path / "j.db")
    for args in (("show", "nosuch", "--json"), ("rollback", "nosuch", "--json")):
        r = backout("--journal", journal, *args)
        assert r.returncode == 2 and r.stderr.startswith("backout: no run 'nosuch'")
        assert json.loads(r.stdout) == {
            "error": r.stderr[len("backout: ") :].strip(),
            "exit_code": 2,
        }


def test_a_bad_target_is_named_where_it_was_given(tmp_path: Path) -> None:
    cs = tmp_path / "cs.yaml"
    cs.write_text(
        "changeset: x\nversion: 1\nsteps:\n  - name: s\n    table: items\n    key: [id]\n"
        "    operations:\n      - {op: delete, key: {id: 1}}\n"
    )
    journal = str(tmp_path / "j.db")
    bad_url = backout("--journal", journal, "apply", str(cs), "--target", "foo://x")
    assert bad_url.returncode == 2
    assert bad_url.stderr.startswith(f"backout: {cs}: --target: target URL 'foo://x'")
    typo = backout("--journal", journal, "apply", str(cs), "--target", str(tmp_path / "typo.db"))
    assert typo.returncode == 2 and "--target: database file" in typo.stderr
    none = backout("--journal", journal, "apply", str(cs))
    assert none.returncode == 2 and f"{cs}:4: target: no target" in none.stderr
