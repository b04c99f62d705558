"""SIGKILL a real `backout rollback` at seeded random moments; running the same rollback
again resumes it. The target must equal the baseline and no row may be reverted twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.journal import Journal
from console.journal.verify import verify
from tests.engine.helpers import changeset_doc, dump, make_items, write_changeset, write_counts

ROWS = 1500
RANGES = {"updates": range(1, 1201), "inserts": range(5001, 5101), "deletes": range(1301, 1401)}


def _backout(journal: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BACKOUT_USER": "oncall"}
    return subprocess.Popen(
        [sys.executable, "-m", "console", "--journal", str(journal), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _applied(tmp: Path) -> tuple[str, Path, str, list[tuple[object, ...]]]:
    url = f"sqlite:///{tmp / 'target.db'}"
    make_items(url, ROWS)
    baseline = dump(url)
    cs = write_changeset(tmp / "cs.yaml", changeset_doc(url, segment_size=25, **RANGES))
    journal = tmp / "journal.db"
    proc = _backout(journal, "apply", str(cs))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    run_id = Journal(f"sqlite:///{journal}").runs(limit=1)[0].id
    return url, journal, run_id, baseline


@pytest.fixture(scope="module")
def span(tmp_path_factory: pytest.TempPathFactory) -> float:
    tmp = tmp_path_factory.mktemp("calibrate")
    _, journal, run_id, _ = _applied(tmp)
    started = time.monotonic()
    proc = _backout(journal, "rollback", run_id)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return time.monotonic() - started


def _trial(tmp: Path, seed: int, delay: float) -> None:
    url, journal, run_id, baseline = _applied(tmp)
    proc = _backout(journal, "rollback", run_id)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    for _ in range(5):
        again = _backout(journal, "rollback", run_id)
        _, err = again.communicate(timeout=120)
        if again.returncode == 0:
            break
    else:
        pytest.fail(f"seed {seed}: rollback could not finish: {err.decode()}")
    assert dump(url) == baseline, f"seed {seed} (kill after {delay:.3f}s): not at baseline"
    counts = write_counts(url)
    wrong = {k: n for k, n in counts.items() if n != 2}
    assert not wrong, f"seed {seed}: rows not written exactly twice (apply+revert): {wrong}"
    j = Journal(f"sqlite:///{journal}")
    assert j.get_run(run_id).status == "rolled_back"
    assert verify(j, remember=False).ok


@pytest.mark.parametrize("index", range(20))
def test_kill_rollback_and_resume(index: int, tmp_path: Path, span: float) -> None:
    delay = random.Random(4242).sample(
        [random.Random(i).uniform(0.2, span) for i in range(20)], 20
    )[index]
    _trial(tmp_path, index, delay)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(100))
def test_kill_rollback_many(index: int, tmp_path: Path, span: float) -> None:
    _trial(tmp_path, index, random.Random(1000 + index).uniform(0.2, span))
