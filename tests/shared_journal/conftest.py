"""A team journal on the real PostgreSQL server: roles get a unique prefix per test (roles are
cluster-wide) and are dropped afterwards, so parallel runs never collide."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from console.journal.setup import TeamRoles, drop_roles, grant, setup


@dataclass
class Team:
    url: str  # as the superuser that ran setup
    roles: TeamRoles
    operator: str
    approver: str
    auditor: str
    extra_users: list[str] = field(default_factory=list)

    def add_user(self, role: str) -> str:
        """Another person in ``role``; dropped with the team."""
        user = f"{self.roles.prefix}_u{len(self.extra_users)}"
        self.extra_users.append(user)
        grant(self.url, user, role, self.roles)
        return user

    def url_as(self, user: str) -> str:
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{user}@{rest.split('@', 1)[1]}"


@pytest.fixture
def team(pg_url: str) -> Iterator[Team]:
    tag = uuid.uuid4().hex[:8]
    roles = TeamRoles(f"bt{tag}")
    users = {r: f"bt{tag}_{r[:2]}_user" for r in ("operator", "approver", "auditor")}
    team = Team(pg_url, roles, users["operator"], users["approver"], users["auditor"])
    try:
        setup(pg_url, roles)
        for role, user in users.items():
            grant(pg_url, user, role, roles)
        yield team
    finally:
        drop_roles(pg_url, roles, [*users.values(), *team.extra_users])
