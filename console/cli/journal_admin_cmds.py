"""Team journal administration: setup, grant, copy (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from console.cli.app import journal_app
from console.cli.context import JSON_OPT, print_json
from console.errors import BackoutError


@contextmanager
def _database_errors(url: str) -> Iterator[None]:
    """A refusal or an unreachable server is one sentence, not a traceback."""
    from sqlalchemy.exc import DBAPIError

    from console.canonical import mask_url

    try:
        yield
    except DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise BackoutError(f"{mask_url(url)}: {first.rstrip('.')}.") from exc


_PREFIX = typer.Option(
    "--role-prefix", help="Group roles are PREFIX_owner, PREFIX_operator, ...", show_default=True
)


@journal_app.command(
    "setup", epilog="Examples:\n\n  backout journal setup --postgres postgresql://admin@db/backout"
)
def setup_cmd(
    postgres: Annotated[str, typer.Option("--postgres", help="The team's PostgreSQL URL.")],
    prefix: Annotated[str, _PREFIX] = "backout",
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Create the shared journal's schema, group roles and grants (idempotent)."""
    from console.journal.setup import TeamRoles, setup

    with _database_errors(postgres):
        info = setup(postgres, TeamRoles(prefix))
    if as_json:
        print_json(info)
    else:
        made = ", ".join(info["created"]) or "none (all existed)"
        typer.echo(f"journal {info['journal_id']} ready; roles created: {made}")


@journal_app.command(
    "grant", epilog="Examples:\n\n  backout journal grant alice approver --postgres URL"
)
def grant_cmd(
    user: Annotated[str, typer.Argument(help="The person's PostgreSQL login role.")],
    role: Annotated[str, typer.Argument(help="owner, operator, approver or auditor.")],
    postgres: Annotated[str, typer.Option("--postgres", help="The team's PostgreSQL URL.")],
    prefix: Annotated[str, _PREFIX] = "backout",
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Add a person (a LOGIN role, created if missing, no password) to a team role."""
    from console.journal.setup import TeamRoles, grant

    with _database_errors(postgres):
        info = grant(postgres, user, role, TeamRoles(prefix))
    if as_json:
        print_json(info)
    else:
        typer.echo(f"{user} is now a member of {info['role']}")


@journal_app.command(
    "copy",
    epilog="Examples:\n\n  backout journal copy --from ~/journal.db --to postgresql://me@db/backout",
)
def copy_cmd(
    source: Annotated[str, typer.Option("--from", help="The SQLite journal to copy.")],
    target: Annotated[str, typer.Option("--to", help="An empty PostgreSQL journal.")],
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Copy a single-user SQLite journal into a fresh PostgreSQL journal, then verify it."""
    from console.journal.copy import copy_journal

    with _database_errors(target):
        counts, report = copy_journal(source, target)
    if as_json:
        print_json({"rows": counts, "verify": report.as_dict()})
    else:
        typer.echo(
            f"copied {counts.get('events', 0)} events ({sum(counts.values())} rows); "
            f"chain verified, head {report.head_seq} {report.head_hash[:12]}"
        )
