"""SIGKILL at seeded random moments: during an automatic ``on_error: rollback`` (then
``backout resume`` of the rollback run finishes it), and during a ``--workers 4`` apply on
PostgreSQL (then ``backout resume`` finishes the apply). Rows are checked one by one, and a
trigger proves that nothing was written twice."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.journal import Journal
from console.journal.verify import verify
from tests.conftest import drop_pg_database, make_pg_database
from tests.engine import test_kill as kill
from tests.engine.helpers import (
    backout,
    changeset_doc,
    dump,
    finish,
    make_items,
    write_changeset,
    write_counts,
)

ROWS, UPDATES = kill.ROWS, kill.UPDATES
BAD_ROW = 1101  # its update breaks the CHECK: rows 1..1100 are applied, then rolled back


def _points(seed: int, n: int, span: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0.0, span) for _ in range(n)]


# --- kill during the automatic rollback --------------------------------------------------


def _failing(tmp: Path) -> tuple[str, Path, list[tuple[Any, ...]]]:
    url = f"sqlite:///{tmp / 'target.db'}"
    make_items(url, ROWS)
    doc = changeset_doc(url, updates=UPDATES, segment_size=25, on_error="rollback")
    doc["steps"][0]["operations"][BAD_ROW - 1]["set"]["amount"] = "-1.00"
    return url, write_changeset(tmp / "cs.yaml", doc), dump(url)


def _rollback_started(journal: Path, proc: subprocess.Popen[bytes]) -> str | None:
    """Wait until the apply has started its automatic rollback; its id (None if the
    process ended first). Polls the journal file directly: opening a ``Journal`` each
    time is slower than the rollback's first segments."""
    while proc.poll() is None:
        if journal.exists():
            try:
                conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=0.05)
                try:
                    row = conn.execute("SELECT id FROM runs WHERE kind = 'rollback'").fetchone()
                finally:
                    conn.close()
            except sqlite3.OperationalError:  # schema not there yet, or a writer holds it
                row = None
            if row:
                return str(row[0])
        time.sleep(0.005)
    return None


@pytest.fixture(scope="module")
def rollback_span(tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long the automatic rollback takes, uninterrupted."""
    tmp = tmp_path_factory.mktemp("calibrate-rb")
    _url, cs, _ = _failing(tmp)
    proc = backout(tmp / "journal.db", "apply", str(cs))
    assert _rollback_started(tmp / "journal.db", proc)
    started = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err.decode()
    return time.monotonic() - started


def _kill_rollback(tmp: Path, seed: int, delay: float) -> None:
    url, cs, baseline = _failing(tmp)
    journal = tmp / "journal.db"
    proc = backout(journal, "apply", str(cs))
    rb_id = _rollback_started(journal, proc)
    assert rb_id, f"seed {seed}: the apply ended before rolling back"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    error = finish(journal, lambda: ["resume", rb_id])
    if error:
        pytest.fail(f"seed {seed}: the rollback could not finish: {error}")
    assert dump(url) == baseline, f"seed {seed} (kill after {delay:.3f}s): not at baseline"
    counts = write_counts(url)
    assert set(counts) == set(range(1, BAD_ROW)), f"seed {seed}: other rows touched"
    wrong = {k: n for k, n in counts.items() if n != 2}
    assert not wrong, f"seed {seed}: rows not written exactly twice (apply+revert): {wrong}"
    j = Journal(f"sqlite:///{journal}", actor="checker")
    rb = j.get_run(rb_id)
    assert rb.parent_run is not None and j.get_run(rb.parent_run).status == "rolled_back"
    assert j.count_events(rb.parent_run, ["rollback.triggered"]) == 1
    assert verify(j, remember=False).ok
    j.close()


@pytest.mark.parametrize("index", range(4))
def test_kill_during_automatic_rollback(index: int, tmp_path: Path, rollback_span: float) -> None:
    _kill_rollback(tmp_path, index, _points(20261127, 4, rollback_span)[index])


@pytest.mark.slow
@pytest.mark.parametrize("index", range(40))
def test_kill_during_automatic_rollback_many(
    index: int, tmp_path: Path, rollback_span: float
) -> None:
    _kill_rollback(tmp_path, index, _points(11, 40, rollback_span)[index])


# --- kill during a parallel apply (PostgreSQL): the apply kill test with --workers 4 ------


def _reference_doc(url: str) -> dict[str, Any]:
    return changeset_doc(
        url,
        updates=kill.UPDATES,
        inserts=kill.INSERTS,
        deletes=kill.DELETES,
        segment_size=25,
    )


@pytest.fixture
def pg_target() -> Iterator[str]:
    url = make_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="module")
def parallel_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], float]:
    """The target after an uninterrupted ``--workers 4`` apply, and how long it took."""
    tmp = tmp_path_factory.mktemp("calibrate-w4")
    url = make_pg_database()
    try:
        make_items(url, kill.ROWS)
        cs = write_changeset(tmp / "cs.yaml", _reference_doc(url))
        started = time.monotonic()
        proc = backout(tmp / "journal.db", "apply", str(cs), *WORKERS)
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()
        return dump(url), time.monotonic() - started
    finally:
        drop_pg_database(url)


WORKERS = ("--workers", "4")


@pytest.mark.parametrize("index", range(4))
def test_kill_parallel_apply_and_resume(
    index: int, tmp_path: Path, pg_target: str, parallel_reference: tuple[list[Any], float]
) -> None:
    expected, span = parallel_reference
    delay = _points(4242, 4, span)[index]
    kill.kill_apply_and_resume(tmp_path, index, delay, expected, pg_target, WORKERS)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(40))
def test_kill_parallel_apply_and_resume_many(
    index: int, tmp_path: Path, pg_target: str, parallel_reference: tuple[list[Any], float]
) -> None:
    expected, span = parallel_reference
    delay = _points(99, 40, span)[index]
    kill.kill_apply_and_resume(tmp_path, index, delay, expected, pg_target, WORKERS)
