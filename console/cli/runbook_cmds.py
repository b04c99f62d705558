"""Runbooks and approvals: runbook list | validate | start | status | next | abort;
approve, deny, approvals.

Identity: ``--as``/``BACKOUT_USER`` on a SQLite journal; on PostgreSQL the authenticated
database role (a different ``--as`` is refused, exit 4). ``BACKOUT_CLOCK`` (an ISO time, or an
offset such as ``+31m``) sets the clock these commands use, for drills and tests.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from console.cli.app import app
from console.cli.context import JSON_OPT, Ctx, finish, get_ctx, print_json
from console.errors import BadInput, Exit

if TYPE_CHECKING:
    from console.journal import Journal
    from console.runbook.executor import Outcome

runbook_app = typer.Typer(
    help="Runbooks: list, validate, start, status, next, abort.\n\n"
    "Identity is --as/BACKOUT_USER on SQLite, the database role on PostgreSQL. "
    "BACKOUT_CLOCK (an ISO time, or an offset such as +31m) sets the clock, for drills."
)
app.add_typer(runbook_app, name="runbook")


def session(ctx: typer.Context) -> tuple[Ctx, Journal]:
    """The journal, acting as the proven identity with the configured clock."""
    from console.runbook import service

    c = get_ctx(ctx)
    journal = c.journal
    ctx.call_on_close(journal.close)
    return c, service.prepare(journal, c.settings, c.user_arg)


def _emit(outcome: Outcome, as_json: bool) -> None:
    if as_json:
        print_json(outcome.as_dict())
    else:
        typer.echo(outcome.message)
    finish(outcome.exit_code)


# --- files ------------------------------------------------------------------------------


@runbook_app.command(
    "list", epilog="Examples:\n\n  backout runbook list\n\n  backout runbook list --json"
)
def list_cmd(as_json: Annotated[bool, JSON_OPT] = False) -> None:
    """Runbooks in ./runbooks and the ones that ship with backout."""
    from console.runbook import service

    items = [entry.as_dict() for entry in service.runbooks()]
    if as_json:
        print_json(items)
        return
    for i in items:
        state = (
            f"v{i['version']}  {i['title']}"
            if i["valid"]
            else f"INVALID ({i['problems']} problem(s))"
        )
        typer.echo(f"{i['name']:<24} {state}\n{'':<24} {i['path']}")
    if not items:
        typer.echo("no runbooks found in ./runbooks or the shipped ones")


@runbook_app.command(epilog="Examples:\n\n  backout runbook validate runbooks/rollback-batch.yaml")
def validate(
    file: Annotated[Path, typer.Argument(help="The runbook YAML file.")],
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Check a runbook: schema, step kinds, gotos, reachability, cycles. Exit 0 or 2."""
    from console.runbook import loader

    text = loader.read_file(file)
    book, problems = loader.check_text(text, str(file))
    if as_json:
        print_json(
            {
                "file": str(file),
                "valid": book is not None,
                "digest": book.digest if book else None,
                "problems": [
                    {"line": p.where.line, "column": p.where.column, "message": p.message}
                    for p in problems
                ],
            }
        )
        finish(Exit.DONE if book else Exit.BAD_INPUT)
    if book is None:
        for p in problems:
            sys.stderr.write(p.render(str(file)) + "\n")
        finish(Exit.BAD_INPUT)
    typer.echo(
        f"{file}: valid (runbook {book.name} v{book.version}, {len(book.steps)} steps, "
        f"sha256 {book.digest})"
    )


# --- executions -------------------------------------------------------------------------


