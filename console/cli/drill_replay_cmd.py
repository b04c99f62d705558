"""``backout drill replay RUN``: a recorded run replayed in a sandbox on a simulated clock."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from console.cli.app import drill_app
from console.cli.context import JSON_OPT, finish, get_ctx, print_json
from console.errors import BadInput, Exit

if TYPE_CHECKING:
    from console.journal import Journal


def _open_source(url: str, user: str) -> Journal:
    """The recorded journal, only to be read: never created (a missing SQLite file is bad
    input, not a new empty journal)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from console.journal import Journal
    from console.journal.db import resolve_url

    resolved = resolve_url(url)
    if resolved.startswith("sqlite"):
        path = make_url(resolved).database
        if not path or not Path(path).is_file():
            raise BadInput(f"journal {path or url} does not exist; check --journal.")
    try:
        return Journal(resolved, actor=user, create=False)
    except OperationalError:
        raise BadInput(f"{url} is not a backout journal; check --journal.") from None


@drill_app.command(
    "replay",
    epilog="Examples:\n\n  backout drill replay 3f2a9c --speed 20\n\n"
    "  backout drill replay 3f2a9c --dir ./gameday --expect baseline --headless --json\n\n"
    "  backout --journal ./gameday/journal.db runbook start rollback-batch --run 3f2a9c\n\n"
    "  backout drill score --dir ./gameday",
)
def replay(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Recorded run id (or a unique prefix).")],
    speed: Annotated[
        float, typer.Option("--speed", help="Recorded gaps between events are divided by X.")
    ] = 1.0,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Sandbox directory (else $XDG_DATA_HOME/backout/drills/<drill id>).",
            show_default=False,
        ),
    ] = None,
    expect: Annotated[
        str,
        typer.Option(
            "--expect",
            help="The right ending, scored by `drill score`: baseline (roll the run back to its "
            "baseline and verify), batch (keep the batch, reconciled clean) or review "
            "(escalate).",
        ),
    ] = "baseline",
    headless: Annotated[
        bool,
        typer.Option("--headless", help="Replay to the end without the console; print paths."),
    ] = False,
    as_json: Annotated[bool, JSON_OPT] = False,
) -> None:
    """Replay a recorded run in a sandbox on a simulated clock, in the console.

    The console shows it unfolding (space play/pause, +/- speed, left/right seek, home/end),
    and trainees work runbooks against the sandbox target. The recorded journal and target
    are only read, never written.

    Exit 0 replayed (headless); 2 bad --speed/--expect, an unknown run, a --dir that is not
    empty; 3 the sandbox could not follow the recording."""
    if not speed > 0:
        raise BadInput(f"--speed {speed}: give a positive factor, e.g. --speed 10.")
    from console.drill.replay import Recording, Replayer, build_sandbox
    from console.drill.scenarios import REPLAY_EXPECT

    if expect not in REPLAY_EXPECT:
        raise BadInput(f"--expect {expect}: give one of {', '.join(REPLAY_EXPECT)}.")

    c = get_ctx(ctx)
    source = _open_source(c.journal_url, c.user)
    try:
        recording = Recording.read(source, run)
    finally:
        source.close()
    sandbox = build_sandbox(recording, directory)
    replayer = Replayer(recording, sandbox, speed=speed, actor=c.user, expect=expect)
    if not headless:
        from console.tui.replay import run_replay

        run_replay(replayer, user=c.user, settings=c.settings)
        return
    started = time.monotonic()
    replayer.open()
    try:
        replayer.run_to_end()
    finally:
        replayer.close()
    summary = {
        **sandbox.as_dict(),
        "kind": "replay",
        "run_id": recording.run.id,
        "expect": expect,
        "source_journal": recording.source,
        "events": replayer.total,
        "speed": replayer.clock.speed,
        "diverged": replayer.diverged,
        "elapsed_s": round(time.monotonic() - started, 3),
    }
    if as_json:
        print_json(summary)
    else:
        typer.echo(
            f"drill {sandbox.drill_id}: run {recording.run.id} replayed ({replayer.total} events)"
        )
        typer.echo(f"journal  {sandbox.journal_url}")
        typer.echo(f"target   {sandbox.target_url}")
        typer.echo(f"score    backout drill score --dir {sandbox.root}")
    if replayer.diverged:
        # The sandbox did not hold a row as the run found it: it differs from the real
        # target after the run there, so say so (exit 3) rather than train on it silently.
        typer.echo(
            f"backout: {replayer.diverged} rows of the sandbox could not be written as the run "
            "wrote them (an in-doubt segment or an edit the journal never saw); the sandbox "
            "differs from the recorded target there.",
            err=True,
        )
        finish(Exit.REVIEW)
