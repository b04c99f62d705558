"""Journal access for the console's thread workers (headless, no Textual).

Lists are virtual: a ``PagedSource`` counts its rows and fetches one page of ``PAGE_SIZE``
rows at a time, by keyset from a neighbouring page when one is cached, else from an anchor
found by offset over the key columns only, counted from whichever end is nearer (so the last
page of a million events is as cheap as the first). Nothing here loads a whole run.

Every function here blocks: call it from a thread worker, never from the event loop.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    func,
    literal_column,
    not_,
    or_,
    select,
    tuple_,
)
from sqlalchemy.engine import RowMapping

from console.config import Settings
from console.journal import Journal
from console.journal.models import OperationRow
from console.journal.store import T_CHECKPOINTS, T_EVENTS, T_OPS, T_RUNS, T_SEGMENTS, T_STEPS
from console.status import RUN_STATUSES
from console.tui import describe, fmt
from console.tui.filters import EMPTY, Filter, FilterError, match_prefix, parse, truthy

if TYPE_CHECKING:
    # Imported when used: DeepDiff alone costs 0.2 s of the console's start.
    from console.reconcile.report import Finding
    from console.reconcile.service import ReconcileResult

PAGE_SIZE = 256
R = TypeVar("R")
Key = tuple[Any, ...]

OP_STATUSES = (
    "pending",
    "applied",
    "failed",
    "conflict",
    "skipped",
    "reverted",
    "would_apply",
)


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as the console shows it (plain values: SQLModel objects cost ~1 ms each)."""

    id: str
    kind: str
    parent_run: str | None
    changeset: str
    version: int
    digest: str
    automation: str | None
    description: str | None
    target: str
    status: str
    corr: str
    actor: str
    drill: bool
    dry_run: bool
    created_at: str
    started_at: str | None
    finished_at: str | None
    rows_total: int
    rows_applied: int
    rows_failed: int
    rows_conflict: int
    rows_reverted: int
    rows_skipped: int
    drifted: bool
    last_seq: int
    reason: str | None


OpRow = OperationRow  # the journal's own row type: an operation as the lists show it


@dataclass(frozen=True, slots=True)
class StepRow:
    step_no: int
    name: str
    tbl: str


def _pick(cls: Any, values: Any) -> Any:
    """``cls`` (a dataclass or a named tuple) from the columns it knows (the journal may grow
    columns)."""
    get = values.__getitem__ if isinstance(values, RowMapping | dict) else values.__getattribute__
    names = getattr(cls, "_fields", None) or cls.__dataclass_fields__
    return cls(**{name: get(name) for name in names})


def run_row(values: Any) -> RunRow:
    row: RunRow = _pick(RunRow, values)
    return row


def op_row(values: Any) -> OpRow:
    row: OpRow = _pick(OpRow, values)
    return row


