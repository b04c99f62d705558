"""The HTTP intake for low-code platforms: `backout serve` and its bearer tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from console.cli.app import app
from console.cli.context import JSON_OPT, get_ctx, print_json

token_app = typer.Typer(help="Bearer tokens for `backout serve`, one per automation.")
app.add_typer(token_app, name="token")


@app.command(epilog="Examples:\n\n  backout serve\n\n  backout serve --host 0.0.0.0 --port 8470")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8470,
    max_body_mb: Annotated[
        int, typer.Option("--max-body-mb", min=1, help="Largest request body, MiB.")
    ] = 10,
    rate: Annotated[
        float, typer.Option("--rate", min=0.01, help="Requests per second per token (average).")
    ] = 5.0,
) -> None:
    """Serve the HTTP intake (n8n, Zapier, Make, Power Automate); OpenAPI at /openapi.json.

    Every request needs a bearer token from `backout token create`.
    """
    import uvicorn

    from console.intake.app import Config, MiB, create_app

    c = get_ctx(ctx)
    config = Config(c.journal_url, c.settings, max_body=max_body_mb * MiB, rate=rate)
    uvicorn.run(create_app(config), host=host, port=port, log_level="info")


@token_app.command(
    "create",
    epilog="Examples:\n\n  backout token create n8n-prices --role automation --owner alice",
)
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Token name: the actor of the events it causes.")],
    role: Annotated[str, typer.Option("--role", help="Role of the caller.")] = "automation",
    owner: Annotated[
        str | None, typer.Option("--owner", help="The human who answers for this automation.")
    ] = None,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Create a token and print its secret once (only its sha256 is stored)."""
    from console.intake import tokens

    c = get_ctx(ctx)
    secret = tokens.create(c.journal, name, role, owner or c.settings.policy.owners.get(name))
    if as_json:
        print_json({"name": name, "role": role, "token": secret})
    else:
        typer.echo(secret)
        typer.echo(
            f"token '{name}' created; store the secret now, it is not shown again.", err=True
        )


@token_app.command("revoke", epilog="Examples:\n\n  backout token revoke n8n-prices")
def token_revoke(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Token name.")]
) -> None:
    """Revoke a token: every request with it is refused from now on (401)."""
    from console.intake import tokens

    tokens.revoke(get_ctx(ctx).journal, name)
    typer.echo(f"token '{name}' revoked")


@token_app.command("list", epilog="Examples:\n\n  backout token list --json")
def token_list(ctx: typer.Context, as_json: Annotated[bool, JSON_OPT] = False) -> None:
    """List tokens (names, roles, owners, state; never secrets)."""
    from dataclasses import asdict

    from console.intake import tokens

    rows = tokens.listing(get_ctx(ctx).journal)
    if as_json:
        print_json([asdict(t) for t in rows])
        return
    for t in rows:
        state = f"revoked {t.revoked_at}" if t.revoked_at else "active"
        typer.echo(f"{t.name:<24} {t.role:<12} owner {t.owner or '-':<12} {state}")
    if not rows:
        typer.echo("no tokens; `backout token create NAME --role automation` makes one")
