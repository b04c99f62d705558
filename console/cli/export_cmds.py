"""``backout export RUN``: the incident report (Markdown) or the evidence bundle (JSON)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from console.cli.app import app
from console.cli.context import get_ctx
from console.errors import BadInput


@app.command(
    epilog="Examples:\n\n  backout export 3f2a9c --format md -o incident.md\n\n"
    "  backout export 3f2a9c --format json -o evidence.json\n\n"
    "  backout journal verify --bundle evidence.json"
)
def export(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="md (incident report) or json (evidence bundle).")
    ] = "md",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to FILE instead of stdout ('-': stdout)."),
    ] = None,
) -> None:
    """Export a run as a Markdown incident report or a JSON evidence bundle."""
    if fmt not in ("md", "json"):
        raise BadInput(f"--format {fmt}: unknown format; use md or json.")
    from console.export.bundle import build_bundle

    c = get_ctx(ctx)
    bundle = build_bundle(c.journal, run, c.user)
    if fmt == "json":
        text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
    else:
        from console.export.report import render_markdown

        text = render_markdown(c.journal, bundle)
    if output is None or str(output) == "-":  # "-": stdout, as every Unix tool reads it
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{output}: cannot write the export ({exc.strerror}).") from exc
    typer.echo(f"wrote {output} ({fmt}, {bundle['filtered']['included']} events)", err=True)
