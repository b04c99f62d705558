"""Crash safety: SIGKILL a real `backout apply` at seeded random moments, resume, and check
the target row by row and that no row was written twice (a trigger counts every write)."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from console.journal import Journal
from console.journal.verify import verify
from tests.engine.helpers import (
    backout,
    changeset_doc,
    dump,
    finish,
    make_items,
    write_changeset,
    write_counts,
)

ROWS = 1500
UPDATES = range(1, 1201)
INSERTS = range(5001, 5101)
DELETES = range(1301, 1401)


def _expected(url: str, tmp: Path) -> list[tuple[object, ...]]:
    """The target after an uninterrupted apply of the same change set."""
    ref = f"sqlite:///{tmp / 'ref.db'}"
    make_items(ref, ROWS)
    cs = write_changeset(
        tmp / "ref.yaml",
        changeset_doc(ref, updates=UPDATES, inserts=INSERTS, deletes=DELETES, segment_size=25),
    )
    proc = backout(tmp / "ref-journal.db", "apply", str(cs))
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return dump(ref)


def kill_apply_and_resume(
    tmp: Path,
    seed: int,
    delay: float,
    expected: list[tuple[object, ...]],
    url: str | None = None,
    apply_args: tuple[str, ...] = (),
) -> None:
    """Apply the change set to ``url`` (a fresh SQLite file by default) in a subprocess,
    SIGKILL it after ``delay``, resume until done, check every row and the write counts."""
    url = url or f"sqlite:///{tmp / 'target.db'}"
    make_items(url, ROWS)
    cs = write_changeset(
        tmp / "cs.yaml",
        changeset_doc(url, updates=UPDATES, inserts=INSERTS, deletes=DELETES, segment_size=25),
    )
    journal = tmp / "journal.db"
    proc = backout(journal, "apply", str(cs), *apply_args)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    j = Journal(f"sqlite:///{journal}", actor="checker")

    def next_args() -> list[str]:
        runs = j.runs(limit=5, drills=None)
        return ["resume", runs[0].id] if runs else ["apply", str(cs), *apply_args]

    error = finish(journal, next_args)
    if error:
        pytest.fail(f"seed {seed}: could not finish: {error}")
    assert dump(url) == expected, f"seed {seed} (kill after {delay:.3f}s): target differs"
    counts = write_counts(url)
    twice = {k: n for k, n in counts.items() if n != 1}
    assert not twice, f"seed {seed}: rows written more than once: {twice}"
    assert set(counts) == {*UPDATES, *INSERTS, *DELETES}
    run = j.runs(limit=1, drills=None)[0]
    assert run.status == "completed" and run.rows_applied == len(counts)
    report = verify(j, remember=False)
    assert report.ok, f"seed {seed}: {report.problem}"
    j.close()


def _kill_points(seed: int, n: int, span: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0.2, span) for _ in range(n)]


@pytest.fixture(scope="module")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple[object, ...]], float]:
    tmp = tmp_path_factory.mktemp("calibrate")
    started = time.monotonic()
    expected = _expected("", tmp)
    return expected, time.monotonic() - started


@pytest.mark.parametrize("index", range(20))
def test_kill_and_resume(index: int, tmp_path: Path, calibration: tuple[list, float]) -> None:
    expected, span = calibration
    delay = _kill_points(20261127, 20, span)[index]
    kill_apply_and_resume(tmp_path, index, delay, expected)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(200))
def test_kill_and_resume_many(index: int, tmp_path: Path, calibration: tuple[list, float]) -> None:
    expected, span = calibration
    delay = _kill_points(7, 200, span)[index]
    kill_apply_and_resume(tmp_path, index, delay, expected)
