"""`backout console`: the Textual incident console (imported only here, lazily)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from console.cli.app import app
from console.cli.context import Ctx, get_ctx
from console.errors import BadInput


def on_a_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def open_console(c: Ctx, *, run: str | None, readonly: bool) -> None:
    if not on_a_terminal():  # a script or a pipe: the console would draw into it and wait
        raise BadInput(
            "the console needs a terminal (stdin or stdout is not one); in scripts use "
            "`backout runs`, `backout show RUN` or `backout --help`."
        )
    # Textual is imported here only, so that `backout --help` and every other command stay fast.
    if c.journal.drill is not None:  # a replay sandbox's journal: the drill banner everywhere
        from console.tui.replay import run_drill_console

        run_drill_console(c.journal, user=c.user, run=run, readonly=readonly, settings=c.settings)
        return
    from console.tui.app import run_console

    run_console(c, run=run, readonly=readonly)


@app.command(
    "console",
    epilog="Examples:\n\n  backout console\n\n  backout console --run 3f2a9c --readonly",
)
def console_command(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="Open this run directly.")] = None,
    readonly: Annotated[
        bool, typer.Option("--readonly", help="Never offer actions that write.")
    ] = False,
) -> None:
    """Open the incident console on the journal."""
    open_console(get_ctx(ctx), run=run, readonly=readonly)
