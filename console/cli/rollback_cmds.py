"""Undoing a run: rollback (plan, dry run, scope, check), doctor, reapply."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from console.cli.app import app
from console.cli.context import JSON_OPT, finish, get_ctx, print_json
from console.errors import BadInput, Exit

if TYPE_CHECKING:
    from console.journal import Journal


def read_keys(path: Path, journal: Journal, run_ref: str) -> tuple[dict[str, Any], ...]:
    """One key per line (single key column named in the header) or a CSV with key columns;
    the header must name the key of one of ``run_ref``'s steps (else nothing would match, and
    a rollback of nothing would look like success). A spreadsheet's BOM and CRLF are fine."""
    from console.canonical import canonical_json, loads
    from console.rollback.plan import unmatched_keys

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows, lines = [], []
            for r in reader:  # (blank lines are skipped: keep each row's own line number)
                rows.append({k.strip() if k else "": v for k, v in r.items()})
                lines.append(reader.line_num)
            header = [h.strip() for h in reader.fieldnames or []]
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the key file ({exc.strerror}).") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BadInput(
            f"{path}: not a UTF-8 CSV file ({exc}); give one key per line, the first line "
            "naming the key column(s)."
        ) from None
    if not rows:
        raise BadInput(f"{path}: no keys; the first line names the key column(s).")
    run = journal.get_run(run_ref)
    keysets = {tuple(loads(s.key_columns)) for s in journal.steps(run.id)}
    if not any(set(header) == set(k) for k in keysets):
        known = "; ".join(", ".join(k) for k in sorted(keysets))
        raise BadInput(
            f"{path}:1: {', '.join(header)} is not the key of run {run.id} ({known}); name "
            "its key column(s) in the first line."
        )
    for n, row in zip(lines, rows, strict=True):
        if "" in row:  # csv files values past the header under None
            raise BadInput(f"{path}:{n}: more values than the first line names columns.")
        if any(v is None or not v.strip() for v in row.values()):
            raise BadInput(f"{path}:{n}: a key value is empty; give every key column a value.")
    keys = tuple({k: v.strip() for k, v in r.items()} for r in rows)
    missing = unmatched_keys(journal, run.id, keys)
    if missing:  # a typo would roll back (or reapply) less than asked, and say done
        first = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise BadInput(
            f"{path}:{lines[first]}: {canonical_json(keys[first])} is not the key of a row run "
            f"{run.id} wrote{more}; fix or remove it (nothing was done)."
        )
    return keys


