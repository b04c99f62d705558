"""Reconciliation of a journaled run: B from the baseline snapshot, E from the run's
operations, A read from the target now, classified by the core (``diff``/``sources``).

The result is journaled on the run as ``reconcile.finished`` (with the digests of the compared
states) and ``run.drift``. ``explain_finding`` computes the DeepDiff story of one row on demand
and writes nothing. Fix plans and their execution live in ``fixrun`` (re-exported here for the
runbook's ``fix`` provider).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from console.canonical import jsonable, loads
from console.config import Settings
from console.errors import BadInput, Exit, NotFound
from console.journal import Journal
from console.journal.models import Run
from console.reconcile import tablestate
from console.reconcile.fingerprint import key_text
from console.reconcile.normalise import Normalisers, merge_specs
from console.reconcile.report import SEVERITY, Finding, Mode, Report
from console.reconcile.scope import Change, Scope
from console.reconcile.sources import (
    check_group_aggregates,
    check_source_aggregates,
    reconcile_source,
)
from console.targets.resolve import open_target
from console.targets.sql import SqlTarget
from console.targets.types import Aggregates, KeyTuple, Row, TableInfo

MODES: tuple[Mode, ...] = ("expected", "baseline")
ROLLED_BACK = ("rolled_back", "rollback_partial")
WORST = 20
_PAGE = 1000
# Operations of a later run that count as a write by another writer.
_WRITTEN = ("applied",)


@dataclass
class TableResult:
    table: str
    key_columns: tuple[str, ...]
    info: TableInfo
    report: Report
    target_ref: str
    normalisers: Normalisers = field(default_factory=Normalisers)


@dataclass
class ReconcileResult:
    run_id: str
    against: Mode
    tables: list[TableResult]
    normalisers: Normalisers = field(default_factory=Normalisers)

    @property
    def findings(self) -> list[Finding]:
        out = [f for t in self.tables for f in t.report.findings]
        return sorted(out, key=Finding.sort_key)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(f.cls for f in self.findings)
        return {k: c[k] for k in SEVERITY if c[k]}

    @property
    def needs_review(self) -> bool:
        return any(f.needs_review for f in self.findings)

    @property
    def exit_code(self) -> Exit:
        return Exit.REVIEW if self.needs_review else Exit.DONE

    @property
    def checked(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for t in self.tables:
            total.update(t.report.summary.checked)
        return {**dict(total), "tables": len(self.tables)}

    @property
    def digests(self) -> dict[str, dict[str, str]]:
        return {t.table: dict(t.report.summary.digests) for t in self.tables}

    def worst(self, n: int = WORST) -> list[tuple[str, Finding]]:
        """Findings needing review, worst first, with their table."""
        pairs = [(t.table, f) for t in self.tables for f in t.report.findings if f.needs_review]
        return sorted(pairs, key=lambda p: p[1].sort_key())[:n]

    @property
    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "against": self.against,
            "counts": self.counts,
            "checked": self.checked,
            "digests": self.digests,
            "needs_review": self.needs_review,
            "worst": [{"table": t, **f.as_dict()} for t, f in self.worst()],
        }

    def text(self) -> str:
        """One human line: the Slack ``text`` and the CLI's headline."""
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items()) or "no findings"
        verdict = "needs review" if self.needs_review else "ok"
        keys = self.checked.get("keys_in_scope", 0)
        return (
            f"backout reconcile {self.run_id} against {self.against}: {verdict} "
            f"({counts}; {keys} keys checked in {len(self.tables)} table(s))"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary,
            "exit_code": int(self.exit_code),
            "findings": [
                {"table": t.table, **f.as_dict()} for t in self.tables for f in t.report.findings
            ],
        }


# --- reading the journal ----------------------------------------------------------------


def _created(journal: Journal, run_id: str) -> dict[str, Any]:
    events = journal.events(run_id, kinds=["run.created"], limit=1)
    return dict(events[0].payload) if events else {}


def _operations(journal: Journal, run_id: str) -> Iterator[Any]:
    after = 0
    while True:
        page = journal.operations(run_id, after_op=after, limit=_PAGE)
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].op_no


def _key(key_columns: tuple[str, ...], key: Any) -> KeyTuple:
    data = key if isinstance(key, Mapping) else {}
    return tuple(data.get(c) for c in key_columns)


def _row(text: str | None) -> Row | None:
    value = loads(text)
    return dict(value) if isinstance(value, Mapping) else None


@dataclass
class _Step:
    table: str
    key_columns: tuple[str, ...]
    target_ref: str
    step_nos: list[int] = field(default_factory=list)
    operations: dict[int, int] = field(default_factory=dict)  # step_no -> change set ops


