"""Writing through the journal: apply, resume, pause."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from console.cli.app import app
from console.cli.context import JSON_OPT, finish, get_ctx, print_json
from console.engine.report import RunReport


def _emit(report: RunReport, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        out = f"{report.message}"
        if report.elapsed_s and report.applied:
            out += f" in {report.elapsed_s:.1f}s ({report.rows_per_s:,.0f} rows/s)"
        typer.echo(out)
    finish(report.exit_code)


@app.command(
    epilog="Examples:\n\n  backout apply prices.yaml\n\n"
    "  backout apply prices.yaml --dry-run --json\n\n"
    "  backout apply big-batch.yaml --workers 4   (PostgreSQL, MariaDB)\n\n"
    "  backout apply uplift.csv --table products --key sku --op update --target crm\n\n"
    "  backout apply uplift.csv --table products --key sku --op update --version 2",
)
def apply(
    ctx: typer.Context,
    changeset: Annotated[Path, typer.Argument(help="Change set file: YAML, JSON or CSV.")],
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="Target URL or name from backout.toml."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Execute in transactions that are rolled back."),
    ] = False,
    segment_size: Annotated[
        int | None, typer.Option("--segment-size", min=1, help="Rows per segment.")
    ] = None,
    table: Annotated[str | None, typer.Option("--table", help="CSV/JSON array: table.")] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="CSV/JSON array: key column(s), comma-separated.")
    ] = None,
    op: Annotated[
        str | None, typer.Option("--op", help="CSV/JSON array: insert|update|delete|upsert.")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="CSV/JSON array: change-set name (default: the file name)."),
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            min=1,
            help="CSV/JSON array: change-set version (default 1); new content under the same "
            "name needs a new version.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Segments written in parallel, each on its own connection (PostgreSQL and "
            "MariaDB; SQLite takes 1). Segments with overlapping keys never run together.",
        ),
    ] = 1,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Apply a change set through the journal (write-ahead, resumable, reversible).

    Exit 0 completed; 1 paused or failed (the journal holds exactly what was applied; with
    `on_error: rollback` the summary says what the automatic rollback reverted); 2 bad input
    (nothing written); 4 the automatic rollback was refused by the policy gate (the run stays
    paused; start the rollback runbook).
    """
    from console.changes import ChangeSetInvalid, load_changeset
    from console.cli.progress import progress_bar
    from console.engine.apply import Engine

    c = get_ctx(ctx)
    args: dict[str, object] = {}
    if table:
        args["table"] = table
    if key:
        args["key"] = [k.strip() for k in key.split(",") if k.strip()]
    if op:
        args["op"] = op
    if name:
        args["name"] = name
    if version is not None:
        args["version"] = version
    try:
        cs = load_changeset(changeset, **args)  # type: ignore[arg-type]
        with progress_bar(f"apply {cs.name} v{cs.version}", enabled=not as_json) as bar:
            engine = Engine(c.journal, c.settings, progress=bar)
            report = engine.apply(
                cs,
                target=target,
                dry_run=dry_run,
                segment_size=segment_size,
                source_args=args,
                workers=workers,
            )
    except ChangeSetInvalid as exc:
        if as_json:
            print_json({"error": exc.message, "problems": [p.as_dict() for p in exc.problems]})
        raise
    _emit(report, as_json)


@app.command(
    epilog="Examples:\n\n  backout resume 3f2a9c\n\n  backout resume 3f2a9c --changeset moved.yaml"
)
def resume(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    changeset: Annotated[
        Path | None,
        typer.Option("--changeset", help="The change set file, if it moved since the run."),
    ] = None,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Continue a paused, failed or crashed run; in-doubt segments are resolved first.

    A reconciliation fix that was interrupted has its in-doubt segments resolved and is then
    closed: what it had not journaled is a new `backout fix --apply` (a fresh plan, gated).
    """
    from console.cli.progress import progress_bar
    from console.engine.apply import Engine

    c = get_ctx(ctx)
    found = c.journal.get_run(run)
    with progress_bar(f"resume {run}", enabled=not as_json) as bar:
        if found.kind == "rollback":
            from console.rollback.execute import Rollback

            report = Rollback(c.journal, c.settings, progress=bar).resume(run)
        elif found.kind == "fix":
            from console.reconcile.fixrun import resume_fix

            report = resume_fix(c.journal, c.settings, found)
        else:
            report = Engine(c.journal, c.settings, progress=bar).resume(
                run, changeset_path=str(changeset) if changeset else None
            )
    _emit(report, as_json)


@app.command(epilog="Examples:\n\n  backout pause 3f2a9c")
def pause(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Ask a running apply, rollback or fix (in another process) to stop at the next segment
    boundary; `backout resume RUN` continues it."""
    from console.engine.apply import Engine

    c = get_ctx(ctx)
    _emit(Engine(c.journal, c.settings).request_pause(run), as_json)