class PagedSource(Generic[R]):
    """Rows of one table, filtered and ordered by a unique key, fetched a page at a time."""

    def __init__(
        self,
        journal: Journal,
        base: Select[Any],
        order: Sequence[ColumnElement[Any]],
        *,
        descending: bool,
        row: Callable[[RowMapping], R],
        key: Callable[[R], Key],
        enrich: Callable[[list[R]], list[R]] | None = None,
    ) -> None:
        self.journal = journal
        self.enrich = enrich
        self.base = base
        self.order = list(order)
        self.descending = descending
        self.row = row
        self.key = key

    def _ordered(self, stmt: Select[Any], reverse: bool = False) -> Select[Any]:
        desc = self.descending != reverse
        return stmt.order_by(*(c.desc() if desc else c.asc() for c in self.order))

    def _beyond(self, key: Key, reverse: bool = False, inclusive: bool = False) -> Any:
        """Rows after ``key`` in list order (before it when ``reverse``)."""
        left = tuple_(*self.order) if len(self.order) > 1 else self.order[0]
        right = tuple_(*key) if len(self.order) > 1 else key[0]
        if self.descending == reverse:  # walking towards larger keys
            return left >= right if inclusive else left > right
        return left <= right if inclusive else left < right

    def count(self) -> int:
        stmt = select(func.count()).select_from(self.base.subquery())
        with self.journal.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def _fetch(self, stmt: Select[Any]) -> list[R]:
        with self.journal.read() as conn:
            rows = [self.row(r) for r in conn.execute(stmt).mappings().all()]
        return self.enrich(rows) if self.enrich is not None and rows else rows

    def _key_at(self, index: int, total: int) -> Key | None:
        """The key of row ``index``, counted from whichever end is nearer."""
        from_end = index >= total // 2
        offset = total - 1 - index if from_end else index
        stmt = self._ordered(self.base.with_only_columns(*self.order), reverse=from_end)
        with self.journal.read() as conn:
            found = conn.execute(stmt.offset(max(0, offset)).limit(1)).first()
        return tuple(found) if found is not None else None

    def page(self, page: int, total: int, prev_last: R | None, next_first: R | None) -> list[R]:
        """Rows ``page*PAGE_SIZE ...``; neighbours (if cached) make it a keyset read."""
        start = page * PAGE_SIZE
        size = max(0, min(PAGE_SIZE, total - start))
        if size == 0:
            return []
        if prev_last is not None:
            stmt = self._ordered(self.base.where(self._beyond(self.key(prev_last))))
            return self._fetch(stmt.limit(size))
        if next_first is not None:
            stmt = self._ordered(
                self.base.where(self._beyond(self.key(next_first), reverse=True)), reverse=True
            )
            return self._fetch(stmt.limit(size))[::-1]
        if start == 0:
            return self._fetch(self._ordered(self.base).limit(size))
        last = start + size - 1
        if last >= total // 2:  # nearer the end: anchor on the page's last row, read backwards
            anchor = self._key_at(last, total)
            if anchor is None:
                return []
            stmt = self._ordered(
                self.base.where(self._beyond(anchor, reverse=True, inclusive=True)), reverse=True
            )
            return self._fetch(stmt.limit(size))[::-1]
        anchor = self._key_at(start, total)
        if anchor is None:
            return []
        stmt = self._ordered(self.base.where(self._beyond(anchor, inclusive=True)))
        return self._fetch(stmt.limit(size))

    def index_of(self, key: Key) -> int:
        """How many rows come before ``key`` (to keep a selection across refreshes)."""
        stmt = select(func.count()).select_from(
            self.base.where(self._beyond(key, reverse=True)).subquery()
        )
        with self.journal.read() as conn:
            return int(conn.execute(stmt).scalar_one())


def _ilike_any(columns: Sequence[Any], word: str) -> Any:
    pattern = f"%{word}%"
    return or_(*(func.coalesce(c, "").ilike(pattern) for c in columns))


def _apply_terms(stmt: Select[Any], f: Filter, build: Callable[[str, tuple[str, ...]], Any]) -> Any:
    for term in f.terms:
        clause = build(term.field, term.values)
        stmt = stmt.where(not_(clause) if term.negate else clause)
    return stmt


# --- runs -----------------------------------------------------------------------------------

RUN_FIELDS = {
    "status": "status",
    "s": "status",
    "target": "target",
    "t": "target",
    "changeset": "changeset",
    "cs": "changeset",
    "automation": "automation",
    "auto": "automation",
    "actor": "actor",
    "by": "actor",
    "kind": "kind",
    "drill": "drill",
    "drift": "drift",
    "id": "id",
}

RUN_SORTS: dict[str, tuple[str, Callable[[], ColumnElement[Any]]]] = {
    "started": ("started", lambda: T_RUNS.c.created_at),
    "status": ("status", lambda: T_RUNS.c.status),
    "changeset": ("change set", lambda: T_RUNS.c.changeset),
    "target": ("target", lambda: T_RUNS.c.target),
    "problems": ("failed+conflicts", lambda: T_RUNS.c.rows_failed + T_RUNS.c.rows_conflict),
    "applied": ("rows applied", lambda: T_RUNS.c.rows_applied),
}
SORT_ORDER = tuple(RUN_SORTS)


def _run_term(field_: str, values: tuple[str, ...]) -> Any:
    c = T_RUNS.c
    if field_ == "status":
        return c.status.in_(match_prefix(values, RUN_STATUSES, "status"))
    if field_ in ("target", "changeset", "automation", "actor", "kind", "id"):
        return or_(*(_ilike_any([c[field_]], v) for v in values))
    if field_ == "drill":
        return c.drill == truthy(values[0])
    if field_ == "drift":
        return c.drifted == truthy(values[0])
    word = values[0]
    return _ilike_any(
        [c.id, c.changeset, c.automation, c.target, c.description, c.actor, c.status, c.reason],
        word,
    )


