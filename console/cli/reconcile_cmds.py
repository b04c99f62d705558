"""Where the data stands after a run: reconcile, and fix what automation can fix safely."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from console.cli.app import app
from console.cli.context import JSON_OPT, finish, get_ctx, print_json
from console.errors import Exit

AGAINST_HELP = "expected (after an apply) or baseline (after a rollback); default from status."
TARGET_HELP = "Target URL or name, if it moved."


def _row(table: str, f: dict[str, Any]) -> str:
    op = f" op {f['op_no']}" if f.get("op_no") is not None else ""
    cols = ",".join(f.get("columns", [])[:6])
    return f"  {f['class']:<18} {table} {f['key']} [{cols}]{op}"


@app.command(
    epilog="Examples:\n\n  backout reconcile 3f2a9c\n\n"
    "  backout reconcile 3f2a9c --against baseline --json\n\n"
    "  backout reconcile 3f2a9c --table items --no-notify",
)
def reconcile(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The run to reconcile (id or unique prefix).")],
    against: Annotated[str | None, typer.Option("--against", help=AGAINST_HELP)] = None,
    table: Annotated[str | None, typer.Option("--table", help="Only this table.")] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help=TARGET_HELP)] = None,
    notify: Annotated[
        bool | None,
        typer.Option(
            "--notify/--no-notify",
            help="Send the summary to the [notify] channels (JSON log, webhook); default: "
            "whichever backout.toml configures.",
        ),
    ] = None,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Compare the target with its baseline and the intended result; journal the evidence.

    Row by row (keyed fingerprints, DeepDiff for the rows explained) and in aggregate.

    Exit 0 nothing needs attention; 3 findings need review; 2 bad input.
    """
    from console.reconcile.service import reconcile_run

    c = get_ctx(ctx)
    res = reconcile_run(
        c.journal, c.settings, run, against, table=table, target=target, notify=notify
    )
    if as_json:
        print_json(res.as_dict())
        finish(res.exit_code)
    typer.echo(res.text())
    for cls, n in res.counts.items():
        typer.echo(f"  {cls:<18} {n}")
    worst = res.summary["worst"]
    if worst:
        typer.echo("worst rows:")
        for f in worst:
            typer.echo(_row(f["table"], f))
    checked = ", ".join(f"{k} {v}" for k, v in res.checked.items())
    typer.echo(f"checked: {checked}")
    finish(res.exit_code)


@app.command(
    epilog="Examples:\n\n  backout fix 3f2a9c --plan\n\n"
    "  backout fix 3f2a9c --apply --class wrong_value --json",
)
def fix(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The reconciled run (id or unique prefix).")],
    plan: Annotated[
        bool, typer.Option("--plan", help="Print the fix plan and its sha256; write nothing.")
    ] = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Execute the plan through the journal; verify.")
    ] = False,
    cls: Annotated[
        list[str] | None, typer.Option("--class", help="Only findings of this class (repeat).")
    ] = None,
    against: Annotated[str | None, typer.Option("--against", help=AGAINST_HELP)] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help=TARGET_HELP)] = None,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Propose (--plan) or apply (--apply) the smallest guarded fix per finding.

    Each fix carries a precondition on the current value, re-checked when it is applied; a
    row changed since goes to review, never "source wins".

    Exit 0 done (or nothing to fix); 3 left for review; 1 verification failed; 4 refused by
    policy.
    """
    from console.reconcile.fixrun import apply_fixes, fix_plan

    c = get_ctx(ctx)
    classes = tuple(cls) if cls else None
    if apply:
        report = apply_fixes(
            c.journal, c.settings, run, against=against, classes=classes, target=target
        )
        if as_json:
            print_json(report.as_dict())
        else:
            typer.echo(report.message)
            for item in report.conflicts[:20]:
                typer.echo(f"  review {item.get('table')} {item.get('key')}: now {item.get('now')}")
        finish(report.exit_code)
    p = fix_plan(c.journal, c.settings, run, against=against, classes=classes, target=target)
    if as_json:
        print_json(p.as_dict())
    else:
        for t in p.plans:
            for op in t.ops:
                what = op.set if op.kind == "update" else op.row if op.kind == "insert" else ""
                typer.echo(f"  {op.kind:<6} {t.table} {op.key} {what or ''}".rstrip())
            for r in t.review:
                typer.echo(f"  review {t.table} {r['key']} ({r['class']}): {r['reason']}")
        typer.echo(f"fix plan: {p.total} operation(s), {p.review_count} left for review")
        typer.echo(f"plan sha256 {p.digest}")
    if not plan:
        typer.echo("(--apply executes it)", err=True)
    finish(Exit.REVIEW if p.review_count else Exit.DONE)
