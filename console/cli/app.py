"""The Typer app and its global options. Command modules register on ``app``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from console.cli.context import Ctx

app = typer.Typer(
    name="backout",
    help=(
        "Journaled safety net for batch updates: apply, roll back exactly, reconcile, "
        "and run approval-gated runbooks.\n\n"
        "Run `backout` with no command to open the incident console."
    ),
    no_args_is_help=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
    pretty_exceptions_enable=False,
)
journal_app = typer.Typer(help="Journal maintenance: verify the hash chain and projections.")
app.add_typer(journal_app, name="journal")
drill_app = typer.Typer(
    help="Drills: rehearse failures in a sandbox, replay recorded runs, score the trainee."
)
app.add_typer(drill_app, name="drill")


@app.callback(invoke_without_command=True)
def _globals(
    ctx: typer.Context,
    journal: Annotated[
        str | None,
        typer.Option(
            "--journal",
            envvar="BACKOUT_JOURNAL",
            help="Journal: SQLAlchemy URL or SQLite file path. Else backout.toml, else "
            "$XDG_DATA_HOME/backout/journal.db.",
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--as", envvar="BACKOUT_USER", help="Act as USER (else the OS user)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="BACKOUT_CONFIG", help="Configuration file."),
    ] = None,
    log_json: Annotated[
        str | None,
        typer.Option(
            "--log-json",
            envvar="BACKOUT_LOG_JSON",
            help="Also write every journal event as a JSON line to FILE ('-' for stderr).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")
    ] = False,
) -> None:
    ctx.obj = Ctx(
        journal_arg=journal, user_arg=user, config_path=config, log_json=log_json, debug=debug
    )
    if ctx.invoked_subcommand is None:
        from console.cli.console_cmd import open_console

        open_console(ctx.obj, run=None, readonly=False)