def parse_run_filter(text: str) -> Filter:
    return parse(text, RUN_FIELDS) if text.strip() else EMPTY


def run_source(
    journal: Journal,
    f: Filter = EMPTY,
    sort: str = "started",
    descending: bool = True,
    *,
    drills: bool = False,
) -> PagedSource[RunRow]:
    """Runs, filtered and sorted. Drill runs only when asked: ``drills`` (a drill's own
    journal) or a ``drill:`` term in the filter; real run lists never mix them in."""
    stmt = _apply_terms(select(T_RUNS), f, _run_term)
    if not drills and not any(t.field == "drill" for t in f.terms):
        stmt = stmt.where(T_RUNS.c.drill == False)  # noqa: E712 (SQL, not Python)
    column = RUN_SORTS[sort][1]()
    return PagedSource(
        journal,
        stmt,
        [column, T_RUNS.c.id],
        descending=descending,
        row=run_row,
        key=lambda run: (_sort_value(run, sort), run.id),
    )


def _sort_value(run: RunRow, sort: str) -> Any:
    if sort == "started":
        return run.created_at
    if sort == "problems":
        return run.rows_failed + run.rows_conflict
    if sort == "applied":
        return run.rows_applied
    return getattr(run, sort)


def run_key(run: RunRow, sort: str) -> Key:
    return (_sort_value(run, sort), run.id)


# --- operations -----------------------------------------------------------------------------

OP_FIELDS = {
    "status": "status",
    "s": "status",
    "op": "op",
    "table": "table",
    "step": "step",
    "seg": "seg",
    "segment": "seg",
    "key": "key",
}


def _op_term(field_: str, values: tuple[str, ...]) -> Any:
    c = T_OPS.c
    if field_ == "status":
        return c.status.in_(match_prefix(values, OP_STATUSES, "operation status"))
    if field_ == "op":
        return c.op.in_(match_prefix(values, ("insert", "update", "delete"), "operation"))
    if field_ == "table":
        return c.tbl.in_(values)
    if field_ in ("step", "seg"):
        col = c.step_no if field_ == "step" else c.seg_no
        try:
            return col.in_([int(v) for v in values])
        except ValueError:
            raise FilterError(f"{field_}: takes numbers, as in {field_}:3.") from None
    return or_(*(_ilike_any([c.key], v) for v in values))


def parse_op_filter(text: str) -> Filter:
    if not text.strip():
        return EMPTY
    f = parse(text, OP_FIELDS)
    # A bare status word (``conflict``, ``!applied``) is the common case: treat it as status.
    terms = tuple(
        type(t)("status", t.values, t.negate)
        if not t.field and t.values[0].lower() in OP_STATUSES
        else t
        for t in f.terms
    )
    return Filter(f.text, terms)


def op_source(journal: Journal, run_id: str, f: Filter = EMPTY) -> PagedSource[OpRow]:
    stmt = _apply_terms(select(T_OPS).where(T_OPS.c.run_id == run_id), f, _op_term)
    return PagedSource(
        journal,
        stmt,
        [T_OPS.c.op_no],
        descending=False,
        row=op_row,
        key=lambda op: (op.op_no,),
    )


# --- events ---------------------------------------------------------------------------------

EVENT_FIELDS = {"kind": "kind", "k": "kind", "actor": "actor", "by": "actor", "text": "text"}
_PREVIEW = 3000


@dataclass(frozen=True, slots=True)
class EventLine:
    """An event as a list shows it: payload summarised, never the whole of a big payload."""

    seq: int
    ts: str
    kind: str
    actor: str
    corr: str | None
    size: int
    summary: str


def _kinds_clause(values: Sequence[str]) -> Any:
    exact = [v for v in values if not v.endswith("*") and not v.endswith(".")]
    prefixes = [v.rstrip("*") for v in values if v.endswith(("*", "."))]
    clauses: list[Any] = [T_EVENTS.c.kind.in_(exact)] if exact else []
    # A bare family name (``segment``) means the whole family.
    clauses += [T_EVENTS.c.kind.startswith(v + ".", autoescape=True) for v in exact if "." not in v]
    clauses += [T_EVENTS.c.kind.startswith(p, autoescape=True) for p in prefixes]
    return or_(*clauses)


