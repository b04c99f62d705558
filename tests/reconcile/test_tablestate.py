"""``collateral`` outside the change set's keys, from the whole-table baseline captured at
apply time: a small table copied whole (row-level findings), a large one summarised in
bucketed digests (the drifted buckets and their candidate rows). Real targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from console.changes import load_changeset
from console.changes.errors import ChangeSetInvalid
from console.config import ReconcileConfig, Settings
from console.engine.apply import Engine
from console.errors import Exit
from console.journal import Journal
from console.reconcile import tablestate
from console.reconcile.fixrun import fix_plan
from console.reconcile.service import ReconcileResult, reconcile_run
from tests.engine.helpers import changeset_doc, make_items, write_changeset

SMALL = Settings()
LARGE = Settings(reconcile=ReconcileConfig(full_baseline_rows=0, rows_per_bucket=4))
DOC: dict[str, Any] = {
    "updates": range(1, 11),
    "inserts": range(100, 103),
    "deletes": range(30, 32),
}


def _run(tmp_path: Path, url: str, settings: Settings) -> tuple[Journal, str]:
    make_items(url, 60)
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")
    cs = load_changeset(write_changeset(tmp_path / "cs.yaml", changeset_doc(url, **DOC)))
    report = Engine(j, settings).apply(cs)
    assert report.run_id
    return j, report.run_id


def _sql(url: str, *statements: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for s in statements:
            conn.execute(text(s))
    engine.dispose()


_DRIFT = (
    "UPDATE items SET note = 'by hand' WHERE id = 20",
    "DELETE FROM items WHERE id = 40",
    "INSERT INTO items (id, name, amount, note) VALUES (200, 'stray', 1.50, NULL)",
)


def _classes(res: ReconcileResult) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for f in res.findings:
        if f.key:
            out.setdefault(f.cls, set()).add(int(f.key[0]))
    return out


def test_small_table_is_copied_and_collateral_is_found_per_row(
    target_url: str, tmp_path: Path
) -> None:
    j, run_id = _run(tmp_path, target_url, SMALL)
    state = tablestate.recorded(j, run_id, "items")
    assert state is not None and state.mode == "rows" and state.rows == 60
    clean = reconcile_run(j, SMALL, run_id)
    assert clean.exit_code == Exit.DONE, clean.counts  # the change set's writes: no phantom
    _sql(target_url, *_DRIFT)
    res = reconcile_run(j, SMALL, run_id)
    assert res.exit_code == Exit.REVIEW
    assert _classes(res)["collateral"] == {20, 40, 200}
    by_key = {int(f.key[0]): f for f in res.findings if f.cls == "collateral"}
    assert by_key[20].columns == ["note"] and not by_key[20].in_scope
    assert by_key[40].actual is None and by_key[200].before is None
    # each out-of-band row explains its part of the aggregates: nothing left over
    assert "aggregate_mismatch" not in res.counts


def test_large_table_buckets_localise_collateral(target_url: str, tmp_path: Path) -> None:
    j, run_id = _run(tmp_path, target_url, LARGE)
    state = tablestate.recorded(j, run_id, "items")
    assert state is not None and state.mode == "buckets" and state.buckets == 15
    clean = reconcile_run(j, LARGE, run_id)
    assert "collateral" not in clean.counts, clean.counts
    assert clean.checked["rows_outside_scope"] == 60 - 10 - 2
    _sql(target_url, *_DRIFT)
    res = reconcile_run(j, LARGE, run_id)
    assert res.exit_code == Exit.REVIEW
    buckets = [f for f in res.findings if f.cls == "collateral" and not f.key]
    assert len(buckets) == res.counts["collateral"]  # no row-level collateral without a copy
    assert 1 <= len(buckets) <= 3
    candidates = {int(k[0]) for f in buckets for k in f.detail["candidates"]}
    assert {20, 200} <= candidates
    assert not candidates & set(range(1, 11))  # the change set's keys are never candidates
    moved = sum(f.actual["count"] - f.before["count"] for f in buckets if f.actual and f.before)
    assert moved == 0  # one row deleted, one inserted
    # a bucket cannot be fixed automatically: it goes to review with its candidates
    plan = fix_plan(j, LARGE, run_id)
    review = [r for t in plan.plans for r in t.review if r["class"] == "collateral"]
    assert len(review) == len(buckets) and all("candidates" in r for r in review)
    assert not any(op.key.get("id") in candidates for t in plan.plans for op in t.ops)
    # bucket findings carry no row images: the aggregates still report the amounts
    agg = [f for f in res.findings if f.cls == "aggregate_mismatch"]
    assert len(agg) == 1 and set(agg[0].columns) == {"amount", "id"}  # 40 out, 200 in


def test_refused_change_set_leaves_no_table_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    make_items(url, 20)
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}", actor="tester")
    doc = changeset_doc(url, inserts=range(5, 7))  # keys exist: refused by default
    with pytest.raises(ChangeSetInvalid):
        Engine(j, SMALL).apply(load_changeset(write_changeset(tmp_path / "cs.yaml", doc)))
    with j.read() as conn:
        n = conn.execute(text("SELECT count(*) FROM snapshots")).scalar_one()
    assert n == 0


def test_above_digest_max_rows_nothing_is_captured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    settings = Settings(reconcile=ReconcileConfig(full_baseline_rows=0, digest_max_rows=59))
    j, run_id = _run(tmp_path, url, settings)
    state = tablestate.recorded(j, run_id, "items")
    assert state is not None and state.mode == "none" and state.rows == 60
    _sql(url, *_DRIFT)
    res = reconcile_run(j, settings, run_id)
    assert "collateral" not in res.counts
    assert res.counts.get("aggregate_mismatch") == 1  # the aggregates still see it


def test_buckets_tell_null_from_empty_text(target_url: str, tmp_path: Path) -> None:
    j, run_id = _run(tmp_path, target_url, LARGE)
    _sql(target_url, "UPDATE items SET note = '' WHERE id = 14")  # was NULL, outside scope
    res = reconcile_run(j, LARGE, run_id)
    buckets = [f for f in res.findings if f.cls == "collateral" and not f.key]
    assert len(buckets) == 1 and [14] in buckets[0].detail["candidates"]


@pytest.mark.parametrize("value", ["", "plain", "Zoë – ü 🦆", "a\x1fb\x1f0", None])
def test_sqlite_bucket_hash_is_zlib_crc32_of_the_utf8_text(tmp_path: Path, value: Any) -> None:
    """Digests captured by earlier versions (a Python ``crc32(str(text).encode())``, NULL as
    0) must still compare equal: the C function on the cast text gives the same numbers."""
    import zlib

    import sqlalchemy as sa

    engine = create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    with engine.connect() as conn:
        tablestate._register(conn)
        hashed = tablestate._hash32("sqlite", sa.literal(value, sa.Text))
        got = conn.execute(sa.select(hashed)).scalar_one()
    engine.dispose()
    assert got == (0 if value is None else zlib.crc32(value.encode("utf-8")))
