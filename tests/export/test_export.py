"""Incident export: the evidence bundle verifies offline, one changed byte fails it, and the
Markdown report carries the facts a postmortem needs. Real runs through the real engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from console.changes import load_changeset
from console.cli import main
from console.config import Settings
from console.engine.apply import Engine
from console.errors import Exit
from console.journal import Journal
from console.reconcile.service import reconcile_run
from console.rollback.execute import Options, Rollback
from tests.engine.helpers import changeset_doc, make_items, write_changeset


@dataclass
class Scene:
    journal_path: Path
    run_id: str
    other_id: str
    rollback_id: str


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """A run, an unrelated run after it (filtered out), then the first run's rollback.

    Built once for the module (tests only read it); user state stays in a temporary place."""
    tmp_path = tmp_path_factory.mktemp("scene")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        mp.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        yield _build(tmp_path)


def _build(tmp_path: Path) -> Scene:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 60)
    jpath = tmp_path / "journal.db"
    j = Journal(f"sqlite:///{jpath}", actor="oncall1")
    doc = changeset_doc(url, name="eu-price-uplift", updates=range(1, 26), deletes=range(50, 53))
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "a.yaml", doc)))
    assert report.exit_code == Exit.DONE, report.message
    other_doc = changeset_doc(url, name="other-batch", updates=range(30, 35))
    other = Engine(j, Settings()).apply(
        load_changeset(write_changeset(tmp_path / "b.yaml", other_doc))
    )
    # Someone edits a row the batch wrote: the rollback must leave it as a conflict.
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE items SET note = 'hand edit' WHERE id = 5"))
    engine.dispose()
    rb = Rollback(j, Settings()).execute(report.run_id or "", Options())
    assert rb.exit_code == Exit.REVIEW, rb.message
    rollback_id = j.runs(kind="rollback", limit=1)[0].id
    result = reconcile_run(j, Settings(), report.run_id or "", "baseline")
    assert result.needs_review  # the hand-edited row is not restored
    j.close()
    return Scene(jpath, report.run_id or "", other.run_id or "", rollback_id)


def _export_json(capsys: pytest.CaptureFixture[str], scene: Scene, out: Path) -> dict[str, Any]:
    code, _, err = cli(
        capsys,
        "--journal",
        str(scene.journal_path),
        "export",
        scene.run_id,
        "--format",
        "json",
        "-o",
        str(out),
    )
    assert code == 0, err
    data = json.loads(out.read_text())
    assert isinstance(data, dict)
    return data


def test_bundle_contents_and_offline_verify(
    capsys: pytest.CaptureFixture[str], scene: Scene, tmp_path: Path
) -> None:
    out = tmp_path / "evidence.json"
    data = _export_json(capsys, scene, out)
    assert data["format"] == "backout-evidence/1"
    assert data["run"]["id"] == scene.run_id
    assert [r["id"] for r in data["related_runs"]] == [scene.rollback_id]
    runs = {e["run_id"] for e in data["events"]}
    assert runs == {scene.run_id, scene.rollback_id}
    seqs = [e["seq"] for e in data["events"]]
    assert seqs == sorted(seqs)
    filtered = data["filtered"]
    assert filtered["included"] == len(seqs)
    assert filtered["included"] + filtered["left_out"] == data["head"]["seq"]
    assert filtered["left_out_ranges"]  # the other run sits between them
    # The journal is gone (moved away): verification cannot be reading it.
    away = scene.journal_path.rename(tmp_path / "away.db")
    try:
        code, text, err = cli(capsys, "journal", "verify", "--bundle", str(out))
        assert code == 0, err
        assert "bundle intact" in text and "does not prove" in text
        code, text, _ = cli(capsys, "journal", "verify", "--bundle", str(out), "--json")
        report = json.loads(text)
        assert report["ok"] and report["rehashed"] == len(seqs) and report["links"] > 0
        assert not scene.journal_path.exists()
    finally:
        away.rename(scene.journal_path)


def _flip(text: str, needle: str) -> str:
    """Change one byte: the first character of the first occurrence of ``needle``."""
    at = text.index(needle)
    ch = text[at]
    return text[:at] + ("0" if ch != "0" else "1") + text[at + 1 :]


@pytest.mark.parametrize("field", ["payload_text", "actor", "hash", "prev_hash", "ts"])
def test_one_changed_byte_fails(
    capsys: pytest.CaptureFixture[str], scene: Scene, tmp_path: Path, field: str
) -> None:
    out = tmp_path / "evidence.json"
    data = _export_json(capsys, scene, out)
    victim = data["events"][len(data["events"]) // 2]
    raw = out.read_text()
    # Locate the victim event's field in the file and change a byte inside its value.
    start = raw.index(f'"seq": {victim["seq"]},')
    at = raw.index(f'"{field}": "', start) + len(f'"{field}": "') + 2
    while not raw[at].isalnum():  # stay off JSON escapes and quotes: the file stays JSON
        at += 1
    tampered = raw[:at] + _flip(raw[at:], raw[at])
    assert tampered != raw and len(tampered) == len(raw)
    out.write_text(tampered)
    code, _, err = cli(capsys, "journal", "verify", "--bundle", str(out))
    assert code == 1
    assert f"at event {victim['seq']}" in err, err
    code, text, _ = cli(capsys, "journal", "verify", "--bundle", str(out), "--json")
    assert code == 1 and json.loads(text)["first_bad_seq"] == victim["seq"]


def test_removed_event_breaks_link_or_digest(
    capsys: pytest.CaptureFixture[str], scene: Scene, tmp_path: Path
) -> None:
    out = tmp_path / "evidence.json"
    data = _export_json(capsys, scene, out)
    del data["events"][3]
    out.write_text(json.dumps(data))
    code, _, err = cli(capsys, "journal", "verify", "--bundle", str(out))
    assert code == 1 and "bundle verification failed" in err


def test_not_a_bundle_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "journal", "verify", "--bundle", str(tmp_path / "nope.json"))
    assert code == 2 and err.count("\n") == 1
    (tmp_path / "x.json").write_text('{"format": "other"}')
    code, _, err = cli(capsys, "journal", "verify", "--bundle", str(tmp_path / "x.json"))
    assert code == 2 and "not a backout evidence bundle" in err


def test_markdown_report_has_the_facts(
    capsys: pytest.CaptureFixture[str], scene: Scene, tmp_path: Path
) -> None:
    data = _export_json(capsys, scene, tmp_path / "evidence.json")
    out = tmp_path / "incident.md"
    code, _, err = cli(
        capsys, "--journal", str(scene.journal_path), "export", scene.run_id[:8], "-o", str(out)
    )
    assert code == 0, err
    md = out.read_text()
    for fact in (
        f"# Incident report: run {scene.run_id} (eu-price-uplift v1)",
        "**Automation:** test:suite",
        "**Who:** oncall1",
        "## Timeline (UTC, oldest first)",
        "apply run created: eu-price-uplift v1, 28 rows",
        f"rollback {scene.rollback_id}",
        "conflict on op",
        "| update |",
        "amount: 5.5 → 5.25",
        "operation(s) in conflict",
        "reconciled against baseline:",
        "needs review",
        "not_restored in items key",
        f"Evidence bundle digest: `{data['digest']}`",
        f"hash `{data['head']['hash']}`",
    ):
        assert fact in md, fact
    assert scene.other_id not in md  # the unrelated run stays out of the report
    # Without -o the report goes to stdout, and nothing else does.
    code, text, _ = cli(capsys, "--journal", str(scene.journal_path), "export", scene.run_id)
    assert code == 0 and text.startswith("# Incident report")


def test_unknown_format_is_bad_input(capsys: pytest.CaptureFixture[str], scene: Scene) -> None:
    code, _, err = cli(
        capsys, "--journal", str(scene.journal_path), "export", scene.run_id, "--format", "pdf"
    )
    assert code == 2 and "use md or json" in err


def test_changed_journal_id_breaks_event_one(
    capsys: pytest.CaptureFixture[str], scene: Scene, tmp_path: Path
) -> None:
    out = tmp_path / "evidence.json"
    data = _export_json(capsys, scene, out)
    assert data["events"][0]["seq"] == 1  # the run opened this journal: genesis is checked
    data["journal_id"] = data["journal_id"][:-1] + ("0" if data["journal_id"][-1] != "0" else "1")
    out.write_text(json.dumps(data))
    code, _, err = cli(capsys, "journal", "verify", "--bundle", str(out))
    assert code == 1 and "at event 1" in err
