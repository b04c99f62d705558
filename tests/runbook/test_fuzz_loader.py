"""Hostile runbooks: `backout runbook validate` and `runbook start` exit 2, every line of the
message names the file (a runbook lists all its problems, one per line), never a traceback,
and `start` writes nothing to the journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.hostile import (
    NORMAL,
    SLOW,
    CliResult,
    cli,
    deep,
    deep_block_yaml,
    dumped,
    journal_head,
    structures,
)
from tests.runbook.conftest import WALK, Team

WORDS = [
    "runbook", "version", "title", "prerequisites", "steps", "id", "check", "verify", "decide",
    "approval", "action", "manual", "escalate", "next", "on_fail", "goto", "when", "sql",
    "expect", "quorum", "require_roles", "expires_after", "rollback", "pause_run", "end",
    "result.value > 1", "__import__('os')", "lock_target",
]  # fmt: skip


def assert_refused_runbook(result: CliResult, path: Path) -> None:
    assert result.code == 2, (result.code, result.err[:500])
    assert "Traceback" not in result.err and "internal error" not in result.err, result.err
    lines = result.err.strip().splitlines()
    assert lines and all(str(path) in line for line in lines), result.err[:2000]


def validate(tmp: Path, content: str | bytes) -> None:
    path = tmp / "rb.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    assert_refused_runbook(cli(["runbook", "validate", str(path)]), path)


def _mutated(junk: object, at: int) -> object:
    """A valid runbook with one step overlaid (a mapping) or replaced (anything else)."""
    import yaml

    book = yaml.safe_load(WALK)
    steps = book["steps"]
    i = at % len(steps)
    steps[i] = {**steps[i], **junk} if isinstance(junk, dict) else junk
    return book


bytes_cases = given(data=st.binary(max_size=3_000))
structure_cases = given(doc=structures(WORDS), how=st.sampled_from(["yaml", "json"]))


@NORMAL
@bytes_cases
@example(data=b"\x00")  # a YAML reader error (no position): was an internal error
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    validate(tmp_path, data)


@NORMAL
@structure_cases
@example(doc={}, how="yaml")  # an empty mapping: was exit 2 with no message at all
def test_random_structures(tmp_path: Path, doc: object, how: str) -> None:
    validate(tmp_path, dumped(doc, how))


@settings(NORMAL, max_examples=10)
@given(depth=st.integers(1, 5_000), kind=st.integers(0, 2))
@example(depth=20_000, kind=0)  # was a RecursionError (internal error)
def test_deep_nesting(tmp_path: Path, depth: int, kind: int) -> None:
    text = [deep("[", "]", depth), deep("{a: ", "}", depth), deep_block_yaml(min(depth, 3_000))]
    validate(tmp_path, text[kind])


@pytest.mark.parametrize(
    "content",
    ["a" * 2_000_000, bytes(range(256)) * 4_000, "steps:\n" + "  - {id: s}\n" * 5_000],
    ids=["long-scalar", "binary", "many-steps"],  # many-steps took 38 s: graph check was O(n²)
)
def test_huge_input(tmp_path: Path, content: str | bytes) -> None:
    validate(tmp_path, content)


@settings(NORMAL, max_examples=50)
@given(doc=structures(WORDS), at=st.integers(0, 6))
@example(doc={"\x9d\x85": 1}, at=6)  # C1 line breaks in a key: was a message over 3 lines
def test_start_with_a_hostile_runbook_writes_nothing(
    sqlite_team: Team, doc: object, at: int
) -> None:
    import yaml

    from console.runbook.loader import check_text

    text = yaml.safe_dump(_mutated(doc, at))
    if check_text(text, "x")[0] is not None:
        return  # the mutation left a valid runbook: not hostile
    path = sqlite_team.write_runbook("hostile", text)
    before = journal_head(sqlite_team.url)
    result = sqlite_team.cli("oncall1", "runbook", "start", str(path), "--run", sqlite_team.run_id)
    assert journal_head(sqlite_team.url) == before
    assert_refused_runbook(CliResult(result.code, result.out, result.err), path)


@pytest.mark.slow
@SLOW
@bytes_cases
def test_random_bytes_thousands(tmp_path: Path, data: bytes) -> None:
    validate(tmp_path, data)


@pytest.mark.slow
@SLOW
@structure_cases
def test_random_structures_thousands(tmp_path: Path, doc: object, how: str) -> None:
    validate(tmp_path, dumped(doc, how))