def _event_term(field_: str, values: tuple[str, ...]) -> Any:
    if field_ == "actor":
        return T_EVENTS.c.actor.in_(values)
    if field_ == "text":
        return or_(*(T_EVENTS.c.payload.contains(v, autoescape=True) for v in values))
    return _kinds_clause(values)  # kind: and bare words both filter by kind


def parse_event_filter(text: str) -> Filter:
    return parse(text, EVENT_FIELDS) if text.strip() else EMPTY


_INTENT_TAIL = re.compile(r'"seg_no":(\d+),"step_no":(\d+)\}$')


def _event_line(r: RowMapping) -> EventLine:
    size = int(r["size"])
    preview = str(r["preview"])
    if size <= _PREVIEW:
        payload = fmt.loads(preview)
        text = describe.summary(r["kind"], payload if isinstance(payload, dict) else {})
    elif r["kind"] == "segment.intent":
        # Canonical JSON sorts keys, so seg_no and step_no close the payload; the op range
        # is filled in from the segments projection (``_with_op_ranges``).
        m = _INTENT_TAIL.search(str(r["tail"]))
        where = f"seg {m.group(1)} step {m.group(2)}" if m else "segment"
        text = f"{where}: intent ({fmt.size(size)})"
    else:
        text = f"{fmt.compact(preview, 200)} ({fmt.size(size)})"
    return EventLine(r["seq"], r["ts"], r["kind"], r["actor"], r["corr"], size, text)


def event_source(
    journal: Journal,
    run_id: str | None,
    f: Filter = EMPTY,
    kinds: Sequence[str] | None = None,
) -> PagedSource[EventLine]:
    e = T_EVENTS.c
    stmt = select(
        e.seq,
        e.ts,
        e.kind,
        e.actor,
        e.corr,
        func.length(e.payload).label("size"),
        func.substr(e.payload, 1, _PREVIEW).label("preview"),
        func.substr(e.payload, func.length(e.payload) - 40, 41).label("tail"),
    )
    if run_id is not None:
        stmt = stmt.where(e.run_id == run_id)
    if kinds:
        stmt = stmt.where(_kinds_clause(kinds))
    stmt = _apply_terms(stmt, f, _event_term)
    return PagedSource(
        journal,
        stmt,
        [e.seq],
        descending=False,
        row=_event_line,
        key=lambda ev: (ev.seq,),
        enrich=lambda rows: _with_op_ranges(journal, run_id, rows),
    )


def _with_op_ranges(journal: Journal, run_id: str | None, rows: list[EventLine]) -> list[EventLine]:
    """Big ``segment.intent`` payloads are summarised from the segments projection."""
    big = [r.seq for r in rows if r.kind == "segment.intent" and r.size > _PREVIEW]
    if not big or run_id is None:
        return rows
    s = T_SEGMENTS.c
    with journal.read() as conn:
        found = {
            int(r.intent_seq): r
            for r in conn.execute(
                select(s.intent_seq, s.seg_no, s.step_no, s.first_op, s.last_op).where(
                    and_(s.run_id == run_id, s.intent_seq.in_(big))
                )
            )
        }
    out: list[EventLine] = []
    for line in rows:
        seg = found.get(line.seq)
        if seg is not None:
            n = seg.last_op - seg.first_op + 1
            text = (
                f"seg {seg.seg_no} step {seg.step_no}: intent, {n} ops "
                f"#{seg.first_op}–{seg.last_op} ({fmt.size(line.size)})"
            )
            out.append(dataclasses.replace(line, summary=text))
        else:
            out.append(line)
    return out


def full_event(journal: Journal, seq: int) -> dict[str, Any] | None:
    found = journal.events(after_seq=seq - 1, before_seq=seq + 1, limit=1)
    return found[0].as_dict() if found else None


# --- one run --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentSpan:
    seg_no: int
    step_no: int
    status: str
    start: float
    end: float | None
    first_op: int
    last_op: int


@dataclass(frozen=True, slots=True)
class Marker:
    seq: int
    at: float
    kind: str
    summary: str
    seg_no: int | None
    style: describe.MarkerStyle
    op_no: int | None = None


MARKER_CAP = 20_000


