"""Every journal event as one JSON line, for log pipelines that never read the database."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from console.journal.store import StoredEvent


class JsonLogSink:
    """Writes committed events to a file (appending) or to stderr (``-``)."""

    def __init__(self, target: str) -> None:
        self._stream: TextIO = (
            sys.stderr if target == "-" else open(target, "a", encoding="utf-8")  # noqa: SIM115
        )

    def __call__(self, events: Sequence[StoredEvent]) -> None:
        for e in events:
            self._stream.write(
                json.dumps(
                    {
                        "ts": e.ts,
                        "seq": e.seq,
                        "kind": e.kind,
                        "run_id": e.run_id,
                        "corr": e.corr,
                        "actor": e.actor,
                        "payload": e.payload,
                        "logger": "backout.journal",
                    },
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
                + "\n"
            )
        self._stream.flush()
