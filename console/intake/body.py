"""A request body made into a change-set file under the data dir, so the engine's
``source_file`` (and ``backout resume``) finds it again; named by content digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.changes import ChangeSetInvalid, load_changeset
from console.changes.model import ChangeSet

SUFFIX = {
    "application/json": ".json",
    "text/json": ".json",
    "text/csv": ".csv",
    "application/csv": ".csv",
    "application/yaml": ".yaml",
    "application/x-yaml": ".yaml",
    "text/yaml": ".yaml",
}
SHOWN_AS = "request body"


@dataclass
class Loaded:
    changeset: ChangeSet
    path: Path
    args: dict[str, Any] = field(default_factory=dict)  # loader arguments, for resume
    fresh: bool = False  # this request wrote the file: remove it if no run comes of it

    def discard(self) -> None:
        if self.fresh:
            self.path.unlink(missing_ok=True)


class BodyInvalid(Exception):
    """The change set is invalid: the CLI's message and problems, naming the body."""

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


def suffix_for(content_type: str | None) -> str | None:
    media = (content_type or "application/json").split(";")[0].strip().lower()
    return SUFFIX.get(media)


def load(data: bytes, suffix: str, directory: Path, args: dict[str, Any]) -> Loaded:
    """Store ``data`` and load it exactly as ``backout apply`` would; on a bad change set the
    file is removed again (nothing written) and ``BodyInvalid`` raised."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{hashlib.sha256(data).hexdigest()}{suffix}"
    fresh = not path.exists()
    if fresh:
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    try:
        cs = load_changeset(path, **args)
    except ChangeSetInvalid as exc:
        if fresh:
            path.unlink(missing_ok=True)
        raise invalid(exc, path) from None
    return Loaded(cs, path, args, fresh)


def invalid(exc: ChangeSetInvalid, path: Path | str) -> BodyInvalid:
    """The CLI's problems with the server-side file name replaced by ``request body``."""
    where = str(path)
    problems = []
    for p in exc.problems:
        d = p.as_dict()
        if d.get("file") == where:
            d["file"] = SHOWN_AS
        problems.append(d)
    return BodyInvalid(exc.message.replace(where, SHOWN_AS), problems)
