"""Hostile input for the loaders, and the contract they must keep through the CLI: exit 2,
one line on stderr naming the file, no traceback, nothing written to the journal or target.

Shared by the change-set, runbook and configuration fuzz tests."""

from __future__ import annotations

import contextlib
import functools
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import typer.main
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from console.journal import Journal

# A few hundred documents per loader in the normal suite; thousands with -m slow.
NORMAL = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SLOW = settings(NORMAL, max_examples=2_500)

NASTY = [
    "", "\x00", "\ufeff", "\u202e", "\ud7ff", "💥", "'", '"', "`", "\\", "%s", "{0}", "${x}",
    "!!python/object/apply:os.system ['true']", "&a", "*a", "<<", "- ", ": ", "#", "---",
    "...", "1e999999999", "-0", "NaN", ".inf", "0x1F", "2026-02-30", "~", "null", "yes",
]  # fmt: skip


def structures(words: Sequence[str]) -> st.SearchStrategy[Any]:
    """Nested lists and mappings whose keys and scalars are mostly the loader's own words."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=16),
        st.sampled_from([*words, *NASTY]),
    )
    keys = st.one_of(st.sampled_from([*words, *NASTY]), st.text(max_size=8))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=6)
        ),
        max_leaves=40,
    )


def deep(opening: str, closing: str, depth: int, leaf: str = "1") -> str:
    return opening * depth + leaf + closing * depth


def deep_block_yaml(depth: int) -> str:
    return "".join("  " * i + "- \n" for i in range(depth)) + "  " * depth + "x\n"


def dumped(doc: Any, how: str) -> str:
    """``doc`` as YAML, JSON or (for mappings) TOML-ish text; any of them may be invalid."""
    if how == "json":
        return json.dumps(doc, default=str)
    if how == "yaml":
        return yaml.safe_dump(doc, allow_unicode=True)
    return toml_ish(doc)


def toml_ish(doc: Any, prefix: str = "") -> str:
    """Close enough to TOML that the parser gets deep before it (maybe) refuses."""
    if not isinstance(doc, dict):
        return f"value = {json.dumps(doc, default=str)}\n"
    lines, tables = [], []
    for key, value in doc.items():
        name = json.dumps(str(key))
        if isinstance(value, dict):
            tables.append((f"{prefix}.{name}" if prefix else name, value))
        else:
            lines.append(f"{name} = {json.dumps(value, default=str)}")
    out = "\n".join(lines) + "\n"
    for header, value in tables:
        out += f"[{header}]\n" + toml_ish(value, header)
    return out


@dataclass
class CliResult:
    code: int
    out: str
    err: str


_build_command = typer.main.get_command


@functools.cache
def _built_once(app: typer.Typer) -> Any:
    return _build_command(app)


def cli(argv: list[str]) -> CliResult:
    """The real CLI in this process (same parsing and error handling as the console script).

    Typer rebuilds its Click command at every call (0.2 s); thousands of examples reuse one."""
    from console.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with (
        mock.patch.object(typer.main, "get_command", _built_once),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return CliResult(code, out.getvalue(), err.getvalue())


def assert_refused(result: CliResult, file: Path) -> str:
    """Exit 2 and one sentence naming the file; never a traceback or an internal error."""
    assert result.code == 2, (result.code, result.err[:500])
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err[:2000]
    line = lines[0]
    assert line.startswith("backout: ") and "internal error" not in line, line[:500]
    assert str(file) in line or file.name in line, line[:500]
    return line


def journal_head(url: str) -> tuple[int, str]:
    j = Journal(url)
    try:
        return j.head()
    finally:
        j.close()
