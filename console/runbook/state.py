"""Reading executions back: the projection rows, the pinned runbook, the evidence so far."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from console.canonical import loads
from console.errors import BadInput, NotFound
from console.journal import Journal, parse_ts
from console.journal.models import RunbookExec, RunbookStep
from console.journal.store import T_APPROVALS, T_EXEC_STEPS, T_EXECS
from console.runbook.gate import Given
from console.runbook.loader import parse_text
from console.runbook.schema import Runbook

FINAL = ("completed", "escalated", "denied", "aborted")


def get_exec(conn: Connection, ref: str) -> RunbookExec:
    """An execution by id or unique id prefix."""
    rows = (
        conn.execute(select(T_EXECS).where(T_EXECS.c.id.startswith(ref, autoescape=True)).limit(2))
        .mappings()
        .all()
    )
    exact = [r for r in rows if r["id"] == ref]
    if exact:
        return RunbookExec(**exact[0])
    if not rows:
        raise NotFound(f"no runbook execution '{ref}'; `backout runbook status` lists them.")
    if len(rows) > 1:
        raise BadInput(f"execution id '{ref}' is ambiguous; type more characters.")
    return RunbookExec(**rows[0])


def list_execs(conn: Connection, *, limit: int = 100) -> list[RunbookExec]:
    rows = conn.execute(
        select(T_EXECS).order_by(T_EXECS.c.started_at.desc(), T_EXECS.c.id).limit(limit)
    ).mappings()
    return [RunbookExec(**r) for r in rows]


def open_execs(conn: Connection, run_id: str, runbook: str) -> list[str]:
    rows = conn.execute(
        select(T_EXECS.c.id, T_EXECS.c.status).where(
            T_EXECS.c.run_id == run_id, T_EXECS.c.runbook == runbook
        )
    ).all()
    return [r.id for r in rows if r.status not in FINAL]


def exec_steps(conn: Connection, exec_id: str) -> list[RunbookStep]:
    rows = conn.execute(
        select(T_EXEC_STEPS).where(T_EXEC_STEPS.c.exec_id == exec_id).order_by(T_EXEC_STEPS.c.idx)
    ).mappings()
    return [RunbookStep(**r) for r in rows]


def exec_step(conn: Connection, exec_id: str, step_id: str) -> RunbookStep:
    row = (
        conn.execute(
            select(T_EXEC_STEPS).where(
                T_EXEC_STEPS.c.exec_id == exec_id, T_EXEC_STEPS.c.step_id == step_id
            )
        )
        .mappings()
        .one()
    )
    return RunbookStep(**row)


def approvals(conn: Connection, exec_id: str, step_id: str | None = None) -> list[Given]:
    stmt = select(T_APPROVALS).where(T_APPROVALS.c.exec_id == exec_id)
    if step_id is not None:
        stmt = stmt.where(T_APPROVALS.c.step_id == step_id)
    out = []
    for r in conn.execute(stmt.order_by(T_APPROVALS.c.seq)).mappings():
        out.append(
            Given(
                int(r["seq"]),
                r["approver"],
                tuple(loads(r["roles"]) or ()),
                r["decision"],
                r["state"],
                r["plan_digest"],
                r["runbook_digest"],
                parse_ts(r["ts"]),
                r["comment"],
            )
        )
    return out


def approval_rows(conn: Connection, exec_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(T_APPROVALS).where(T_APPROVALS.c.exec_id == exec_id).order_by(T_APPROVALS.c.seq)
    ).mappings()
    return [dict(r) for r in rows]


def executors(conn: Connection, exec_id: str) -> tuple[str, ...]:
    """Everyone who executed a step of this execution."""
    rows = conn.execute(
        select(T_EXEC_STEPS.c.by)
        .where(T_EXEC_STEPS.c.exec_id == exec_id, T_EXEC_STEPS.c.by.is_not(None))
        .distinct()
    ).scalars()
    return tuple(sorted(str(r) for r in rows))


@dataclass(frozen=True)
class Pinned:
    runbook: Runbook
    started: dict[str, Any]  # the runbook.started payload
    started_seq: int


_PINNED: dict[tuple[str, str], Pinned] = {}


def pinned(journal: Journal, ex: RunbookExec) -> Pinned:
    """The runbook exactly as it was when the execution started (its content is journaled)."""
    key = (journal.journal_id, ex.id)
    if key in _PINNED:
        return _PINNED[key]
    for event in journal.events(ex.run_id, kinds=["runbook.started"], limit=10_000):
        if event.payload.get("exec") == ex.id:
            book = parse_text(event.payload["content"], event.payload.get("source", ex.runbook))
            if book.digest != ex.digest:
                raise BadInput(
                    f"execution {ex.id}: the journaled runbook does not match its "
                    "digest; run `backout journal verify`."
                )
            _PINNED[key] = Pinned(book, dict(event.payload), event.seq)
            return _PINNED[key]
    raise NotFound(f"execution {ex.id}: its runbook.started event is missing.")


def evidence(journal: Journal, ex: RunbookExec) -> list[dict[str, Any]]:
    """Every finished step's payload, oldest first (decisions read the latest findings)."""
    out = []
    for event in journal.events(ex.run_id, kinds=["runbook.step.finished"], limit=100_000):
        if event.payload.get("exec") == ex.id:
            out.append({**event.payload, "seq": event.seq, "ts": event.ts, "by": event.actor})
    return out


def ts(text: str | None) -> dt.datetime | None:
    return None if text is None else parse_ts(text)
