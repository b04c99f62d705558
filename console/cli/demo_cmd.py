"""`backout demo`: a self-contained workspace with realistic runs, then the console."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from console.cli.app import app
from console.cli.context import get_ctx


@app.command(epilog="Examples:\n\n  backout demo\n\n  backout demo --dir /tmp/demo --no-console")
def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Option("--dir", help="Workspace folder (created or reused).")
    ] = Path("backout-demo"),
    no_console: Annotated[
        bool, typer.Option("--no-console", help="Build the workspace and print its runs only.")
    ] = False,
) -> None:
    """Build a demo workspace (sandbox CRM + journal with real runs) and open the console."""
    from console import demo as demo_mod

    c = get_ctx(ctx)
    ws = demo_mod.prepare(directory)
    c.journal_arg = ws.journal_url
    c._journal = None
    from console.demo_runs import populate

    populate(ws, c.journal)
    from console.cli.console_cmd import on_a_terminal, open_console

    if not no_console and not on_a_terminal():
        typer.echo("not on a terminal: the demo's runs instead of the console", err=True)
        no_console = True
    if no_console:
        from console.cli.journal_cmds import runs

        ctx.invoke(runs, ctx=ctx, status=None, limit=50, drills=False, as_json=False)
        typer.echo(f"workspace: {ws.root}  (journal {ws.journal}, target {ws.crm})")
        return
    open_console(c, run=None, readonly=True)