@dataclass
class RunBundle:
    """What the run screen needs up front: small, whatever the run's size."""

    run: RunRow
    steps: list[StepRow]
    segments: list[SegmentSpan]
    markers: list[Marker]
    markers_capped: bool
    op_counts: dict[str, int]
    events_total: int | None = None  # counted afterwards: a million rows take a while
    first_at: float | None = None
    last_at: float | None = None
    markers_pending: bool = False  # loaded without markers: ``with_markers`` follows


def _kind_queries(run_id: str) -> list[Select[Any]]:
    """One query per marker kind (or family), each on the kind index.

    ``run_id = ? AND kind IN (...)`` makes SQLite walk the run's index over every event of
    the run (a million for a big one) and read each row; by kind, it reads only the rows of
    those kinds. Checkpoints come from their projection (indexed by run).
    """
    e = T_EVENTS.c
    out: list[Select[Any]] = []
    for kind in describe.TIMELINE_KINDS:
        if kind == "checkpoint":
            continue
        if kind.endswith("*"):
            prefix = kind[:-1]
            cond = and_(e.kind >= prefix, e.kind < prefix[:-1] + chr(ord(prefix[-1]) + 1))
        else:
            cond = e.kind == kind
        # coalesce() keeps the planner off the run index, so it takes the kind index.
        stmt = select(e.seq, e.ts, e.kind, e.payload).where(
            cond, func.coalesce(e.run_id, "") == run_id
        )
        out.append(stmt.order_by(e.seq).limit(MARKER_CAP))
    c = T_CHECKPOINTS.c
    out.append(
        select(c.seq, c.ts, literal_column("'checkpoint'").label("kind"), c.payload)
        .where(c.run_id == run_id)
        .order_by(c.seq)
        .limit(MARKER_CAP)
    )
    return out


def load_markers(journal: Journal, run_id: str) -> tuple[list[Marker], bool]:
    rows: list[Any] = []
    with journal.read() as conn:
        for stmt in _kind_queries(run_id):
            rows.extend(conn.execute(stmt).all())
    rows.sort(key=lambda r: r.seq)
    capped = len(rows) > MARKER_CAP
    out: list[Marker] = []
    for seq, ts, kind, payload_text in rows[:MARKER_CAP]:
        payload = fmt.loads(payload_text)
        payload = payload if isinstance(payload, dict) else {}
        style = describe.marker(kind, payload)
        at = fmt.epoch(ts)
        if style is None or at is None:
            continue
        seg = payload.get("seg_no")
        op = payload.get("op_no")
        out.append(
            Marker(
                seq,
                at,
                kind,
                describe.summary(kind, payload),
                int(seg) if isinstance(seg, int) else None,
                style,
                int(op) if isinstance(op, int) else None,
            )
        )
    return out, capped


def load_run(journal: Journal, ref: str, *, markers: bool = True) -> RunBundle:
    """The run, its steps, segments and operation counts; its timeline markers unless
    ``markers`` is false (a query per kind: the first paint need not wait for them)."""
    run = run_row(journal.get_run(ref))
    s = T_SEGMENTS.c
    t = T_STEPS.c
    # Rows fetched whole (.all()), then converted: a thread that releases the GIL for each
    # row fetched and takes it straight back starves the event loop (the GIL's convoy
    # effect: the waiting thread never gets its forced switch).
    with journal.read() as conn:
        segment_rows = conn.execute(
            select(
                s.seg_no, s.step_no, s.status, s.started_at, s.finished_at, s.first_op, s.last_op
            )
            .where(s.run_id == run.id)
            .order_by(s.seg_no)
        ).all()
        step_rows = conn.execute(
            select(t.step_no, t.name, t.tbl).where(t.run_id == run.id).order_by(t.step_no)
        ).all()
    segments = [
        SegmentSpan(
            r.seg_no,
            r.step_no,
            r.status,
            fmt.epoch(r.started_at) or 0.0,
            fmt.epoch(r.finished_at),
            r.first_op,
            r.last_op,
        )
        for r in segment_rows
    ]
    steps = [StepRow(r.step_no, r.name, r.tbl) for r in step_rows]
    found, capped = load_markers(journal, run.id) if markers else ([], False)
    times = [m.at for m in found] + [s.start for s in segments]
    times += [s.end for s in segments if s.end is not None]
    for ts in (run.created_at, run.started_at, run.finished_at):
        if (moment := fmt.epoch(ts)) is not None:
            times.append(moment)
    return RunBundle(
        run=run,
        steps=steps,
        segments=segments,
        markers=found,
        markers_capped=capped,
        op_counts=journal.operation_status_counts(run.id),
        markers_pending=not markers,
        first_at=min(times, default=None),
        last_at=max(times, default=None),
    )


