"""``backout.toml``: strict validation that names the key, the file and the line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from console.config import Settings, load_settings, parse_duration
from console.errors import BadInput, Exit

# The configuration shape documented in DESIGN.md, verbatim.
DESIGN_CONFIG = """\
# backout.toml (working directory, or BACKOUT_CONFIG)
journal = "sqlite:///backout-journal.db"

[targets.crm]
url = "postgresql+psycopg://crm@db.internal/crm"

[policy]
version = 3

[policy.roles]                  # role -> users
oncall = ["oncall1", "oncall2"]
data-owner = ["owner1", "owner2"]
incident-commander = ["ic1"]

[policy.approval]               # defaults for every approval step
quorum = 2
require_roles = ["data-owner"]  # at least one approver from each
exclude = ["requester", "executor"]
expires_after = "30m"

[policy.rollback]
require_runbook = true          # a direct `backout rollback` exits 4

[notify]
webhook = "https://hooks.example.invalid/T000/B000"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backout.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_design_config_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, DESIGN_CONFIG)
    s = load_settings(path)
    assert s.journal == "sqlite:///backout-journal.db"
    assert s.targets["crm"].url == "postgresql+psycopg://crm@db.internal/crm"
    assert s.policy.version == 3
    assert s.policy.roles["data-owner"] == ["owner1", "owner2"]
    assert s.policy.roles_of("owner1") == ["data-owner"]
    assert s.policy.approval.quorum == 2
    assert s.policy.approval.require_roles == ["data-owner"]
    assert s.policy.approval.exclude == ["requester", "executor"]
    assert parse_duration(s.policy.approval.expires_after) == dt.timedelta(minutes=30)
    assert s.policy.rollback.require_runbook is True
    assert s.notify.webhook == "https://hooks.example.invalid/T000/B000"
    assert s.source == str(path)


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s == Settings()
    assert s.source is None


def test_working_directory_file_and_env_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, 'journal = "here.db"\n')
    assert load_settings().journal == "here.db"
    other = tmp_path / "elsewhere.toml"
    other.write_text('journal = "there.db"\n')
    monkeypatch.setenv("BACKOUT_CONFIG", str(other))
    assert load_settings().journal == "there.db"


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ('jornal = "x.db"\n', "jornal", 1),
        ('journal = "x.db"\n\n[policy]\nversion = 1\nrolez = {}\n', "policy.rolez", 5),
        (
            "[policy.approval]\nquorum = 2\nexpire_after = '30m'\n",
            "policy.approval.expire_after",
            3,
        ),
        ('[targets.crm]\nurl = "sqlite:///crm.db"\npassword = "x"\n', "targets.crm.password", 3),
        ("[notify]\nwebhook = 'https://x.invalid'\n\n[notfy]\nwebhook = 'y'\n", "notfy", 4),
    ],
)
def test_an_unknown_key_names_the_key_the_file_and_the_line(
    tmp_path: Path, text: str, key: str, line: int
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BadInput) as err:
        load_settings(path)
    message = err.value.message
    assert f"unknown key '{key}'" in message
    assert f"{path}:{line}:" in message
    assert err.value.exit_code == Exit.BAD_INPUT
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("[policy.approval]\nquorum = 'two'\n", "policy.approval.quorum", 2),
        ("[policy.approval]\nquorum = 0\n", "policy.approval.quorum", 2),
        ("[policy.approval]\nexpires_after = 'soon'\n", "policy.approval.expires_after", 2),
        ("[policy.approval]\nexclude = ['everyone']\n", "policy.approval.exclude.0", 2),
        ("[policy.rollback]\nrequire_runbook = 'maybe'\n", "policy.rollback.require_runbook", 2),
        ("journal = 5\n", "journal", 1),
        ("[policy]\nroles = ['oncall']\n", "policy.roles", 2),
    ],
)
def test_a_bad_type_or_value_names_the_key(tmp_path: Path, text: str, key: str, line: int) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BadInput) as err:
        load_settings(path)
    message = err.value.message
    assert f"'{key}'" in message
    assert str(path) in message
    assert f"{path}:{line}:" in message
    assert err.value.exit_code == Exit.BAD_INPUT


def test_a_bad_target_name_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, '[targets."crm prod"]\nurl = "sqlite:///x.db"\n')
    with pytest.raises(BadInput, match="target name 'crm prod'"):
        load_settings(path)


def test_invalid_toml_is_bad_input(tmp_path: Path) -> None:
    path = _write(tmp_path, "journal = \n")
    with pytest.raises(BadInput, match="not valid TOML") as err:
        load_settings(path)
    assert str(path) in err.value.message


def test_backout_config_pointing_at_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("BACKOUT_CONFIG", str(missing))
    with pytest.raises(BadInput) as err:
        load_settings()
    assert err.value.exit_code == Exit.BAD_INPUT == 2
    assert str(missing) in err.value.message
    assert "BACKOUT_CONFIG" in err.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", dt.timedelta(minutes=30)),
        ("4h", dt.timedelta(hours=4)),
        (" 7d ", dt.timedelta(days=7)),
        ("1w", dt.timedelta(weeks=1)),
        ("45s", dt.timedelta(seconds=45)),
    ],
)
def test_durations(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "30", "m", "1.5h", "-1d", "3 months"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(bad)