def _steps(journal: Journal, run: Run, table: str | None) -> list[_Step]:
    """One entry per table (a table written by several steps is reconciled once)."""
    created = _created(journal, run.id)
    refs = {int(s.get("step_no", 0)): s for s in created.get("steps", [])}
    out: dict[str, _Step] = {}
    for s in journal.steps(run.id):
        if table is not None and s.tbl != table:
            continue
        spec = refs.get(s.step_no, {})
        ref = str(spec.get("target_ref") or spec.get("target") or s.target or run.target)
        keys = loads(s.key_columns)
        cols = tuple(str(c) for c in keys) if isinstance(keys, list) else ()
        entry = out.setdefault(s.tbl, _Step(s.tbl, cols, ref))
        entry.step_nos.append(s.step_no)
        entry.operations[s.step_no] = s.operations
    if table is not None and not out:
        names = sorted({s.tbl for s in journal.steps(run.id)})
        raise BadInput(
            f"--table {table}: run {run.id} did not write it; its tables are "
            f"{', '.join(names) or 'none'}."
        )
    return list(out.values())


def _scope(journal: Journal, run: Run, step: _Step) -> Scope:
    """B from the baseline snapshot (falling back to the operation's before-image), E from
    every operation the change set intended, whatever became of it."""
    changes: list[Change] = []
    journaled: Counter[int] = Counter()
    for o in _operations(journal, run.id):
        if o.tbl == step.table and o.step_no in step.step_nos:
            journaled[o.step_no] += 1
            key = _key(step.key_columns, loads(o.key))
            changes.append(Change(key, _row(o.before), _row(o.after), o.op_no))
    snap = {s.key_text: _row(s.row) for s in journal.snapshot_rows(run.id, "baseline", step.table)}
    if any(journaled[n] < step.operations.get(n, 0) for n in step.step_nos):
        changes.extend(_unjournaled(journal, run, step, journaled, snap))
    scope = Scope.from_changes(changes)
    for k in scope.touched:
        kt = key_text(k)
        if kt in snap:
            if scope.expected.get(k) is scope.baseline.get(k):
                scope.expected[k] = snap[kt]  # untouched in effect: E stays B
            scope.baseline[k] = snap[kt]
    return scope


def _unjournaled(
    journal: Journal,
    run: Run,
    step: _Step,
    journaled: Mapping[int, int],
    snap: Mapping[str, Row | None],
) -> list[Change]:
    """The operations a paused or failed run never reached, read from its change set file
    when that file is still the one the run applied (same digest); they are part of E."""
    from console.changes import load_changeset

    source = _created(journal, run.id).get("source_file")
    try:
        cs = load_changeset(str(source)) if source else None
    except Exception:  # moved, edited or unreadable: E covers the journaled operations only
        return []
    if cs is None or cs.digest != run.digest:
        return []
    out: list[Change] = []
    current: dict[str, Row | None] = {}
    for n, cs_step in enumerate(cs.steps, start=1):
        if n not in step.step_nos:
            continue
        for i, op in enumerate(cs_step.operations()):
            if i < journaled.get(n, 0):
                continue
            key = tuple(op.key.get(c) for c in step.key_columns)
            kt = key_text(key)
            before = current.get(kt, snap.get(kt))
            after: Row | None
            if op.op == "delete":
                after = None
            elif op.op == "insert" or before is None:
                after = dict(op.values)
            else:
                after = {**before, **dict(op.values)}
            current[kt] = after
            out.append(Change(key, before, after, None))
    return out


@dataclass(frozen=True)
class Declared:
    """What the run journaled with a table's baseline: its aggregates (captured before the
    first write) and the change set's ``reconcile`` section (``normalise``, ``group_by``)."""

    aggregates: Aggregates | None
    normalise: Mapping[str, Any]
    group_by: str | None
    groups: dict[tuple[Any, ...], Aggregates] | None = None  # per group_by value, at B

    @classmethod
    def read(cls, journal: Journal, run_id: str, table: str) -> Declared:
        payloads = tablestate.taken(journal, run_id, table)
        agg = next((p["aggregates"] for p in payloads if p.get("aggregates")), None)
        aggregates = _aggregates(agg) if agg else None
        specs = [dict(p.get("reconcile") or {}) for p in payloads]
        groups = [str(s["group_by"]) for s in specs if s.get("group_by")]
        normalise = merge_specs(*(s.get("normalise") for s in specs))
        captured = next(
            (p["group_aggregates"] for p in payloads if p.get("group_aggregates")), None
        )
        per_group = (
            {tuple(g): _aggregates(a) for g, a in captured} if captured is not None else None
        )
        return cls(aggregates, normalise, groups[-1] if groups else None, per_group)


