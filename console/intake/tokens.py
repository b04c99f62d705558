"""Bearer tokens per automation: only the sha256 of a secret is stored; events record who
created and revoked which token (never the secret)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from console.errors import BadInput, NotFound
from console.intake.tables import TOKENS, ensure
from console.journal import Journal, format_ts

ROLES = ("automation",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$")


@dataclass(frozen=True)
class Token:
    name: str
    role: str
    owner: str | None
    created_at: str
    revoked_at: str | None = None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create(journal: Journal, name: str, role: str, owner: str | None) -> str:
    """A new token's secret (shown once); refuses a name in use, even a revoked one, so an
    actor name in the journal always means one token."""
    if not _NAME.match(name):
        raise BadInput(f"token name '{name}': use letters, digits and _ . : @ / - (max 128).")
    if role not in ROLES:
        raise BadInput(f"--role {role}: use one of {', '.join(ROLES)}.")
    ensure(journal.engine)
    secret = "bko_" + secrets.token_urlsafe(32)
    with journal.write() as w:
        if w.conn.execute(select(TOKENS.c.name).where(TOKENS.c.name == name)).first():
            raise BadInput(f"token '{name}' exists; revoke it and pick another name.")
        now = format_ts(journal.clock())
        w.conn.execute(
            insert(TOKENS).values(
                name=name, digest=digest(secret), role=role, owner=owner, created_at=now
            )
        )
        w.append("token.created", {"name": name, "role": role, "owner": owner})
    return secret


def revoke(journal: Journal, name: str) -> None:
    ensure(journal.engine)
    with journal.write() as w:
        row = w.conn.execute(select(TOKENS).where(TOKENS.c.name == name)).first()
        if row is None:
            raise NotFound(f"no token '{name}'; `backout token list` shows them.")
        if row.revoked_at is not None:
            return  # revoking twice changes nothing and records nothing
        now = format_ts(journal.clock())
        w.conn.execute(update(TOKENS).where(TOKENS.c.name == name).values(revoked_at=now))
        w.append("token.revoked", {"name": name})


def listing(journal: Journal) -> list[Token]:
    ensure(journal.engine)
    with journal.read() as conn:
        rows = conn.execute(select(TOKENS).order_by(TOKENS.c.name)).all()
    return [Token(r.name, r.role, r.owner, r.created_at, r.revoked_at) for r in rows]


def authenticate(journal: Journal, secret: str) -> Token | None:
    """The live token with this secret, else None (unknown and revoked look the same)."""
    with journal.read() as conn:
        row = conn.execute(select(TOKENS).where(TOKENS.c.digest == digest(secret))).first()
    if row is None or row.revoked_at is not None:
        return None
    return Token(row.name, row.role, row.owner, row.created_at, row.revoked_at)
