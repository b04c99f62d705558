"""The Markdown incident report: what a person pastes into a postmortem.

Built from the evidence bundle's events (so the report and the bundle tell the same story),
plus the operations projection for the row-level "what changed" table.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from console.journal.store import Journal

TOP_ROWS = 20
TIMELINE_PER_KIND = 10
_CAPPED = {"op.conflict", "op.failed", "op.forced", "segment.failed", "guard.tripped"}
_TEXT_CAP = 160

# Events worth a line in the timeline (segment-level noise such as checkpoints is left out).
_TIMELINE = {
    "run.created",
    "run.started",
    "run.paused",
    "run.pause_requested",
    "run.resumed",
    "run.completed",
    "run.failed",
    "run.status",
    "segment.failed",
    "op.conflict",
    "op.failed",
    "op.forced",
    "guard.tripped",
    "rollback.planned",
    "reconcile.finished",
    "runbook.started",
    "runbook.finished",
    "runbook.step.failed",
    "approval.requested",
    "approval.granted",
    "approval.denied",
    "approval.expired",
    "gate.refused",
    "escalation",
    "annotation",
}


def _cell(value: Any) -> str:
    """One table cell: no pipes or newlines, capped so the table stays readable."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= _TEXT_CAP else text[: _TEXT_CAP - 1] + "…"


def _when(ts: str | None) -> str:
    return "-" if not ts else ts[:19].replace("T", " ") + " UTC"