def _aggregates(data: Mapping[str, Any]) -> Aggregates:
    return Aggregates(int(data.get("count", 0)), dict(data.get("sums") or {}))


def _later_keys(journal: Journal, run: Run, step: _Step) -> set[KeyTuple]:
    """Keys of this table written by runs created after this one, other than this run's own
    rollbacks and fixes (those are not other writers)."""
    later: set[KeyTuple] = set()
    for other in journal.runs(limit=100_000, drills=None):
        if other.id == run.id or other.created_at < run.created_at:
            continue
        if other.parent_run == run.id or other.dry_run:
            continue
        for o in _operations(journal, other.id):
            if o.tbl == step.table and o.status in _WRITTEN:
                later.add(_key(step.key_columns, loads(o.key)))
    return later


def resolve_run(journal: Journal, run_id: str, against: str | None) -> tuple[Run, Mode]:
    """The run to reconcile and the reference state. A rollback run stands for its parent,
    compared with the baseline."""
    run = journal.get_run(run_id)
    if run.kind == "rollback" and run.parent_run:
        run = journal.get_run(run.parent_run)
        against = against or "baseline"
    if against is None:
        against = "baseline" if run.status in ROLLED_BACK else "expected"
    if against not in MODES:
        raise BadInput(f"--against {against}: use expected or baseline.")
    return run, against


# --- reconciling ------------------------------------------------------------------------


class Targets:
    """Targets opened once per reference, closed together."""

    def __init__(self, settings: Settings, override: str | None = None) -> None:
        self.settings = settings
        self.override = override
        self._open: dict[str, SqlTarget] = {}

    def get(self, ref: str) -> SqlTarget:
        ref = self.override or ref
        if ref not in self._open:
            self._open[ref] = open_target(ref, self.settings)
        return self._open[ref]

    def close(self) -> None:
        for t in self._open.values():
            t.close()
        self._open.clear()


def table_normalisers(
    settings: Settings | None,
    declared: Declared,
    info: TableInfo,
    key: tuple[str, ...],
    explicit: Mapping[str, Any] | Normalisers | None,
) -> Normalisers:
    """The ONE set of normalisers for a table, used by every stage: ``backout.toml``'s
    ``[reconcile.normalise.TABLE]``, then the change set's (wins per column), then the
    caller's."""
    if isinstance(explicit, Normalisers):
        return explicit
    config = settings.reconcile.normalise.get(info.name) if settings is not None else None
    return Normalisers.parse(merge_specs(config, declared.normalise, explicit), info, key)


def reconcile_table(
    journal: Journal,
    run: Run,
    step: _Step,
    source: SqlTarget,
    mode: Mode,
    normalisers: Mapping[str, Any] | Normalisers | None = None,
    settings: Settings | None = None,
) -> TableResult:
    info = source.table(step.table)
    key = step.key_columns or tuple(info.primary_key)
    declared = Declared.read(journal, run.id, step.table)
    norms = table_normalisers(settings, declared, info, key, normalisers)
    scope = _scope(journal, run, step)
    later = _later_keys(journal, run, step)
    state = tablestate.recorded(journal, run.id, step.table)
    whole = state is not None and state.mode == "rows"  # a small table, copied whole
    baseline = (
        tablestate.merged_baseline(
            tablestate.baseline_rows(journal, run.id, step.table), scope.baseline
        )
        if whole
        else scope.baseline
    )
    report = reconcile_source(
        source,
        step.table,
        baseline,
        scope.expected,
        scope.touched,
        key_columns=key,
        mode=mode,
        normalisers=norms,
        later=later,
        scan=whole,
        full_baseline=whole,
    )
    if state is not None and state.mode == "buckets" and isinstance(source, SqlTarget):
        drifted, outside = tablestate.bucket_findings(
            journal, source, run.id, step.table, key, state
        )
        counted = {"buckets": state.buckets, "rows_outside_scope": outside}
        report = report.with_findings(drifted, counted, WORST)
    moved = _moved(report, key, scope, mode)
    extra: list[Finding] = []
    checked: dict[str, int] = {}
    if declared.aggregates is not None:
        extra += check_source_aggregates(
            source, step.table, declared.aggregates, moved, mode="expected", normalisers=norms
        )
        checked["aggregates"] = 1 + len(declared.aggregates.sums)
    if declared.group_by and declared.groups is not None:
        now = tablestate.group_aggregates(source, step.table, declared.group_by)
        extra += check_group_aggregates(
            info, declared.group_by, declared.groups, now, moved, normalisers=norms
        )
        checked["groups"] = len(set(declared.groups) | set(now))
    if checked:
        report = report.with_findings(extra, checked, WORST)
    return TableResult(step.table, key, info, report, step.target_ref, norms)


