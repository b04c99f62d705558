"""A team journal on the real PostgreSQL server: roles get a unique prefix per test (roles are
cluster-wide) and are dropped afterwards, so parallel runs never collide."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from console.journal.setup import TeamRoles, drop_roles, grant, setup


@dataclass
class Team:
    url: str  # as the superuser that ran setup
    roles: TeamRoles
    operator: str
    approver: str
    auditor: str

    def url_as(self, user: str) -> str:
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{user}@{rest.split('@', 1)[1]}"


@pytest.fixture
def team(pg_url: str) -> Iterator[Team]:
    tag = uuid.uuid4().hex[:8]
    roles = TeamRoles(f"bt{tag}")
    users = {r: f"bt{tag}_{r[:2]}_user" for r in ("operator", "approver", "auditor")}
    try:
        setup(pg_url, roles)
        for role, user in users.items():
            grant(pg_url, user, role, roles)
        yield Team(pg_url, roles, users["operator"], users["approver"], users["auditor"])
    finally:
        drop_roles(pg_url, roles, list(users.values()))
