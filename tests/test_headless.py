"""The headless core never imports Textual: only ``console.tui`` may.

Every module under ``console/`` except ``console.tui*`` (and ``console.__main__``, which runs the
CLI when imported) is imported in a fresh interpreter, then ``sys.modules`` is checked.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import console

PROGRAM = """
import importlib, json, sys
failed = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception as exc:  # reported below: a broken module is a failure too
        failed[name] = f"{type(exc).__name__}: {exc}"
textual = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
print(json.dumps({"failed": failed, "textual": textual}))
"""


def _core_modules() -> list[str]:
    """Walk the package on disk (pkgutil.iter_modules, without importing anything)."""
    names = ["console"]

    def walk(path: list[str], prefix: str) -> None:
        for info in pkgutil.iter_modules(path, prefix):
            if info.name in ("console.tui", "console.__main__"):
                continue
            names.append(info.name)
            if info.ispkg:
                walk([str(Path(path[0]) / info.name.rsplit(".", 1)[-1])], info.name + ".")

    walk(list(console.__path__), "console.")
    return sorted(names)


def test_the_walk_finds_the_core() -> None:
    modules = _core_modules()
    for expected in ("console.journal.store", "console.cli.app", "console.config"):
        assert expected in modules
    assert not [m for m in modules if m.startswith("console.tui")]


def test_core_modules_do_not_import_textual() -> None:
    modules = _core_modules()
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, json.dumps(modules)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}, report["failed"]
    assert report["textual"] == [], "a core module imported Textual: " + ", ".join(
        report["textual"]
    )


def test_the_check_would_notice_textual() -> None:
    """The same program reports Textual when a module does import it (the check is real)."""
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, json.dumps(["textual.app"])],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "textual" in report["textual"]
