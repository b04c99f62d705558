"""`rollback --keys FILE` / `reapply --keys FILE`: the file names a key of the run's steps,
or it is refused (a header that matched nothing used to roll back nothing, exit 0)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.changes import load_changeset
from console.cli.rollback_cmds import read_keys
from console.config import Settings
from console.engine.apply import Engine
from console.errors import BadInput
from console.journal import Journal
from tests.engine.helpers import changeset_doc, make_items, write_changeset


@pytest.fixture
def applied(tmp_path: Path) -> tuple[Journal, str]:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 10)
    j = Journal(f"sqlite:///{tmp_path / 'j.db'}", actor="t")
    doc = changeset_doc(url, updates=range(1, 6))
    report = Engine(j, Settings()).apply(load_changeset(write_changeset(tmp_path / "c.yaml", doc)))
    assert report.run_id
    return j, report.run_id


def test_a_spreadsheet_export_reads_like_a_plain_file(
    applied: tuple[Journal, str], tmp_path: Path
) -> None:
    j, run = applied
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    plain.write_text("id\n2\n4\n")
    excel.write_bytes(b"\xef\xbb\xbfid \r\n2\r\n 4\r\n")  # BOM, CRLF, stray blanks
    assert read_keys(plain, j, run) == read_keys(excel, j, run) == ({"id": "2"}, {"id": "4"})


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"idx\n2\n", "idx is not the key of run"),
        (b"id,name\n2,x\n", "id, name is not the key of run"),
        (b"id\n2,3\n", ":2: more values than the first line names columns"),
        (b"id\n\n2\n ", "a key value is empty"),
        (b"\xb9\xff\x00\x01", "not a UTF-8 CSV file"),
        (b"", "no keys"),
    ],
)
def test_a_key_file_that_cannot_match_is_refused(
    applied: tuple[Journal, str], tmp_path: Path, content: bytes, words: str
) -> None:
    j, run = applied
    path = tmp_path / "keys.csv"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=words):
        read_keys(path, j, run)


def test_cli_rollback_with_a_wrong_key_column_is_exit_2(
    applied: tuple[Journal, str], tmp_path: Path
) -> None:
    j, run = applied
    (tmp_path / "keys.csv").write_text("sku\nA-1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "console", "--journal", str(tmp_path / "j.db"), "rollback", run,
         "--keys", str(tmp_path / "keys.csv")],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "sku is not the key of run" in proc.stderr
    assert j.get_run(run).status == "completed"  # nothing rolled back


def test_a_key_the_run_never_wrote_is_refused_with_its_line(
    applied: tuple[Journal, str], tmp_path: Path
) -> None:
    """A typo in a key file used to roll back the other keys and say done."""
    j, run = applied
    path = tmp_path / "keys.csv"
    path.write_text("id\n2\n\n77\n4\n99\n")  # a blank line: 77 is on line 4
    with pytest.raises(BadInput) as caught:
        read_keys(path, j, run)
    assert str(caught.value.message).startswith(
        f'{path}:4: {{"id":"77"}} is not the key of a row run {run} wrote (and 1 more); '
    )
    path.write_text("id\n5\n1\n")  # every key the run wrote, in any order
    assert read_keys(path, j, run) == ({"id": "5"}, {"id": "1"})


def test_cli_rollback_with_a_mistyped_key_rolls_back_nothing(
    applied: tuple[Journal, str], tmp_path: Path
) -> None:
    j, run = applied
    (tmp_path / "keys.csv").write_text("id\n2\n20\n")
    for command in ("rollback", "reapply"):
        proc = subprocess.run(
            [sys.executable, "-m", "console", "--journal", str(tmp_path / "j.db"), command,
             run, "--keys", str(tmp_path / "keys.csv")],
            check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert ':3: {"id":"20"} is not the key of a row run' in proc.stderr
    assert j.get_run(run).status == "completed"  # nothing rolled back
