"""Helpers for the journal tests: a realistic generated journal, and an attacker with
file/superuser access who can edit what the application never edits."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import sqlite3
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine, text

from console.journal import Journal
from console.journal.chain import event_bytes, genesis_hash, next_hash

EVENT_COLUMNS = ("seq", "ts", "kind", "run_id", "corr", "actor", "payload", "hash")


def ticking_clock(start: dt.datetime | None = None, step_ms: int = 7) -> Callable[[], dt.datetime]:
    """A deterministic clock: every call is ``step_ms`` later than the previous one."""
    base = start or dt.datetime(2026, 11, 27, 2, 13, tzinfo=dt.UTC)
    counter = itertools.count()
    return lambda: base + dt.timedelta(milliseconds=step_ms * next(counter))


def _row(rng: random.Random, sku: str) -> dict[str, Any]:
    return {
        "sku": sku,
        "name": rng.choice(["Widget", "Gadget", "Schraube ß", "écrou", "螺丝", 'quote "q"']),
        "price": Decimal(rng.randint(1, 99_999)) / 100,
        "stock": rng.choice([None, 0, rng.randint(1, 500)]),
        "updated_at": dt.datetime(2026, 11, 1, 9, rng.randint(0, 59), tzinfo=dt.UTC),
    }


def generate_events(
    rng: random.Random, runs: int = 3, max_segments: int = 4
) -> Iterator[tuple[str, dict[str, Any], str | None, str | None]]:
    """Events of ``runs`` runs (apply runs, one rollback run), with every projected kind."""
    yield "journal.note", {"text": "generated journal"}, None, None
    apply_runs: list[tuple[str, list[int]]] = []
    for r in range(runs):
        run_id = f"run{r:03d}{rng.randrange(16**6):06x}"
        corr = f"corr-{r}"
        segments = rng.randint(1, max_segments)
        per_seg = rng.randint(1, 4)
        total = segments * per_seg
        yield (
            "run.created",
            {
                "kind": "apply",
                "changeset": f"cs-{r}",
                "version": rng.randint(1, 9),
                "digest": f"{rng.randrange(16**64):064x}",
                "automation": "n8n:workflow/42",
                "description": "Raise EU list prices by 5 % — überall",
                "target": "sqlite:///crm.db",
                "rows_total": total,
                "drill": r == 1,
                "steps": [
                    {
                        "step_no": 1,
                        "name": "raise-prices",
                        "table": "products",
                        "key": ["sku"],
                        "operations": total,
                    }
                ],
            },
            run_id,
            corr,
        )
        yield "run.started", {"pid": 4242, "host": "test"}, run_id, corr
        op_no = 0
        applied_ops: list[int] = []
        for seg_no in range(1, segments + 1):
            ops = []
            for _ in range(per_seg):
                op_no += 1
                sku = f"SKU-{r}-{op_no}"
                kind = rng.choice(["insert", "update", "delete"])
                before = None if kind == "insert" else _row(rng, sku)
                after = None if kind == "delete" else _row(rng, sku)
                inverse: dict[str, Any] = (
                    {"op": "delete"}
                    if kind == "insert"
                    else {"op": "insert", "row": before}
                    if kind == "delete"
                    else {"op": "update", "set": {"price": before["price"] if before else None}}
                )
                ops.append(
                    {
                        "op_no": op_no,
                        "table": "products",
                        "op": kind,
                        "key": {"sku": sku},
                        "before": before,
                        "after": after,
                        "inverse": inverse,
                        "idem": f"{run_id}:{op_no}",
                    }
                )
            yield "segment.intent", {"seg_no": seg_no, "step_no": 1, "ops": ops}, run_id, corr
            outcome = rng.random()
            numbers = [o["op_no"] for o in ops]
            if outcome < 0.15:
                yield (
                    "segment.failed",
                    {
                        "seg_no": seg_no,
                        "error": "CHECK failed",
                        "op_no": numbers[0],
                        "ops": numbers,
                    },
                    run_id,
                    corr,
                )
            else:
                conflicted = numbers[-1:] if outcome < 0.3 else []
                applied = [n for n in numbers if n not in conflicted]
                for n in conflicted:
                    yield (
                        "op.conflict",
                        {"op_no": n, "detail": {"table": "products", "now": {"price": "1.00"}}},
                        run_id,
                        corr,
                    )
                yield (
                    "segment.applied",
                    {"seg_no": seg_no, "applied": applied, "attempt": 1, "duration_ms": 2.5},
                    run_id,
                    corr,
                )
                applied_ops += applied
            yield "checkpoint", {"seg_no": seg_no, "op_no": op_no, "done": op_no}, run_id, corr
            if rng.random() < 0.5:
                progress = {"seg_no": seg_no, "done": op_no, "total": total}
                yield "run.progress", progress, run_id, corr
            if rng.random() < 0.3:
                yield "guard.passed", {"invariant": "no-negative", "seg_no": seg_no}, run_id, corr
            if rng.random() < 0.2:
                yield "run.paused", {"reason": "operator asked", "by": "alice"}, run_id, corr
                yield "run.resumed", {"by": "alice", "in_doubt": []}, run_id, corr
            if rng.random() < 0.2:
                yield "annotation", {"text": f"note {seg_no} ✓", "ref_seq": None}, run_id, corr
        if rng.random() < 0.3:
            yield "run.failed", {"reason": "circuit breaker"}, run_id, corr
        else:
            yield "run.completed", {"applied": len(applied_ops)}, run_id, corr
            apply_runs.append((run_id, applied_ops))
    # A rollback of the first completed run marks the parent's operations reverted.
    if apply_runs and apply_runs[0][1]:
        parent, ops_done = apply_runs[0]
        rb = f"rb{rng.randrange(16**6):06x}"
        yield (
            "run.created",
            {"kind": "rollback", "parent_run": parent, "rows_total": len(ops_done), "steps": []},
            rb,
            "corr-rb",
        )
        yield "run.status", {"status": "rolling_back", "final": False}, parent, "corr-rb"
        yield "run.started", {}, rb, "corr-rb"
        inverse_ops = [
            {
                "op_no": i + 1,
                "table": "products",
                "op": "update",
                "key": {"sku": f"x{n}"},
                "before": None,
                "after": None,
                "inverse": {"op": "update", "set": {}},
                "idem": f"{rb}:{i + 1}",
            }
            for i, n in enumerate(ops_done)
        ]
        yield "segment.intent", {"seg_no": 1, "step_no": 1, "ops": inverse_ops}, rb, "corr-rb"
        yield (
            "segment.applied",
            {
                "seg_no": 1,
                "applied": [o["op_no"] for o in inverse_ops],
                "counter": "rows_applied",
                "parent_run": parent,
                "reverted_ops": ops_done,
            },
            rb,
            "corr-rb",
        )
        yield "run.completed", {}, rb, "corr-rb"
        yield "run.status", {"status": "rolled_back", "final": True}, parent, "corr-rb"


def populate(
    journal: Journal, seed: int = 0, runs: int = 3, max_segments: int = 4
) -> list[tuple[str, dict[str, Any], str | None, str | None]]:
    """Append a generated journal in transactions of random size; returns what was appended."""
    rng = random.Random(seed)
    events = list(generate_events(rng, runs=runs, max_segments=max_segments))
    i = 0
    while i < len(events):
        size = rng.randint(1, 8)
        with journal.write() as w:
            for kind, payload, run_id, corr in events[i : i + size]:
                w.append(kind, payload, run_id=run_id, corr=corr)
        i += size
    return events


class Attacker:
    """Someone with the database file or a superuser login: bypasses the append-only triggers
    and edits rows directly. Statements use ``:name`` parameters on both databases."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            self.path = url.split("///", 1)[1]
            self.conn: Any = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.conn.execute("DROP TRIGGER IF EXISTS events_no_update")
            self.conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
        else:
            self.engine = create_engine(url, isolation_level="AUTOCOMMIT")
            self.conn = self.engine.connect()
            self.conn.execute(text("ALTER TABLE events DISABLE TRIGGER ALL"))

    def execute(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        if self.sqlite:
            cur = self.conn.execute(sql, params)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
        result = self.conn.execute(text(sql), params)
        return [tuple(r) for r in result.all()] if result.returns_rows else []

    def event(self, seq: int) -> dict[str, Any]:
        rows = self.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE seq = :seq", seq=seq
        )
        return dict(zip(EVENT_COLUMNS, rows[0], strict=True))

    def events(self) -> list[dict[str, Any]]:
        rows = self.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY seq")
        return [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in rows]

    def set_field(self, seq: int, column: str, value: Any) -> None:
        assert column in EVENT_COLUMNS
        self.execute(f"UPDATE events SET {column} = :v WHERE seq = :seq", v=value, seq=seq)

    def delete(self, seq: int) -> None:
        self.execute("DELETE FROM events WHERE seq = :seq", seq=seq)

    def insert(self, row: dict[str, Any]) -> None:
        self.insert_many([row])

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Put rows back in one statement (one transaction)."""
        if not rows:
            return
        cols = ", ".join(EVENT_COLUMNS)
        values = ", ".join(f":{c}" for c in EVENT_COLUMNS)
        sql = f"INSERT INTO events ({cols}) VALUES ({values})"
        if self.sqlite:
            self.conn.executemany(sql, rows)
        else:
            self.conn.execute(text(sql), rows)

    def delete_after(self, seq: int) -> list[dict[str, Any]]:
        """Remove every event after ``seq`` (one statement); returns what was removed."""
        removed = [e for e in self.events() if e["seq"] > seq]
        self.execute("DELETE FROM events WHERE seq > :seq", seq=seq)
        return removed

    def replace(self, seq: int, row: dict[str, Any]) -> None:
        """Overwrite every column but ``seq`` of event ``seq`` with ``row``'s."""
        sets = ", ".join(f"{c} = :{c}" for c in EVENT_COLUMNS if c != "seq")
        params = {c: row[c] for c in EVENT_COLUMNS if c != "seq"}
        self.execute(f"UPDATE events SET {sets} WHERE seq = :target", target=seq, **params)

    def head(self) -> tuple[int, str]:
        seq, h = self.execute("SELECT seq, hash FROM journal_head WHERE id = 1")[0]
        return int(seq), str(h)

    def set_head(self, seq: int, head_hash: str) -> None:
        self.execute("UPDATE journal_head SET seq = :s, hash = :h WHERE id = 1", s=seq, h=head_hash)

    def rechain(self, journal_id: str) -> str:
        """Recompute every hash from scratch (and the head): a forged but consistent chain."""
        prev = genesis_hash(journal_id)
        last = 0
        for ev in self.events():
            prev = next_hash(
                prev,
                event_bytes(
                    ev["seq"],
                    ev["ts"],
                    ev["kind"],
                    ev["run_id"],
                    ev["corr"],
                    ev["actor"],
                    ev["payload"],
                ),
            )
            self.set_field(ev["seq"], "hash", prev)
            last = ev["seq"]
        self.set_head(last, prev)
        return prev

    def close(self) -> None:
        self.conn.close()
        if not self.sqlite:
            self.engine.dispose()