@runbook_app.command(
    epilog="Examples:\n\n  backout runbook start rollback-batch --run 3f2a9c\n\n"
    "  backout runbook start reconcile-and-fix --run 3f2a9c --backup-ref "
    "snap-0412 --json"
)
def start(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Runbook name (see `runbook list`) or file.")],
    run: Annotated[str, typer.Option("--run", help="The run it is for (id or prefix).")],
    backup_ref: Annotated[
        str | None, typer.Option("--backup-ref", help="Backup or snapshot reference.")
    ] = None,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Start an execution; the runbook's content and sha256 are pinned in the journal."""
    from console.runbook import service

    c, journal = session(ctx)
    outcome = service.start(journal, c.settings, name, run, backup_ref)
    _emit(outcome, as_json)


@runbook_app.command(
    "next",
    epilog="Examples:\n\n  backout runbook next 8c1d2e\n\n"
    "  backout runbook next 8c1d2e --confirm --answer snap-0412",
)
def next_cmd(
    ctx: typer.Context,
    exec_id: Annotated[str, typer.Argument(metavar="EXEC", help="Execution id or prefix.")],
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Confirm a manual step is done.")
    ] = False,
    answer: Annotated[
        str | None, typer.Option("--answer", help="The answer a manual step asks for.")
    ] = None,
    step: Annotated[
        str | None, typer.Option("--step", help="Only if this is the current step.")
    ] = None,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Execute the current step if the gate allows it, and record its result.

    Exit 0 done; 3 a check found discrepancies or conflicts; 4 blocked (approvals missing,
    expired, denied or for another plan; a manual step not confirmed); 1 the step failed.
    """
    from console.runbook import service

    c, journal = session(ctx)
    outcome = service.run_step(
        journal, c.settings, exec_id, confirm=confirm, answer=answer, expect_step=step
    )
    _emit(outcome, as_json)


@runbook_app.command(epilog="Examples:\n\n  backout runbook abort 8c1d2e --comment 'wrong run'")
def abort(
    ctx: typer.Context,
    exec_id: Annotated[str, typer.Argument(metavar="EXEC", help="Execution id or prefix.")],
    comment: Annotated[str, typer.Option("--comment", help="Why (required).")],
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Stop an execution for good (its target locks are released)."""
    from console.runbook.executor import Executor

    if not comment.strip():
        raise BadInput("--comment must say why the execution is aborted.")
    c, journal = session(ctx)
    _emit(Executor(journal, c.settings).abort(exec_id, comment), as_json)


@runbook_app.command(
    epilog="Examples:\n\n  backout runbook status\n\n  backout runbook status 8c1d2e --json"
)
def status(
    ctx: typer.Context,
    exec_id: Annotated[
        str | None, typer.Argument(metavar="[EXEC]", help="Execution id or prefix.")
    ] = None,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """An execution's status and each step's state (no EXEC: list executions)."""
    from console.runbook.report import describe, listing

    c, journal = session(ctx)
    if exec_id is None:
        rows = listing(journal)
        if as_json:
            print_json(rows)
            return
        for r in rows:
            typer.echo(
                f"{r['id']}  {r['status']:<18} {r['runbook']:<22} run {r['run']}  "
                f"step {r['current_step'] or '-'}"
            )
        if not rows:
            typer.echo("no runbook executions yet; `backout runbook start NAME --run RUN`")
        return
    info = describe(journal, c.settings, exec_id)
    if as_json:
        print_json(info)
        return
    typer.echo(
        f"execution {info['id']}: {info['runbook']} v{info['version']} for run "
        f"{info['run']}: {info['status']}"
        + (f" at step '{info['current_step']}'" if info["current_step"] else "")
        + (f" ({info['reason']})" if info.get("reason") else "")
    )
    typer.echo(
        f"  started by {info['requested_by']} at {info['started_at']}; runbook "
        f"sha256 {info['digest'][:16]}"
    )
    for s in info["steps"]:
        mark = ">" if s["id"] == info["current_step"] else " "
        who = f" by {s['by']}" if s["by"] else ""
        when = f" at {s['finished_at']}" if s["finished_at"] else ""
        typer.echo(f"  {mark} {s['id']:<18} {s['kind']:<9} {s['state']:<18}{who}{when}")
    for a in info["approvals"]:
        typer.echo(
            f"    {a['decision']:<8} {a['approver']:<12} {a['state']:<8} plan "
            f"{a['plan_digest'][:12]}  {a['comment'] or ''}"
        )


# --- approvals --------------------------------------------------------------------------


def _print_plan(plan: dict[str, Any]) -> None:
    from console.runbook.service import plan_lines

    for line in plan_lines(plan):
        typer.echo(f"  {line}")


@app.command(
    epilog="Examples:\n\n  backout approve 8c1d2e --comment 'plan checked'\n\n"
    "  backout approve 8c1d2e --digest 4be1c0 --json"
)
def approve(
    ctx: typer.Context,
    exec_id: Annotated[str, typer.Argument(metavar="EXEC", help="Execution id or prefix.")],
    comment: Annotated[str | None, typer.Option("--comment", help="Why you approve.")] = None,
    digest: Annotated[
        str | None,
        typer.Option("--digest", help="Refuse unless the plan still has this sha256 (prefix)."),
    ] = None,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Approve the pending step of an execution, bound to the exact plan shown.

    Exit 0 recorded; 4 refused (your own request, a second approval, no role, expired).
    """
    from console.runbook import service

    c, journal = session(ctx)
    outcome = service.decide(
        journal, c.settings, exec_id, approve=True, comment=comment, expect_digest=digest
    )
    if not as_json:
        _print_plan(outcome.result.get("plan", {}))
    _emit(outcome, as_json)


@app.command(epilog="Examples:\n\n  backout deny 8c1d2e --comment 'conflicts need a DBA'")
def deny(
    ctx: typer.Context,
    exec_id: Annotated[str, typer.Argument(metavar="EXEC", help="Execution id or prefix.")],
    comment: Annotated[str, typer.Option("--comment", help="Why you deny (required).")],
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Deny the pending step of an execution; recorded, and the execution stops or branches."""
    from console.runbook import service

    if not comment.strip():
        raise BadInput("--comment must say why you deny.")
    c, journal = session(ctx)
    outcome = service.decide(journal, c.settings, exec_id, approve=False, comment=comment)
    _emit(outcome, as_json)


@app.command(epilog="Examples:\n\n  backout approvals --pending\n\n  backout approvals --json")
def approvals(
    ctx: typer.Context,
    pending: Annotated[bool, typer.Option("--pending", help="Only requests waiting now.")] = False,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Approval requests: what each needs, the plan digest, who approved or denied."""
    from console.runbook.approvals import Approvals

    c, journal = session(ctx)
    rows = Approvals(journal, c.settings).listing(pending_only=pending)
    if as_json:
        print_json(rows)
        return
    for r in rows:
        need = r["requirement"] or {}
        typer.echo(
            f"{r['exec']}  {r['runbook']} run {r['run']} step '{r['step']}': "
            f"{r['state']}; needs {need.get('quorum')} "
            f"(roles {', '.join(need.get('require_roles', [])) or '-'}), "
            f"expires {r['expires_at']}; plan {str(r['plan_digest'])[:16]}"
        )
        for d in r["decisions"]:
            typer.echo(
                f"    {d['decision']:<8} by {d['approver']:<12} {d['state']:<8} "
                f"{d['comment'] or ''}"
            )
    if not rows:
        typer.echo("no approvals pending" if pending else "no approval requests yet")
