"""Reading the journal: init, runs, show, events, journal verify."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from console.cli.app import app, journal_app
from console.cli.context import JSON_OPT, finish, get_ctx, print_json, print_json_line
from console.errors import BadInput, Blocked, Exit, JournalTampered

if TYPE_CHECKING:
    from console.config import Settings
    from console.journal import Journal
    from console.journal.prune import KeepRule


@app.command(epilog="Examples:\n\n  backout init\n\n  backout --journal team.db init")
def init(ctx: typer.Context, as_json: Annotated[bool, JSON_OPT] = False) -> None:
    """Create or upgrade the journal schema (idempotent)."""
    c = get_ctx(ctx)
    j = c.journal
    seq, head = j.head()
    info = {"journal": j.display_url, "journal_id": j.journal_id, "events": seq, "head": head}
    if as_json:
        print_json(info)
    else:
        typer.echo(f"journal ready: {j.display_url} (id {j.journal_id}, {seq} events)")


@app.command(
    epilog="Examples:\n\n  backout runs\n\n  backout runs --status failed --status paused\n\n"
    "  backout runs --limit 5 --json"
)
def runs(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="Only runs with this status.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most N runs.")] = 50,
    drills: Annotated[bool, typer.Option("--drills", help="Show drill runs instead.")] = False,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """List runs, newest first."""
    from console.journal.summary import run_summary
    from console.status import RUN_STATUSES

    for s in status or []:
        if s not in RUN_STATUSES:
            from console.errors import BadInput

            raise BadInput(f"--status {s}: unknown status; use one of {', '.join(RUN_STATUSES)}.")
    j = get_ctx(ctx).journal
    rows = j.runs(status=status, limit=limit, drills=drills)
    if as_json:
        print_json([run_summary(r) for r in rows])
        return
    from rich.console import Console
    from rich.table import Table

    from console.status import STYLE, label

    table = Table(box=None, header_style="bold")
    for col in ("run", "status", "change set", "automation", "target", "created", "rows"):
        table.add_column(col)
    for r in rows:
        rows_text = f"{r.rows_applied}/{r.rows_total}"
        if r.rows_failed or r.rows_conflict:
            rows_text += f" ✗{r.rows_failed} ⚠{r.rows_conflict}"
        if r.rows_reverted:
            rows_text += f" ⟲{r.rows_reverted}"
        table.add_row(
            r.id,
            f"[{STYLE.get(r.status, '')}]{label(r.status)}[/]",
            f"{r.changeset} v{r.version}" + (" (dry run)" if r.dry_run else ""),
            r.automation or "",
            r.target,
            r.created_at[:19].replace("T", " "),
            rows_text,
        )
    if not rows:
        typer.echo("no runs yet in " + j.display_url)
        return
    Console().print(table)


@app.command(epilog="Examples:\n\n  backout show 3f2a9c\n\n  backout show 3f2a9c --json")
def show(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Show one run: status, counts, steps and segments."""
    from console.journal.summary import run_summary

    j = get_ctx(ctx).journal
    r = j.get_run(run)
    data = run_summary(r)
    data["steps"] = [
        {"step_no": s.step_no, "name": s.name, "table": s.tbl, "operations": s.operations}
        for s in j.steps(r.id)
    ]
    data["operations_by_status"] = j.operation_status_counts(r.id)
    data["events"] = j.count_events(r.id)
    if as_json:
        print_json(data)
        return
    from rich.console import Console

    from console.status import STYLE, label

    out = Console()
    out.print(f"[bold]run {r.id}[/]  [{STYLE.get(r.status, '')}]{label(r.status)}[/]")
    out.print(f"  change set  {r.changeset} v{r.version}  sha256 {r.digest[:16]}…")
    if r.automation:
        out.print(f"  automation  {r.automation}")
    out.print(f"  target      {r.target}")
    out.print(f"  by          {r.actor}   correlation {r.corr}")
    out.print(f"  created     {r.created_at}   finished {r.finished_at or '-'}")
    c = data["counts"]
    out.print(
        f"  rows        {c['applied']} applied of {c['total']}, {c['failed']} failed, "
        f"{c['conflicts']} conflicts, {c['reverted']} reverted, {c['skipped']} skipped"
    )
    if r.reason:
        out.print(f"  reason      {r.reason}")
    for s in data["steps"]:
        out.print(f"  step {s['step_no']}  {s['name']} on {s['table']} ({s['operations']} ops)")


