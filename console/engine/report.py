"""What a run's execution returns to its caller (CLI, console, HTTP)."""

from __future__ import annotations

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
