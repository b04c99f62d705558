"""Drill commands (registered on ``drill_app``): list the scenarios, start one in a sandbox,
score the trainee."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from console.cli.app import drill_app
from console.cli.context import JSON_OPT, finish, get_ctx, print_json
from console.errors import BadInput, Exit


@drill_app.command(
    "list", epilog="Examples:\n\n  backout drill list\n\n  backout drill list --json"
)
def list_scenarios(as_json: Annotated[bool, JSON_OPT] = False) -> None:
    """The failure scenarios: what each teaches and the runbook it is worked with."""
    from console.drill.scenarios import SCENARIOS

    if as_json:
        print_json([s.as_dict() for s in SCENARIOS])
        return
    for s in SCENARIOS:
        typer.echo(f"{s.id:<22} {s.title}  (runbook: {s.runbook})")
        typer.echo(f"{'':<22} {s.goal}")


@drill_app.command(
    epilog="Examples:\n\n  backout drill start outage-midway\n\n"
    "  backout drill start constraint-midway --seed 42 --dir ./drill-1 --json",
)
def start(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help="Scenario id (`backout drill list`).")],
    seed: Annotated[
        int | None, typer.Option("--seed", help="Same seed, same data, same failure point.")
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Sandbox directory (new or empty). Default: $XDG_DATA_HOME/backout/drills/ID.",
        ),
    ] = None,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Build a sandbox, run the scenario's batch until it goes wrong, print the trainee's start.

    The sandbox is a SQLite target made from the seed; the batch runs through the real engine.

    Every event of the drill is flagged with its id in the configured journal: the trainer
    sees them, real run lists do not. Commands on the drill's run are flagged by themselves.
    Exit 0 started; 2 unknown scenario or a --dir that is not empty.
    """
    from console.drill import service

    c = get_ctx(ctx)
    started = service.start(
        c.journal_url,
        c.settings,
        c.user,
        scenario,
        seed=seed,
        root=directory,
        config=c.config_path,
    )
    if as_json:
        print_json(started.as_dict())
        return
    s = started.scenario
    typer.echo(f"drill {started.drill_id}: {s.title} (seed {started.seed})")
    typer.echo(f"  {s.briefing}")
    typer.echo(f"  run:     {started.run_id}")
    typer.echo(f"  target:  {started.box.target_url}")
    typer.echo(f"  start:   {started.command}")
    typer.echo(f"  score:   backout drill score {started.drill_id}")


@drill_app.command(
    epilog="Examples:\n\n  backout drill score 3f2a9c\n\n"
    "  backout drill score replay-5e1d07 --json\n\n"
    "  backout drill score --dir ./gameday\n\n"
    "  backout --journal ./gameday/journal.db drill score replay-5e1d07",
)
def score(
    ctx: typer.Context,
    drill: Annotated[
        str | None,
        typer.Argument(
            help="The drill id (or unique prefix); optional with --dir.", show_default=False
        ),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="The drill's sandbox directory (as given to drill start/replay --dir)."
        ),
    ] = None,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Score a drill: time to detect and decide, approvals, wrong branches, final state.

    The final state is checked against the target rows and by reconciliation: a scenario's
    expected outcome, or for a replay the ending declared by `drill replay --expect`.

    A scenario drill is found in the configured journal; a replay drill in its sandbox
    journal (--dir, --journal SANDBOX/journal.db, or its id under the default directory).
    Each call recomputes and journals ``drill.scored`` where the drill is.
    Exit 0 the outcome matches; 3 it does not; 2 unknown drill.
    """
    from console.drill import score as scoring
    from console.drill.sandbox import Sandbox
    from console.drill.service import find, replay_sandbox
    from console.journal.setup import open_journal

    c = get_ctx(ctx)
    box = Sandbox.open(directory) if directory is not None else None
    if box is None and drill is None:
        raise BadInput("give the drill id, or its sandbox with --dir.")
    if box is None and c.journal_arg is None:
        box = replay_sandbox(str(drill))
    ref = box.drill_id if box else str(drill)
    if box is not None and box.is_replay:
        journal = open_journal(box.journal_url, c.user, drill=box.drill_id, create=False)
    else:
        journal = c.journal
    try:
        result = scoring.record(journal, c.settings, find(journal, ref))
    finally:
        if journal is not c.journal:
            journal.close()
    if as_json:
        print_json(result.as_dict())
    else:
        typer.echo(result.text())
    finish(Exit.DONE if result.matches else Exit.REVIEW)
