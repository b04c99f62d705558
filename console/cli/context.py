"""What every command shares: settings, identity, the journal, and output helpers."""

from __future__ import annotations

import getpass
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from console.errors import BadInput, Exit

if TYPE_CHECKING:
    from console.config import Settings
    from console.journal import Journal


@dataclass
class Ctx:
    journal_arg: str | None = None
    user_arg: str | None = None
    config_path: Path | None = None
    log_json: str | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _journal: Journal | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from console.config import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def user(self) -> str:
        if self.user_arg:
            return self.user_arg
        if self.settings.identity.user:
            return self.settings.identity.user
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return os.environ.get("USER", "unknown")

    @property
    def journal_url(self) -> str:
        from console.paths import default_journal_url

        return self.journal_arg or self.settings.journal or default_journal_url()

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            # On PostgreSQL the authenticated role is the identity (the database refuses any
            # other actor); an --as that contradicts it is refused by the gate, journaled.
            self._journal = _opened(self.journal_url, self.user)
            note = Path(self._journal.url.removeprefix("sqlite:///")).with_name("replay.json")
            if self._journal.dialect == "sqlite" and note.is_file():
                # A replay sandbox's journal (drill/replay.py): every event names the drill.
                self._journal.drill = json.loads(note.read_text()).get("drill")
            if self.user_arg and self.user_arg != self._journal.actor:
                from console.runbook import gate

                request = gate.GateRequest(
                    "identity", "", self._journal.actor, claimed=self.user_arg
                )
                gate.check(self.settings, request, self._journal)
            if self.log_json:
                from console.journal.jsonlog import JsonLogSink

                try:
                    self._journal.sinks.append(JsonLogSink(self.log_json))
                except OSError as exc:
                    raise BadInput(
                        f"--log-json {self.log_json}: {exc.strerror or exc}; give a file in a "
                        "writable directory, or '-' for stderr."
                    ) from None
        return self._journal


def _opened(url: str, user: str) -> Journal:
    """The journal at ``url``; one sentence (exit 2) when it cannot be opened, whatever the
    reason: a directory, a file that is not a journal, a server that does not answer."""
    from sqlalchemy.exc import SQLAlchemyError

    from console.canonical import mask_url
    from console.journal.setup import open_journal

    try:
        return open_journal(url, actor=user)
    except (SQLAlchemyError, OSError) as exc:
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise BadInput(
            f"journal {mask_url(url)} cannot be opened ({first}); give a journal file or "
            "PostgreSQL URL with --journal, BACKOUT_JOURNAL or journal in backout.toml."
        ) from None


def get_ctx(ctx: typer.Context) -> Ctx:
    obj = ctx.find_root().obj
    assert isinstance(obj, Ctx)
    return obj


def _json_default(value: object) -> Any:
    from console.canonical import jsonable

    return jsonable(value)


_json_printed = False


def print_json(value: object) -> None:
    """One JSON document on stdout (and nothing else there)."""
    global _json_printed
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default))
    sys.stdout.write("\n")
    _json_printed = True


def json_error(message: str, code: int) -> None:
    """A command run with --json that fails still gives scripts one JSON document (unless it
    printed its own, with more detail): ``{"error": ..., "exit_code": ...}``, as on stderr."""
    if not _json_printed:  # one line: a JSON document, and a JSON line for the streams
        print_json_line({"error": message, "exit_code": code})


def print_json_line(value: object) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=_json_default) + "\n")
    sys.stdout.flush()


def finish(code: Exit | int) -> NoReturn:
    raise typer.Exit(int(code))


JSON_OPT = typer.Option("--json", help="Print one JSON document on stdout, nothing else.")
