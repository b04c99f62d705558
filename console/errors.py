"""Errors that reach the user: one sentence, one exit code (DESIGN.md "Contracts")."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    DONE = 0
    FAILED = 1
    BAD_INPUT = 2
    REVIEW = 3
    BLOCKED = 4


class BackoutError(Exception):
    """An expected failure with a message for the user and an exit code."""

    exit_code: Exit = Exit.FAILED

    def __init__(self, message: str, *, exit_code: Exit | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(BackoutError):
    """Bad input or usage: nothing was written (exit 2)."""

    exit_code = Exit.BAD_INPUT


class NeedsReview(BackoutError):
    """Conflicts or discrepancies that a human must look at (exit 3)."""

    exit_code = Exit.REVIEW


class Blocked(BackoutError):
    """Refused by a gate: approval missing, denied or expired; policy (exit 4)."""

    exit_code = Exit.BLOCKED


class JournalTampered(BackoutError):
    """The journal's chain or projections do not verify (exit 1)."""

    exit_code = Exit.FAILED


class TargetUnavailable(BadInput):
    """The target itself (its URL, file or server), not a table in it; ``field`` names where
    it was given (``--target``, ``target``) once known, for the message's location."""

    field: str | None = None


class NotFound(BadInput):
    """A run, execution or file named on the command line does not exist."""