def _payload(event: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(event["payload_text"])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _describe(kind: str, p: dict[str, Any]) -> str:
    """A short human line for one timeline event."""
    if kind == "run.created":
        what = p.get("kind", "apply")
        cs = f"{p.get('changeset')} v{p.get('version')}"
        return f"{what} run created: {cs}, {p.get('rows_total')} rows"
    if kind == "run.completed":
        return (
            f"completed: {p.get('applied')} applied, {p.get('failed')} failed, "
            f"{p.get('conflicts')} conflicts"
        )
    if kind in ("run.failed", "run.paused"):
        return f"{kind.split('.')[1]}: {p.get('reason') or '-'}"
    if kind == "run.resumed":
        doubt = p.get("in_doubt") or []
        return "resumed" + (f" (in-doubt segments {doubt})" if doubt else "")
    if kind == "run.status":
        return f"status → {p.get('status')}" + (f": {p['reason']}" if p.get("reason") else "")
    if kind == "segment.failed":
        return f"segment {p.get('seg_no')} failed (op {p.get('op_no')}): {p.get('error')}"
    if kind in ("op.conflict", "op.forced"):
        d = p.get("detail") or {}
        verb = "conflict" if kind == "op.conflict" else "conflict overwritten (forced)"
        return f"{verb} on op {p.get('op_no')} {d.get('table', '')} key {_cell(d.get('key'))}"
    if kind == "op.failed":
        return f"op {p.get('op_no')} failed: {(p.get('detail') or {}).get('error')}"
    if kind == "guard.tripped":
        return (
            f"guard tripped: {p.get('invariant') or p.get('reason')} "
            f"(expected {p.get('expected')}, got {p.get('actual')})"
        )
    if kind == "rollback.planned":
        return f"rollback planned: {p.get('items')} items, {p.get('conflicts')} conflicts"
    if kind == "reconcile.finished":
        counts = ", ".join(f"{k} {v}" for k, v in (p.get("counts") or {}).items()) or "clean"
        review = " — needs review" if p.get("needs_review") else ""
        return f"reconciled against {p.get('against')}: {counts}{review}"
    if kind == "runbook.started":
        return f"runbook {p.get('runbook')} v{p.get('version')} started (exec {p.get('exec')})"
    if kind == "runbook.finished":
        return f"runbook finished: {p.get('status')}" + (
            f" ({p['reason']})" if p.get("reason") else ""
        )
    if kind == "runbook.step.failed":
        return f"runbook step {p.get('step')} failed: {p.get('error')}"
    if kind == "approval.requested":
        return f"approval requested at step {p.get('step')} ({p.get('reason', 'first')})"
    if kind in ("approval.granted", "approval.denied"):
        comment = f": “{p['comment']}”" if p.get("comment") else ""
        return f"{kind.split('.')[1]} at step {p.get('step')}{comment}"
    if kind == "approval.expired":
        return f"approval expired at step {p.get('step')}"
    if kind == "gate.refused":
        return f"gate refused {p.get('action')}: {p.get('message')}"
    if kind == "escalation":
        return f"escalated: {p.get('message')} (page {', '.join(p.get('page') or [])})"
    if kind == "annotation":
        return f"note: {p.get('text')}"
    if kind == "run.started":
        return "started"
    if kind == "run.pause_requested":
        return f"pause requested by {p.get('by')}"
    return kind


def _rows_changed(op: Any) -> str:
    before = json.loads(op.before) if op.before else None
    after = json.loads(op.after) if op.after else None
    if isinstance(before, dict) and isinstance(after, dict):
        cols = [c for c in after if before.get(c) != after.get(c)]
        return "; ".join(f"{c}: {before.get(c)} → {after.get(c)}" for c in cols) or "no change"
    if after is not None:
        return f"(new) → {json.dumps(after, ensure_ascii=False)}"
    return f"{json.dumps(before, ensure_ascii=False)} → (deleted)"


def render_markdown(journal: Journal, bundle: dict[str, Any]) -> str:
    run = bundle["run"]
    related = bundle["related_runs"]
    events = bundle["events"]
    names = {run["id"]: "run", **{r["id"]: f"{r['kind']} {r['id']}" for r in related}}
    c = run["counts"]
    lines: list[str] = [
        f"# Incident report: run {run['id']} ({run['changeset']} v{run['version']})",
        "",
        "## Summary",
        "",
        f"- **Change set:** {run['changeset']} v{run['version']} (sha256 `{run['digest']}`)",
        f"- **Automation:** {run['automation'] or '-'}",
        f"- **Target:** {run['target']}",
        f"- **Who:** {run['actor']} (correlation `{run['corr']}`)",
        f"- **When:** created {_when(run['created_at'])}, started {_when(run['started_at'])}, "
        f"finished {_when(run['finished_at'])}",
        f"- **Status:** {run['status']}" + (f" — {run['reason']}" if run.get("reason") else ""),
        f"- **Rows:** {c['applied']} applied of {c['total']}, {c['failed']} failed, "
        f"{c['conflicts']} conflicts, {c['reverted']} reverted, {c['skipped']} skipped",
    ]
    if run.get("drill"):
        lines.append("- **Drill:** yes (not production)")
    if run.get("dry_run"):
        lines.append("- **Dry run:** nothing was written")
    for r in related:
        rc = r["counts"]
        lines.append(
            f"- **{r['kind'].capitalize()} {r['id']}:** {r['status']} by {r['actor']}, "
            f"{rc['reverted'] or rc['applied']} rows, {rc['conflicts']} conflicts, "
            f"finished {_when(r['finished_at'])}"
        )

    lines += [
        "",
        "## Timeline (UTC, oldest first)",
        "",
        "| time | who | run | event |",
        "|---|---|---|---|",
    ]
    # Row-level events (conflicts, failures) can number thousands: the first few of each kind
    # per run tell the story; the rest are counted, and the tables below give the totals.
    shown: Counter[tuple[str | None, str]] = Counter()
    for e in events:
        if e["kind"] not in _TIMELINE:
            continue
        slot = (e["run_id"], e["kind"])
        shown[slot] += 1
        if e["kind"] in _CAPPED and shown[slot] > TIMELINE_PER_KIND:
            continue
        p = _payload(e)
        lines.append(
            f"| {_when(e['ts'])[:-4]} | {_cell(e['actor'])} | "
            f"{names.get(e['run_id'] or '', '-')} | {_cell(_describe(e['kind'], p))} |"
        )
    for (rid, kind), n in shown.items():
        if kind in _CAPPED and n > TIMELINE_PER_KIND:
            lines.append(
                f"| … | | {names.get(rid or '', '-')} | {n - TIMELINE_PER_KIND} more {kind} |"
            )

    lines += ["", "## What changed", ""]
    by_op: Counter[tuple[str, str]] = Counter()
    top: list[Any] = []
    after = 0
    while True:
        page = journal.operations(run["id"], after_op=after, limit=2000)
        for op in page:
            by_op[(op.op, op.status)] += 1
            if len(top) < TOP_ROWS:
                top.append(op)
        if len(page) < 2000:
            break
        after = page[-1].op_no
    if by_op:
        lines += ["| op | status | rows |", "|---|---|---|"]
        lines += [f"| {o} | {s} | {n} |" for (o, s), n in sorted(by_op.items())]
        lines += [
            "",
            f"First {len(top)} of {sum(by_op.values())} rows (before → after):",
            "",
            "| # | table | op | key | status | change |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {op.op_no} | {op.tbl} | {op.op} | {_cell(op.key)} | {op.status} | "
            f"{_cell(_rows_changed(op))} |"
            for op in top
        ]
    else:
        lines.append("No operations were recorded.")

    lines += ["", "## Approvals and decisions", ""]
    decisions = [e for e in events if e["kind"].startswith(("approval.", "gate.refused"))]
    for e in decisions:
        lines.append(f"- {_when(e['ts'])} **{e['actor']}** {_describe(e['kind'], _payload(e))}")
    if not decisions:
        lines.append("No approvals were requested or decided for this run.")

    lines += ["", "## Rollback and reconciliation", ""]
    outcome = [
        e
        for e in events
        if e["kind"] in ("rollback.planned", "reconcile.finished")
        or (e["kind"] == "run.status" and _payload(e).get("final"))
    ]
    for e in outcome:
        lines.append(f"- {_when(e['ts'])} {_describe(e['kind'], _payload(e))}")
    if not outcome:
        lines.append("No rollback or reconciliation was recorded.")

    lines += ["", "## Open findings", ""]
    open_items: list[str] = []
    for rid in [run["id"], *(r["id"] for r in related)]:
        for status in ("conflict", "failed"):
            n = journal.count_operations(rid, [status])
            if n:
                label = "the run" if rid == run["id"] else names[rid]
                open_items.append(f"- {n} operation(s) in {status} on {label}")
    last_rec = [e for e in events if e["kind"] == "reconcile.finished"]
    if last_rec:
        p = _payload(last_rec[-1])
        for w in (p.get("worst") or [])[:TOP_ROWS] if p.get("needs_review") else []:
            where = f" key {_cell(w['key'])}" if w.get("key") else " (table-wide)"
            cols = f" columns {', '.join(w['columns'])}" if w.get("columns") else ""
            open_items.append(f"- {w.get('class')} in {w.get('table')}{where}{cols}")
    lines += open_items or ["None: no conflicts, failures or reconciliation findings open."]

    head = bundle["head"]
    flt = bundle["filtered"]
    lines += [
        "",
        "## Evidence",
        "",
        f"- Journal `{bundle['journal_id']}` head at export: event {head['seq']}, "
        f"hash `{head['hash']}`",
        f"- Evidence bundle digest: `{bundle['digest']}` ({flt['included']} events; "
        f"{flt['left_out']} other events filtered out)",
        f"- Exported {_when(bundle['exported_at'])} by {bundle['exported_by']}; verify with "
        "`backout export RUN --format json -o FILE` then `backout journal verify --bundle FILE`.",
        "",
    ]
    return "\n".join(lines)
