"""Start engine work in a worker thread and answer as soon as its run exists.

The run id is made inside the engine, so the caller waits for the ``run.created`` event
(seen through a journal sink) or for the work to end first (a validation error, a
duplicate): either way the HTTP answer comes before the first target write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from console.engine.report import RunReport
from console.errors import BackoutError
from console.journal import Journal, StoredEvent

log = logging.getLogger("backout.intake")

Work = Callable[[Journal], RunReport]


class StartTimeout(BackoutError):
    """The work neither created a run nor ended in time (it goes on in the background)."""


def created_run(event: StoredEvent) -> bool:
    return event.kind == "run.created"


def start(
    journal_url: str,
    actor: str,
    work: Work,
    *,
    until: Callable[[StoredEvent], bool] = created_run,
    wait_s: float = 300.0,
) -> str:
    """Run ``work`` in a thread with its own journal (actor ``actor``); answer with the run of
    the first event that satisfies ``until`` (a new run by default), or of the report when the
    work ends first. Errors before that event are raised here."""
    created = threading.Event()
    found: list[str] = []
    outcome: Future[RunReport] = Future()

    def sink(events: Sequence[StoredEvent]) -> None:
        for e in events:
            if e.run_id and not found and until(e):
                found.append(e.run_id)
                created.set()

    def body() -> None:
        journal = Journal(journal_url, actor=actor, create=False)
        journal.sinks.append(sink)
        try:
            outcome.set_result(work(journal))
        except BaseException as exc:
            outcome.set_exception(exc)
            if found:  # nobody waits for it any more: keep it in the server log
                log.error("background work on run %s failed: %s", found[0], exc)
        finally:
            journal.close()
            created.set()

    threading.Thread(target=body, name=f"backout-intake-{actor}", daemon=True).start()
    if not created.wait(wait_s):
        raise StartTimeout("the run did not start in time; check `GET /runs` for it.")
    if found:
        return found[0]
    report = outcome.result(timeout=0)
    if report.run_id is None:
        raise BackoutError(report.message)
    return report.run_id