@app.command(
    epilog="Examples:\n\n  backout events 3f2a9c\n\n  backout events 3f2a9c --kind 'segment.*'\n\n"
    "  backout events 3f2a9c --follow --json"
)
def events(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", "-k", help="Only this kind; a trailing * matches a prefix."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events (ctrl+c stops).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout.")] = False,
) -> None:
    """Print a run's events in order (JSON lines with --json)."""
    j = get_ctx(ctx).journal
    r = j.get_run(run)
    after = 0
    while True:
        page = j.events(r.id, after_seq=after, limit=1000, kinds=kind)
        for e in page:
            if as_json:
                print_json_line(e.as_dict())
            else:
                typer.echo(f"{e.seq:>8}  {e.ts}  {e.actor:<12} {e.kind:<20} {e.payload_text[:120]}")
            after = e.seq
        if len(page) == 1000:
            continue
        if not follow:
            return
        try:
            time.sleep(0.5)
        except KeyboardInterrupt:
            return


@journal_app.command(
    "verify",
    epilog="Examples:\n\n  backout journal verify\n\n"
    "  backout --journal team.db journal verify --json",
)
def journal_verify(
    ctx: typer.Context,
    as_json: Annotated[bool, JSON_OPT] = False,
    no_projections: Annotated[
        bool, typer.Option("--chain-only", help="Check the hash chain only (faster).")
    ] = False,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="Verify an exported evidence bundle offline (the journal is not opened).",
        ),
    ] = None,
) -> None:
    """Recompute the hash chain and projections; compare with the last trusted head.

    Exit 0 intact; exit 1 naming the first bad event and what is wrong.
    """
    if bundle is not None:
        _verify_bundle(bundle, as_json)
    from console.cli.progress import progress_bar
    from console.journal.verify import verify

    with progress_bar("verify", enabled=not as_json) as bar:
        report = verify(get_ctx(ctx).journal, projections=not no_projections, progress=bar)
    if as_json:
        print_json(report.as_dict())
    elif report.ok:
        typer.echo(
            f"journal intact: {report.events} events, head {report.head_hash[:16]}…"
            + (f", extends trusted event {report.trusted_seq}" if report.trusted_seq else "")
        )
        for note in report.notes:
            typer.echo(f"note: {note}")
    else:
        where = f" at event {report.first_bad_seq}" if report.first_bad_seq else ""
        typer.echo(f"backout: journal verification failed{where}: {report.problem}", err=True)
    finish(Exit.DONE if report.ok else Exit.FAILED)


def _verify_bundle(path: Path, as_json: bool) -> None:
    """``journal verify --bundle``: never touches the journal, so it works anywhere."""
    from console.export.verify import load_bundle, verify_bundle

    report = verify_bundle(load_bundle(path), str(path))
    if as_json:
        print_json(report.as_dict())
    elif report.ok:
        typer.echo(
            f"bundle intact: {report.rehashed} events of run {report.run} re-hash, "
            f"{report.links} links between consecutive events hold; {report.left_out} events "
            f"of the journal (up to head {report.head_seq}) were filtered out."
        )
        typer.echo(f"note: {report.note}")
    else:
        where = f" at event {report.first_bad_seq}" if report.first_bad_seq else ""
        typer.echo(f"backout: bundle verification failed{where}: {report.problem}", err=True)
    finish(Exit.DONE if report.ok else Exit.FAILED)


