"""Command line entry point. Heavy modules are imported inside commands, so `--help` is fast."""

from __future__ import annotations

import inspect
import os
import sys

import typer

from console.cli.app import app
from console.cli.context import json_error
from console.errors import BackoutError, Exit

# Command modules register on ``app`` when imported; this order is the order of `--help`.
# isort: off
from console.cli import journal_cmds, engine_cmds, rollback_cmds, runbook_cmds  # noqa: F401
from console.cli import demo_cmd, console_cmd  # noqa: F401
from console.cli import reconcile_cmds  # noqa: F401
from console.cli import serve_cmds  # noqa: F401
from console.cli import journal_admin_cmds  # noqa: F401
from console.cli import export_cmds  # noqa: F401
from console.cli import drill_cmds, drill_replay_cmd  # noqa: F401
# isort: on


def _unwrap(doc: str) -> str:
    """A docstring's paragraphs as single lines: Rich help keeps source line breaks, which
    then land mid-sentence in any terminal width but ours. Lists keep their lines."""
    paragraphs = []
    for para in doc.split("\n\n"):
        lines = para.splitlines()
        if any(line.lstrip().startswith(("- ", "* ")) for line in lines):
            paragraphs.append(para)
        else:
            paragraphs.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)


def _unwrap_help(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            info.help = _unwrap(inspect.cleandoc(info.callback.__doc__))
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _unwrap_help(group.typer_instance)


_unwrap_help(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: expected errors are one sentence on stderr, never a traceback.

    Usage errors are Typer's own (exit 2); ``BackoutError`` carries its exit code.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("BACKOUT_DEBUG") == "1"
    try:
        app(args=args, prog_name="backout")
    except BackoutError as exc:
        if debug:
            raise
        sys.stderr.write(f"backout: {exc.message}\n")
        if "--json" in args:
            json_error(exc.message, int(exc.exit_code))
        sys.exit(int(exc.exit_code))
    except Exception as exc:
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        message = (
            f"internal error: {type(exc).__name__}: {first}. "
            "Rerun with --debug for the traceback and report it."
        )
        sys.stderr.write(f"backout: {message}\n")
        if "--json" in args:
            json_error(message, int(Exit.FAILED))
        sys.exit(Exit.FAILED)