@app.command(
    epilog="Examples:\n\n  backout rollback 3f2a9c --plan\n\n"
    "  backout rollback 3f2a9c --dry-run\n\n"
    "  backout rollback 3f2a9c --step raise-prices --keys skus.csv\n\n"
    "  backout rollback 3f2a9c --check --json",
)
def rollback(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The run to roll back (id or unique prefix).")],
    plan: Annotated[
        bool, typer.Option("--plan", help="Print every inverse and conflict; write nothing.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Execute in transactions that are rolled back.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Can this run still be rolled back? Exit 0 or 3.")
    ] = False,
    step: Annotated[
        list[str] | None, typer.Option("--step", help="Only this step (repeatable).")
    ] = None,
    keys: Annotated[
        Path | None, typer.Option("--keys", help="Only these keys: CSV with key column(s).")
    ] = None,
    on_conflict: Annotated[
        str, typer.Option("--on-conflict", help="review (exit 3) or skip (record as skipped).")
    ] = "review",
    force_conflicts: Annotated[
        bool,
        typer.Option("--force-conflicts", help="Overwrite rows changed since; recorded as forced."),
    ] = False,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="Target URL or name, if it moved.")
    ] = None,
    no_notify: Annotated[
        bool, typer.Option("--no-notify", help="Do not send the summary to [notify] channels.")
    ] = False,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Reverse exactly what a run wrote, newest first, without clobbering later writes.

    Exit 0 fully restored; 3 conflicts left for review; 1 failed; 2 bad input; 4 refused by
    policy (a runbook is required).
    """
    from console.cli.progress import progress_bar
    from console.rollback.execute import Options, Rollback
    from console.rollback.plan import Scope

    if on_conflict not in ("review", "skip"):
        raise BadInput(f"--on-conflict {on_conflict}: use review or skip.")
    c = get_ctx(ctx)
    options = Options(
        scope=Scope(tuple(step or ()), read_keys(keys, c.journal, run) if keys else ()),
        on_conflict=on_conflict,  # type: ignore[arg-type]
        force=force_conflicts,
        dry_run=dry_run,
        target=target,
    )
    if check:
        from console.rollback.readiness import check as readiness

        r = readiness(Rollback(c.journal, c.settings), c.journal.get_run(run), options)
        if as_json:
            print_json(r.as_dict())
        else:
            state = "ready" if r.ready else "NOT ready"
            typer.echo(
                f"run {r.run_id}: {state} to roll back ({r.inverses} inverses, "
                f"{r.conflicts} conflicts)"
            )
            for reason in r.reasons:
                typer.echo(f"  - {reason}")
        finish(Exit.DONE if r.ready else Exit.REVIEW)
    if plan:
        p = Rollback(c.journal, c.settings).plan(run, options)
        if as_json:
            print_json(p.as_dict())
        else:
            typer.echo(
                f"rollback plan for run {p.run.id}: {len(p.items) - len(p.conflicts)} "
                f"inverse operation(s), {len(p.conflicts)} conflict(s)"
            )
            for i in p.items:
                mark = "CONFLICT" if i.conflict else "        "
                typer.echo(f"  {mark} op {i.parent_op:>6}  {i.kind:<6} {i.table} {i.key}")
            typer.echo(f"plan sha256 {p.digest}")
        finish(Exit.REVIEW if p.conflicts and on_conflict == "review" else Exit.DONE)
    with progress_bar(f"rollback {run}", enabled=not as_json) as bar:
        report = Rollback(c.journal, c.settings, progress=bar).execute(run, options)
    if not dry_run and not no_notify:  # never fatal: outcomes are journaled
        from console.reconcile.notify import notify_rollback, wanted

        if wanted(c.settings, None):
            notify_rollback(c.journal, c.settings, report)
    if as_json:
        print_json(report.as_dict())
    else:
        typer.echo(report.message)
        for conflict in report.extra.get("conflicts", [])[:20]:
            typer.echo(
                f"  conflict {conflict.get('table')} {conflict.get('key')}: "
                f"ours {conflict.get('ours')} now {conflict.get('now')}"
            )
    finish(report.exit_code)


@app.command(epilog="Examples:\n\n  backout doctor\n\n  backout doctor --json")
def doctor(ctx: typer.Context, as_json: Annotated[bool, JSON_OPT] = False) -> None:
    """Check every run inside the policy's rollback window can still be rolled back."""
    from console.config import parse_duration
    from console.journal import format_ts
    from console.rollback.execute import Options, Rollback
    from console.rollback.readiness import check as readiness

    c = get_ctx(ctx)
    since = format_ts(c.journal.clock() - parse_duration(c.settings.policy.rollback.window))
    results = []
    for run in c.journal.runs(
        limit=10_000, status=["completed", "paused", "failed", "rollback_partial"]
    ):
        if run.created_at < since or run.kind == "rollback" or run.dry_run:
            continue
        results.append(readiness(Rollback(c.journal, c.settings), run, Options()))
    if as_json:
        print_json([r.as_dict() for r in results])
    else:
        for r in results:
            typer.echo(
                f"{r.run_id}  {'ready' if r.ready else 'NOT ready'}"
                + "".join(f"\n    - {x}" for x in r.reasons)
            )
        if not results:
            typer.echo("no runs inside the rollback window")
    finish(Exit.DONE if all(r.ready for r in results) else Exit.REVIEW)


@app.command(
    epilog="Examples:\n\n  backout reapply 3f2a9c\n\n  backout reapply 3f2a9c --keys skus.csv"
)
def reapply(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="A rolled-back run (id or unique prefix).")],
    step: Annotated[list[str] | None, typer.Option("--step", help="Only this step.")] = None,
    keys: Annotated[Path | None, typer.Option("--keys", help="Only these keys (CSV).")] = None,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Apply selected rows of a rolled-back run's change set again, as a new journaled run."""
    from console.cli.progress import progress_bar
    from console.engine.reapply import reapply as do_reapply

    c = get_ctx(ctx)
    with progress_bar(f"reapply {run}", enabled=not as_json) as bar:
        report = do_reapply(
            c.journal,
            c.settings,
            run,
            steps=tuple(step or ()),
            keys=read_keys(keys, c.journal, run) if keys else (),
            progress=bar,
        )
    if as_json:
        print_json(report.as_dict())
    else:
        typer.echo(report.message)
    finish(report.exit_code)