@journal_app.command(
    "prune",
    epilog="Examples:\n\n  backout journal prune --dry-run\n\n  backout journal prune --keep 90\n\n"
    "  backout journal prune --before 2026-01-01 --json",
)
def journal_prune(
    ctx: typer.Context,
    before: Annotated[
        str | None,
        typer.Option("--before", help="Prune events older than this UTC date or time."),
    ] = None,
    keep: Annotated[
        int | None, typer.Option("--keep", min=0, help="Keep the last DAYS days of payloads.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be pruned; write nothing.")
    ] = False,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Remove the payloads of finished runs' events past retention; the chain stays verifiable.

    The cut comes from --before, --keep or `\\[policy] retention` in backout.toml. Each pruned
    payload is replaced by its sha256; one journal.pruned event attests them, so `journal
    verify` still checks the whole chain. Runs not finished, runs with an open runbook
    execution and newer events are kept. Only the journal's owner role may prune.
    """
    from console.journal.prune import prune
    from console.journal.verify import verify

    c = get_ctx(ctx)
    cut, reason = _prune_cut(c.settings, before, keep, c.journal.clock())
    j = c.journal
    if not dry_run:
        _require_prune_role(c.settings, j)
        check = verify(j, projections=False, remember=False)
        if not check.ok:
            raise JournalTampered(
                f"the journal does not verify at event {check.first_bad_seq} ({check.problem}); "
                "nothing was pruned."
            )
    report = prune(
        j,
        cut,
        dry_run=dry_run,
        reason=reason,
        policy_version=c.settings.policy.version,
        policy_digest=c.settings.policy_digest(),
        keep=_environment_retention(c.settings, c.journal.clock()),
    )
    plan = report.plan
    if as_json:
        print_json(report.as_dict())
        return
    verb = "would prune" if dry_run else "pruned"
    if not plan.events:
        typer.echo(f"nothing to prune before {plan.before} ({reason}).")
    else:
        typer.echo(
            f"{verb} the payloads of {plan.events} events ({plan.bytes} bytes) of "
            f"{len(plan.runs)} runs before {plan.before} ({reason})"
            + (f"; checkpoint event {report.seq}" if report.seq else "")
            + "."
        )
    for kept in plan.kept:
        typer.echo(f"  kept run {kept['run']}: {kept['reason']}")


def _prune_cut(
    settings: Settings, before: str | None, keep: int | None, now: dt.datetime
) -> tuple[dt.datetime, str]:
    """The moment before which payloads go, and why (for the journal.pruned event)."""
    from console.config import parse_duration

    if before is not None and keep is not None:
        raise BadInput("give --before or --keep, not both.")
    if before is not None:
        try:
            moment = dt.datetime.fromisoformat(before.replace("Z", "+00:00"))
        except ValueError:
            raise BadInput(
                f"--before '{before}' is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS."
            ) from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        return moment, f"--before {before}"
    if keep is not None:
        return now - dt.timedelta(days=keep), f"--keep {keep} days"
    retention = settings.policy.retention
    if retention is None:
        where = settings.source or "backout.toml"
        raise BadInput(
            f'{where}: no [policy] retention; set retention = "90d" there, '
            "or pass --before or --keep."
        )
    return (
        now - parse_duration(retention),
        f"policy version {settings.policy.version} retention {retention}",
    )


def _environment_retention(settings: Settings, now: dt.datetime) -> KeepRule:
    """Keeps a run whose target's environment (``[policy.environments.X] retention``) keeps
    longer than the cut; unconfigured targets count as production."""
    from console.config import parse_duration
    from console.journal import format_ts
    from console.targets.resolve import environment_of

    def keep(_run: str, target: str, finished_at: str) -> str | None:
        env = environment_of(target, settings)
        rule = settings.policy.environment(env)
        if rule is None or rule.retention is None:
            return None
        if finished_at < format_ts(now - parse_duration(rule.retention)):
            return None
        return (
            f"inside {env}'s retention ({rule.retention}, policy version {settings.policy.version})"
        )

    return keep


# Who may prune a SQLite journal once the policy names roles (PostgreSQL: the owner role).
PRUNE_ROLE = "journal_admin"


def _require_prune_role(settings: Settings, journal: Journal) -> None:
    roles = settings.policy.roles
    if journal.dialect != "sqlite" or not roles:
        return
    if PRUNE_ROLE not in settings.policy.roles_of(journal.actor):
        raise Blocked(
            f"{journal.actor} may not prune: policy version {settings.policy.version} gives "
            f"journal prune to the {PRUNE_ROLE} role only ([policy.roles] {PRUNE_ROLE})."
        )
