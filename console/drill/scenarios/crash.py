"""An apply that dies mid-batch, for real: a child process runs the engine and is SIGKILLed
right after segment K reached the target and before its outcome was journaled, so the run is
left running with that segment in doubt, exactly as after an outage of the machine running
the batch. The trainee's own process is never touched.

``python -m console.drill.scenarios.crash JOURNAL DRILL ACTOR CHANGESET K [CONFIG]``
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from console.errors import BackoutError

_ROOT = Path(__file__).resolve().parents[3]


def apply_and_die(
    journal_url: str, drill: str, actor: str, changeset: Path, after: int, config: Path | None
) -> None:
    """Run the apply in a child process killed after ``after`` segments."""
    args = [journal_url, drill, actor, str(changeset), str(after), str(config or "")]
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "console.drill.scenarios.crash", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode != -signal.SIGKILL:
        raise BackoutError(
            f"the outage scenario's batch was not cut off (exit {done.returncode}): "
            f"{done.stderr.strip()[-400:]}"
        )


def _child(argv: list[str]) -> None:
    from console.changes import load_changeset
    from console.config import load_settings
    from console.engine.apply import Engine
    from console.journal.setup import open_journal

    journal_url, drill, actor, changeset, after, config = argv
    journal = open_journal(journal_url, actor, drill=drill)
    settings = load_settings(config or None)
    segments = 0

    def progress(_done: int, _total: int) -> None:
        nonlocal segments
        segments += 1
        if segments >= int(after):  # the segment is written; its outcome never will be
            os.kill(os.getpid(), signal.SIGKILL)

    Engine(journal, settings, progress=progress, drill=True).apply(load_changeset(changeset))


if __name__ == "__main__":
    _child(sys.argv[1:])