def _moved(
    report: Report, key: tuple[str, ...], scope: Scope, mode: Mode
) -> list[tuple[Row | None, Row | None]]:
    """(B, what the row became) per row that should count in the aggregates: a row-level
    finding already explains its part, so a mismatch left over is what no row explains."""
    actual = _actual_images(report, key)
    moved = [
        (
            scope.baseline.get(k),
            actual[key_text(k)]
            if key_text(k) in actual
            else scope.expected.get(k)
            if mode == "expected"
            else scope.baseline.get(k),
        )
        for k in scope.touched
    ]
    # rows outside the change set with a row-level finding explain their part too
    moved.extend((f.before, f.actual) for f in report.findings if not f.in_scope and f.key)
    return moved


def _actual_images(report: Report, key: tuple[str, ...]) -> dict[str, Row | None]:
    out: dict[str, Row | None] = {}
    for f in report.findings:
        if not f.key or f.cls in ("duplicate_key", "null_key", "aggregate_mismatch"):
            continue
        out[key_text(f.key)] = f.actual
    return out


def compute(
    journal: Journal,
    settings: Settings,
    run_id: str,
    against: str | None = None,
    *,
    table: str | None = None,
    target: str | None = None,
    normalisers: Mapping[str, Any] | None = None,
) -> ReconcileResult:
    """Reconcile without writing anything to the journal."""
    run, mode = resolve_run(journal, run_id, against)
    if run.dry_run:
        raise BadInput(f"run {run.id} was a dry run; it wrote nothing to reconcile.")
    steps = _steps(journal, run, table)
    targets = Targets(settings, target)
    try:
        tables = [
            reconcile_table(journal, run, s, targets.get(s.target_ref), mode, normalisers, settings)
            for s in steps
        ]
    finally:
        targets.close()
    return ReconcileResult(run.id, mode, tables)


def reconcile_run(
    journal: Journal,
    settings: Settings,
    run_id: str,
    against: str | None = None,
    *,
    table: str | None = None,
    target: str | None = None,
    normalisers: Mapping[str, Any] | None = None,
    notify: bool | None = None,
) -> ReconcileResult:
    """Reconcile a run and journal the evidence (``reconcile.finished``, ``run.drift``).

    ``notify``: send the summary to the configured channels (JSON log, webhook); None, the
    default, means "whichever ``[notify]`` configures", False skips them."""
    result = compute(
        journal, settings, run_id, against, table=table, target=target, normalisers=normalisers
    )
    run = journal.get_run(result.run_id)
    with journal.write() as w:
        w.append(
            "reconcile.finished",
            jsonable(
                {
                    "against": result.against,
                    "table": table,
                    "counts": result.counts,
                    "checked": result.checked,
                    "digests": result.digests,
                    "needs_review": result.needs_review,
                    "worst": result.summary["worst"],
                }
            ),
            run_id=run.id,
            corr=run.corr,
        )
        w.append("run.drift", {"drifted": result.needs_review}, run_id=run.id, corr=run.corr)
    from console.reconcile.notify import send, wanted

    if wanted(settings, notify):
        send(journal, settings, run.id, result.text(), {"event": "reconcile", **result.summary})
    return result


def explain_finding(
    journal: Journal,
    settings: Settings,
    run_id: str,
    key: list[Any] | tuple[Any, ...],
    *,
    against: str | None = None,
    table: str | None = None,
    cls: str | None = None,
    target: str | None = None,
    normalisers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The DeepDiff explanation (JSON) of one finding, computed now; writes nothing."""
    from console.reconcile.explain import explain

    result = compute(
        journal, settings, run_id, against, table=table, target=target, normalisers=normalisers
    )
    wanted = key_text(list(key))
    for t in result.tables:
        for f in t.report.findings:
            if key_text(f.key) == wanted and (cls is None or f.cls == cls):
                ex = explain(f, t.info, normalisers=t.normalisers, mode=result.against)
                return {"run_id": result.run_id, "table": t.table, **ex.as_dict()}
    raise NotFound(f"run {result.run_id}: no finding for key {wanted}.")


def __getattr__(name: str) -> Any:
    # The runbook's fix provider looks these up here; fixrun imports this module.
    if name in ("fix_plan", "apply_fixes"):
        import importlib

        return getattr(importlib.import_module("console.reconcile.fixrun"), name)
    raise AttributeError(name)
