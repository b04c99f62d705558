"""Move a single-user SQLite journal into the team's PostgreSQL journal, rows and hashes as
they are (the journal id moves too, so the chain's genesis matches), then re-verify."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from console.errors import BadInput, JournalTampered
from console.journal import models
from console.journal.db import ensure_schema, make_engine, resolve_url
from console.journal.store import Journal
from console.journal.verify import VerifyReport, verify

_BATCH = 5_000


def _order(table: Any) -> list[Any]:
    return list(table.primary_key.columns)


def copy_journal(source: str, target: str) -> tuple[dict[str, int], VerifyReport]:
    """Copy every table; refuse a target that already holds events or projections."""
    src_url, dst_url = resolve_url(source), resolve_url(target)
    if not src_url.startswith("sqlite"):
        raise BadInput(
            f"--from must be a SQLite journal (a path or sqlite:/// URL), not '{source}'."
        )
    if not dst_url.startswith("postgresql"):
        raise BadInput(f"--to must be a postgresql:// URL, not '{target}'.")
    src = make_engine(src_url)
    dst = make_engine(dst_url)
    counts: dict[str, int] = {}
    try:
        with src.connect() as probe:
            has_meta = probe.execute(
                text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
            ).scalar()
        if not has_meta:
            raise BadInput(f"{source} is not a backout journal.")
        ensure_schema(dst)
        with src.connect() as probe:
            present = set(
                probe.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars()
            )
        # A journal made by an older backout lacks the newer tables (e.g. ``pruned_state``).
        tables = [t for t in map(models.table_of, models.ALL_MODELS) if t.name in present]
        with (
            src.connect().execution_options(backout_readonly=True) as sconn,
            sconn.begin(),
            dst.begin() as dconn,
        ):
            dconn.execute(text("SELECT pg_advisory_xact_lock(7262340001)"))
            for t in tables:
                if t.name in ("meta", "journal_head"):
                    continue
                if dconn.execute(select(func.count()).select_from(t)).scalar_one():
                    raise BadInput(
                        f"the target journal is not empty (table {t.name} has rows); "
                        "copy only into a fresh journal."
                    )
            # ensure_schema gave the target its own id and genesis head: take the source's.
            for t in tables:
                if t.name in ("meta", "journal_head"):
                    dconn.execute(t.delete())
            for t in tables:
                counts[t.name] = _copy_table(sconn, dconn, t)
            # Serial columns (snapshots.id) continue after the copied ids.
            for t in tables:
                seq = (
                    dconn.execute(
                        text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": t.name}
                    ).scalar()
                    if "id" in t.c and t.name != "journal_head"
                    else None
                )
                if seq:
                    dconn.execute(
                        text(
                            "SELECT setval(:s, (SELECT COALESCE(max(id), 0) + 1 "
                            f'FROM "{t.name}"), false)'
                        ),
                        {"s": seq},
                    )
    finally:
        src.dispose()
        dst.dispose()
    journal = Journal(target, create=False)
    try:
        report = verify(journal)
    finally:
        journal.close()
    if not report.ok:
        raise JournalTampered(
            f"the copy does not verify at event {report.first_bad_seq}: {report.problem}."
        )
    return counts, report


def _copy_table(sconn: Any, dconn: Any, table: Any) -> int:
    n = 0
    rows = sconn.execute(select(table).order_by(*_order(table))).mappings()
    while True:
        batch = [dict(r) for r in rows.fetchmany(_BATCH)]
        if not batch:
            return n
        dconn.execute(table.insert(), batch)
        n += len(batch)
