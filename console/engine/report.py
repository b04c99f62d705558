"""What a run's execution returns to its caller (CLI, console, HTTP)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from console.errors import Exit

ProgressFn = Callable[[int, int], None]  # (done, total)


@dataclass
class RunReport:
    run_id: str | None
    status: str
    message: str
    exit_code: Exit
    dry_run: bool = False
    total: int = 0
    applied: int = 0
    failed: int = 0
    conflicts: int = 0
    skipped: int = 0
    elapsed_s: float = 0.0
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_run(
        cls,
        run: Any,
        *,
        run_id: str,
        status: str,
        message: str,
        exit_code: Exit,
        dry_run: bool,
        started: float,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> RunReport:
        """A report whose counts are ``run``'s projected counters (a journal ``Run`` row)."""
        return cls(
            run_id=run_id,
            status=status,
            message=message,
            exit_code=exit_code,
            dry_run=dry_run,
            total=run.rows_total,
            applied=run.rows_applied,
            failed=run.rows_failed,
            conflicts=run.rows_conflict,
            skipped=run.rows_skipped,
            elapsed_s=round(time.monotonic() - started, 3),
            reason=reason,
            extra=extra or {},
        )

    @classmethod
    def nothing_to_resume(cls, run: Any, why: str = "") -> RunReport:
        """A run that is not paused, failed or crashed: ``resume`` says so and does nothing."""
        return cls(
            run.id,
            run.status,
            f"run {run.id} is {run.status}{why}; nothing to resume.",
            Exit.DONE,
            total=run.rows_total,
            applied=run.rows_applied,
        )

    @property
    def rows_per_s(self) -> float:
        return round(self.applied / self.elapsed_s, 1) if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["exit_code"] = int(self.exit_code)
        data["rows_per_s"] = self.rows_per_s
        extra = data.pop("extra")
        data.update(extra)
        return data
