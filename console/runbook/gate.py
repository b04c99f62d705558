"""The gate: the one function that decides whether an action may execute now.

Every entry point (CLI, console, HTTP) asks ``check`` before an action that writes. A refusal
raises ``Blocked`` (exit 4) naming the rule and the policy version that refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.config import Settings
from console.errors import Blocked


@dataclass(frozen=True)
class GateRequest:
    action: str  # rollback | fix | resume | ...
    run_id: str
    actor: str
    via_runbook: str | None = None  # the runbook execution asking, if any
    target: str | None = None


def check(settings: Settings, request: GateRequest) -> None:
    """Raise ``Blocked`` when policy refuses ``request``; return when it may run now."""
    policy = settings.policy
    if (
        request.action == "rollback"
        and policy.rollback.require_runbook
        and request.via_runbook is None
    ):
        raise Blocked(
            f"policy v{policy.version} (policy.rollback.require_runbook) refuses a direct "
            f"rollback of run {request.run_id}; start the runbook with `backout runbook start "
            f"{policy.rollback.runbook} --run {request.run_id}`."
        )
