"""Hostile configuration files: whatever `--config` points at, backout exits 2 with one
sentence naming the file, never a traceback, and writes nothing to the journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from console.journal import Journal
from tests.hostile import (
    NORMAL,
    SLOW,
    assert_refused,
    cli,
    deep,
    dumped,
    journal_head,
    structures,
)

WORDS = [
    "journal", "targets", "url", "policy", "version", "roles", "approval", "quorum",
    "require_roles", "exclude", "expires_after", "rollback", "require_runbook", "environments",
    "notify", "reconcile", "normalise", "identity", "console", "full_baseline_rows", "30m",
]  # fmt: skip


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('journal') / 'journal.db'}"
    j = Journal(url, actor="test")
    j.append("note", {"text": "the journal is not empty"})
    j.close()
    return url


def refused(journal: str, tmp: Path, content: str | bytes) -> None:
    path = tmp / "backout.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    before = journal_head(journal)
    # `runs` reads the configuration first (policy, targets), then the journal.
    result = cli(["--journal", journal, "--config", str(path), "runs"])
    assert journal_head(journal) == before
    assert_refused(result, path)


def _valid(content: str | bytes) -> bool:
    """A generated document may happen to be a valid configuration: not hostile, skip it."""
    import tomllib

    from console.config import Settings

    try:
        text = content.decode() if isinstance(content, bytes) else content
        # As backout reads it: Path.read_text translates \r and \r\n to \n.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        Settings.model_validate(tomllib.loads(text))
    except Exception:
        return False
    return True


bytes_cases = given(data=st.binary(max_size=3_000))
structure_cases = given(doc=structures(WORDS), how=st.sampled_from(["toml", "toml", "json"]))


def _structure_case(journal: str, tmp: Path, doc: object, how: str) -> None:
    text = dumped(doc, how)
    if not _valid(text):
        refused(journal, tmp, text)


@NORMAL
@bytes_cases
@example(data=b"\xff\xfe[[[")  # not UTF-8: was an internal error
@example(data=b"\r")  # valid as read (newlines translated): not hostile
def test_random_bytes(journal: str, tmp_path: Path, data: bytes) -> None:
    if not _valid(data):
        refused(journal, tmp_path, data)


@NORMAL
@structure_cases
def test_random_structures(journal: str, tmp_path: Path, doc: object, how: str) -> None:
    _structure_case(journal, tmp_path, doc, how)


@settings(NORMAL, max_examples=30)
@given(depth=st.integers(1, 50_000), table=st.booleans())
@example(depth=5_000, table=False)  # was a RecursionError (internal error)
def test_deep_nesting(journal: str, tmp_path: Path, depth: int, table: bool) -> None:
    body = deep("{a = ", "}", depth) if table else deep("[", "]", depth)
    refused(journal, tmp_path, f"[policy]\nversion = {body}\n")


@pytest.mark.parametrize(
    "content",
    [
        "x = " + '"' + "a" * 20_000_000 + '"\n',
        "".join(f"k{i} = {i}\n" for i in range(100_000)),
        bytes(range(256)) * 20_000,
        '"line\\nbreak" = 1\n',
        '[policy]\nversion = "\\u2028"\n',
    ],
    ids=["long-string", "many-keys", "binary", "escaped-newline-key", "separator-value"],
)
def test_huge_and_tricky_input(journal: str, tmp_path: Path, content: str | bytes) -> None:
    refused(journal, tmp_path, content)


@pytest.mark.slow
@SLOW
@bytes_cases
def test_random_bytes_thousands(journal: str, tmp_path: Path, data: bytes) -> None:
    if not _valid(data):
        refused(journal, tmp_path, data)


@pytest.mark.slow
@SLOW
@structure_cases
def test_random_structures_thousands(journal: str, tmp_path: Path, doc: object, how: str) -> None:
    _structure_case(journal, tmp_path, doc, how)