def with_markers(journal: Journal, bundle: RunBundle) -> RunBundle:
    """``bundle`` (loaded without markers) completed with its run's timeline markers."""
    found, capped = load_markers(journal, bundle.run.id)
    times = [m.at for m in found] + [t for t in (bundle.first_at, bundle.last_at) if t is not None]
    return dataclasses.replace(
        bundle,
        markers=found,
        markers_capped=capped,
        markers_pending=False,
        first_at=min(times, default=None),
        last_at=max(times, default=None),
    )


def run_changed(journal: Journal, run_id: str, last_seq: int) -> bool:
    """Whether anything happened to the run since ``last_seq`` (one indexed row)."""
    with journal.read() as conn:
        seq = conn.execute(select(T_RUNS.c.last_seq).where(T_RUNS.c.id == run_id)).scalar()
    return seq != last_seq


def count_events(journal: Journal, run_id: str) -> int:
    return journal.count_events(run_id)


# --- runbook executions (projections written by console/runbook) ---------------------------


@dataclass(frozen=True, slots=True)
class ExecStep:
    step_id: str
    kind: str
    state: str
    attempts: int
    by: str | None
    outcome: str | None
    plan_digest: str | None
    expires_at: str | None


@dataclass(frozen=True, slots=True)
class Given:
    approver: str
    decision: str  # approved | denied
    state: str  # given | void | expired
    roles: str
    comment: str | None
    step_id: str


@dataclass(frozen=True, slots=True)
class ExecView:
    id: str
    runbook: str
    version: int
    status: str
    current_step: str | None
    requested_by: str
    started_at: str
    reason: str | None
    steps: list[ExecStep]
    given: list[Given]


def runbook_execs(journal: Journal, run_id: str, limit: int = 5) -> list[ExecView]:
    """The run's runbook executions, newest first, with their steps and approvals."""
    from console.journal.store import T_APPROVALS, T_EXEC_STEPS, T_EXECS

    x, st, ap = T_EXECS.c, T_EXEC_STEPS.c, T_APPROVALS.c
    out: list[ExecView] = []
    with journal.read() as conn:
        execs = conn.execute(
            select(T_EXECS).where(x.run_id == run_id).order_by(x.started_at.desc()).limit(limit)
        ).all()
        for e in execs:
            steps = [
                ExecStep(
                    r.step_id,
                    r.kind,
                    r.state,
                    r.attempts,
                    r.by,
                    r.outcome,
                    r.plan_digest,
                    r.expires_at,
                )
                for r in conn.execute(
                    select(T_EXEC_STEPS).where(st.exec_id == e.id).order_by(st.idx)
                )
            ]
            given = [
                Given(r.approver, r.decision, r.state, r.roles, r.comment, r.step_id)
                for r in conn.execute(
                    select(T_APPROVALS).where(ap.exec_id == e.id).order_by(ap.seq)
                )
            ]
            out.append(
                ExecView(
                    e.id,
                    e.runbook,
                    e.version,
                    e.status,
                    e.current_step,
                    e.requested_by,
                    e.started_at,
                    e.reason,
                    steps,
                    given,
                )
            )
    return out


# --- reconciliation -------------------------------------------------------------------------


class ListSource(PagedSource[R]):
    """Rows already in memory (a reconciliation's findings) behind the paged interface, so
    the same Line API list shows them. Nothing to read: the journal is not used."""

    def __init__(self, rows: Sequence[R], key: Callable[[R], Key]) -> None:
        self.rows = list(rows)
        self.key = key

    def count(self) -> int:
        return len(self.rows)

    def page(self, page: int, total: int, prev_last: R | None, next_first: R | None) -> list[R]:
        start = page * PAGE_SIZE
        return self.rows[start : start + PAGE_SIZE]

    def index_of(self, key: Key) -> int:
        return next((i for i, r in enumerate(self.rows) if self.key(r) == key), 0)


@dataclass(frozen=True, slots=True)
class FindingRow:
    """One finding of a reconciliation, with its table (the list's row)."""

    index: int
    table: str
    finding: Finding


