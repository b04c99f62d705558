"""The error a bad change set raises: every problem found, summarised in one sentence."""

from __future__ import annotations

from collections.abc import Sequence

from console.changes.model import Problem
from console.errors import BadInput

# Past this many problems the rest is noise: fix these first.
MAX_PROBLEMS = 100

# File content quoted in a message must not break the line or drive the terminal (C0 and
# C1 controls, and the Unicode line and paragraph separators).
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(32), *range(127, 160))} | {
    10: "\\n",
    13: "\\r",
    9: "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def summary(problems: Sequence[Problem]) -> str:
    """The first problem as one sentence, with a count of the others."""
    if not problems:
        return "the change set is invalid."
    text = str(problems[0]).translate(_CONTROL).rstrip(". ")
    more = len(problems) - 1
    return f"{text} (and {more} more)." if more else f"{text}."


class ChangeSetInvalid(BadInput):
    """A change set that cannot be loaded or applied as written (exit 2, nothing written)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(summary(self.problems))
