"""The intake's own tables in the journal database. Every change to them is journaled in the
same transaction (``token.*``, ``intake.accepted``), so they are projections of events."""

from __future__ import annotations

from sqlalchemy import Column, Engine, MetaData, String, Table

META = MetaData()

TOKENS = Table(
    "intake_tokens",
    META,
    Column("name", String(128), primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),  # sha256 of the secret
    Column("role", String(32), nullable=False),
    Column("owner", String(128)),
    Column("created_at", String(40), nullable=False),
    Column("revoked_at", String(40)),
)

# Idempotency keys are scoped by token: one automation cannot replay another's key.
KEYS = Table(
    "intake_keys",
    META,
    Column("token", String(128), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", String(40), nullable=False),
)


def ensure(engine: Engine) -> None:
    META.create_all(engine, checkfirst=True)