@dataclass(frozen=True)
class Reconciliation:
    """A reconciliation to show: the latest journaled one, or one computed in the console.

    ``complete``: every finding is listed (computed here); a journaled one keeps only the
    worst findings needing review (``reconcile.finished`` holds at most 20)."""

    against: str
    counts: dict[str, int]
    checked: dict[str, int]
    needs_review: bool
    findings: list[FindingRow]
    complete: bool
    seq: int | None = None  # the reconcile.finished event; None: not journaled
    ts: str | None = None
    actor: str | None = None
    result: ReconcileResult | None = None

    @classmethod
    def of_result(cls, result: ReconcileResult, seq: int | None) -> Reconciliation:
        rows = [(t.table, f) for t in result.tables for f in t.report.findings]
        rows.sort(key=lambda p: p[1].sort_key())
        return cls(
            result.against,
            result.counts,
            result.checked,
            result.needs_review,
            [FindingRow(i, t, f) for i, (t, f) in enumerate(rows)],
            complete=True,
            seq=seq,
            result=result,
        )


def _finding(d: dict[str, Any]) -> Finding:
    from console.reconcile.report import Finding

    return Finding(
        key=tuple(d.get("key") or ()),
        cls=str(d.get("class")),
        columns=list(d.get("columns") or []),
        before=d.get("before"),
        expected=d.get("expected"),
        actual=d.get("actual"),
        op_no=d.get("op_no"),
        in_scope=bool(d.get("in_scope", True)),
    )


def latest_reconciliation(journal: Journal, run_id: str) -> Reconciliation | None:
    """The run's latest ``reconcile.finished`` (a rollback's lives on the run it undid)."""
    run = journal.get_run(run_id)
    owner = run.parent_run if run.kind == "rollback" and run.parent_run else run.id
    events = journal.events(owner, kinds=["reconcile.finished"], limit=1, newest_first=True)
    if not events:
        return None
    from console.reconcile.report import SEVERITY  # in the worker: DeepDiff loads slowly

    e = events[0]
    p = e.payload
    counts = {str(k): int(v) for k, v in (p.get("counts") or {}).items()}
    worst = [_finding(d) for d in p.get("worst") or [] if isinstance(d, dict)]
    tables = [str(d.get("table") or "") for d in p.get("worst") or [] if isinstance(d, dict)]
    return Reconciliation(
        str(p.get("against") or ""),
        {c: counts[c] for c in (*SEVERITY, *counts) if c in counts},  # worst first
        {str(k): int(v) for k, v in (p.get("checked") or {}).items()},
        bool(p.get("needs_review")),
        [FindingRow(i, t, f) for i, (t, f) in enumerate(zip(tables, worst, strict=True))],
        complete=False,
        seq=e.seq,
        ts=e.ts,
        actor=e.actor,
    )


def reconcile(
    journal: Journal, settings: Settings | None, run_id: str, *, journaled: bool
) -> Reconciliation:
    """Reconcile the run now; ``journaled``: write the evidence as the CLI does."""
    from console.reconcile.service import compute, reconcile_run

    settings = settings or Settings()
    if not journaled:
        return Reconciliation.of_result(compute(journal, settings, run_id), None)
    result = reconcile_run(journal, settings, run_id)
    mine = journal.events(result.run_id, kinds=["reconcile.finished"], limit=1, newest_first=True)
    return Reconciliation.of_result(result, mine[0].seq if mine else None)


def explain(
    journal: Journal, settings: Settings | None, run_id: str, rec: Reconciliation, row: FindingRow
) -> dict[str, Any]:
    """The DeepDiff explanation of one finding (JSON). From the reconciliation in memory
    when there is one; else the service recomputes the run and explains that key."""
    from console.reconcile import Normalisers
    from console.reconcile.explain import explain as explain_one
    from console.reconcile.service import explain_finding

    f = row.finding
    if rec.result is not None:
        for t in rec.result.tables:
            if t.table == row.table:
                norms = Normalisers.parse(None, t.info, t.key_columns)
                mode = rec.result.against
                return {
                    "table": t.table,
                    **explain_one(f, t.info, normalisers=norms, mode=mode).as_dict(),
                }
    against = rec.against or None
    return explain_finding(
        journal,
        settings or Settings(),
        run_id,
        list(f.key),
        against=against,
        table=row.table,
        cls=f.cls,
    )
