"""`backout journal copy`: a SQLite journal moves to PostgreSQL and still verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.changes import load_changeset
from console.cli import main
from console.config import Settings
from console.engine.apply import Engine
from console.errors import BadInput
from console.journal import Journal
from console.journal.copy import copy_journal
from tests.engine.helpers import changeset_doc, make_items, write_changeset


def test_copy_from_sqlite_verifies_on_postgres(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"sqlite:///{tmp_path / 't.db'}"
    make_items(target, 60)
    doc = changeset_doc(target, updates=range(1, 31), inserts=range(1001, 1006), deletes=[50])
    cs = load_changeset(write_changeset(tmp_path / "cs.yaml", doc))
    src = Journal(str(tmp_path / "j.db"), actor="alice")
    report = Engine(src, Settings()).apply(cs)
    assert report.applied == 36
    src_head, src_id = src.head(), src.journal_id
    src.close()

    with pytest.raises(SystemExit) as done:
        main(["journal", "copy", "--from", str(tmp_path / "j.db"), "--to", pg_url])
    assert done.value.code in (0, None), capsys.readouterr().err
    dst = Journal(pg_url, create=False)
    assert dst.journal_id == src_id and dst.head() == src_head
    assert dst.get_run(report.run_id or "").rows_applied == 36
    assert dst.events(limit=1)[0].actor == "alice"
    dst.append("note", {"text": "after the copy"})  # the chain continues on the target
    dst.close()

    with pytest.raises(BadInput, match="not empty"):
        copy_journal(str(tmp_path / "j.db"), pg_url)
