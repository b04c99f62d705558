"""A parsed YAML/JSON tree → ``ChangeSet``: the document shape of DESIGN.md "Change sets", or
a list of operations described by ``--table``/``--key``/``--op``.

Every problem is collected (with file, line and field) before anything is raised, so one run
of ``backout apply`` shows everything to fix. Unknown keys are errors: a typo such as ``sett``
must never silently turn an update into a no-op.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast, get_args

from console.canonical import jsonable
from console.changes.digest import ContentDigest
from console.changes.model import (
    ChangeSet,
    Invariant,
    OnError,
    Operation,
    OpName,
    Options,
    Problem,
    Step,
    Touchpoints,
)
from console.changes.records import OPS, record_operation, shape_problem
from console.changes.tree import Node, is_map, to_plain

_LARGEST = 2**63 - 1  # numbers the journal stores as integers (version, segment size)

TOP_KEYS = (
    "changeset",
    "version",
    "automation",
    "description",
    "target",
    "options",
    "touchpoints",
    "steps",
)
STEP_KEYS = (
    "name",
    "table",
    "key",
    "target",
    "on_error",
    "invariants",
    "operations",
    "reconcile",
)
RECONCILE_KEYS = ("normalise", "group_by")
OPTION_KEYS = ("segment_size", "on_error", "max_failed_ratio", "on_existing_insert")
TOUCHPOINT_KEYS = ("source", "writes", "readers")
INVARIANT_KEYS = ("name", "sql", "expect")
OP_KEYS: dict[str, tuple[str, ...]] = {
    "update": ("op", "key", "set"),
    "insert": ("op", "row"),
    "upsert": ("op", "row"),
    "delete": ("op", "key"),
}
ON_ERROR: tuple[str, ...] = get_args(OnError)
ON_EXISTING = ("refuse", "conflict")


def _join(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _hint(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Reader:
    """Typed access to a tree that records a problem for every mismatch."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def bad(self, line: int | None, fld: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, fld, message))

    def mapping(
        self,
        node: Node,
        path: str,
        what: str,
        allowed: Sequence[str],
        required: Sequence[str] = (),
    ) -> dict[str, Node] | None:
        if not is_map(node):
            self.bad(node.line, path or "document", f"{what} must be a mapping of {_list(allowed)}")
            return None
        items: dict[str, Node] = node.value
        suggested: set[str] = set()
        for name, child in items.items():
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                suggested.update(close)
                self.bad(
                    child.where,
                    _join(path, name),
                    f"unknown key '{name}' in {what}; use {_list(allowed)}{_hint(name, allowed)}",
                )
        for name in required:
            if name not in items and name not in suggested:  # the typo already says it
                self.bad(node.line, _join(path, name), f"{what} needs '{name}'; add it")
        return items

    def text(self, node: Node | None, path: str, *, optional: bool = False) -> str | None:
        if node is None or (optional and node.value is None):
            return None
        if not isinstance(node.value, str) or not node.value.strip():
            self.bad(node.where, path, "must be non-empty text")
            return None
        return node.value

    def choice(self, node: Node | None, path: str, choices: Sequence[str]) -> str | None:
        if node is None:
            return None
        if node.value not in choices:
            shown = to_plain(node) if not isinstance(node.value, dict | list) else "a structure"
            self.bad(
                node.where,
                path,
                f"'{shown}' is not allowed; use one of {_list(choices)}"
                f"{_hint(str(node.value), choices) if isinstance(node.value, str) else ''}",
            )
            return None
        return cast(str, node.value)

    def whole(self, node: Node | None, path: str, minimum: int) -> int | None:
        if node is None:
            return None
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.bad(node.where, path, f"must be a whole number of at least {minimum}")
            return None
        if value > _LARGEST:  # the journal stores it as a 64-bit integer
            self.bad(node.where, path, f"must be a whole number from {minimum} to {_LARGEST}")
            return None
        return value

    def ratio(self, node: Node | None, path: str) -> float | None:
        if node is None:
            return None
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | Decimal) or not 0 <= value <= 1:
            self.bad(node.where, path, "must be a number from 0 to 1 (a share of rows)")
            return None
        return float(value)

    def texts(self, node: Node | None, path: str) -> tuple[str, ...]:
        if node is None or node.value is None:
            return ()
        if not isinstance(node.value, list):
            self.bad(node.where, path, "must be a list of names")
            return ()
        out = []
        for i, item in enumerate(node.value):
            name = self.text(item, _join(path, i))
            if name is not None:
                out.append(name)
        return tuple(out)

    def columns(self, node: Node | None, path: str, what: str) -> dict[str, Any] | None:
        """A mapping of column -> value (``key``, ``set``, ``row``)."""
        if node is None:
            return None
        if not is_map(node):
            self.bad(node.where, path, f"{what} must be a mapping of column: value")
            return None
        if not node.value:
            self.bad(node.where, path, f"{what} names no column; add column: value pairs")
            return None
        out = {}
        for name, child in node.value.items():
            if not name.strip():
                self.bad(child.where, _join(path, name), "a column name is empty")
                continue
            out[name] = to_plain(child)
        return out


def _list(names: Sequence[str]) -> str:
    return ", ".join(names)


# --- the document form ------------------------------------------------------------------


def read_options(r: Reader, node: Node | None) -> Options:
    if node is None or node.value is None:
        return Options()
    items = r.mapping(node, "options", "options", OPTION_KEYS)
    if items is None:
        return Options()
    default = Options()
    size = r.whole(items.get("segment_size"), "options.segment_size", 1)
    on_error = r.choice(items.get("on_error"), "options.on_error", ON_ERROR)
    ratio = r.ratio(items.get("max_failed_ratio"), "options.max_failed_ratio")
    existing = r.choice(items.get("on_existing_insert"), "options.on_existing_insert", ON_EXISTING)
    return Options(
        segment_size=size if size is not None else default.segment_size,
        on_error=cast(OnError, on_error or default.on_error),
        max_failed_ratio=ratio if ratio is not None else default.max_failed_ratio,
        on_existing_insert=cast(Any, existing or default.on_existing_insert),
    )


def read_touchpoints(r: Reader, node: Node | None) -> Touchpoints:
    if node is None or node.value is None:
        return Touchpoints()
    items = r.mapping(node, "touchpoints", "touchpoints", TOUCHPOINT_KEYS)
    if items is None:
        return Touchpoints()
    return Touchpoints(
        source=r.text(items.get("source"), "touchpoints.source", optional=True),
        writes=r.texts(items.get("writes"), "touchpoints.writes"),
        readers=r.texts(items.get("readers"), "touchpoints.readers"),
    )


def read_key(r: Reader, node: Node | None, path: str) -> tuple[str, ...]:
    if node is None:
        return ()
    if isinstance(node.value, str):
        names: tuple[str, ...] = (node.value,) if node.value.strip() else ()
    elif isinstance(node.value, list) and all(isinstance(n.value, str) for n in node.value):
        names = tuple(n.value for n in node.value if n.value.strip())
        if len(names) != len(node.value):
            names = ()
    else:
        names = ()
    if not names:
        r.bad(node.where, path, "must be a column name or a list of column names")
    elif len(set(names)) != len(names):
        r.bad(node.where, path, "names a column twice; name each key column once")
        names = ()
    return names


def read_invariants(r: Reader, node: Node | None, path: str) -> tuple[Invariant, ...]:
    if node is None or node.value is None:
        return ()
    if not isinstance(node.value, list):
        r.bad(node.where, path, "must be a list of {name, sql, expect}")
        return ()
    out = []
    for i, item in enumerate(node.value):
        where = _join(path, i)
        items = r.mapping(item, where, "an invariant", INVARIANT_KEYS, INVARIANT_KEYS)
        if items is None:
            continue
        name = r.text(items.get("name"), _join(where, "name"))
        sql = r.text(items.get("sql"), _join(where, "sql"))
        expect = items.get("expect")
        if name is not None and sql is not None and expect is not None:
            out.append(Invariant(name, sql, to_plain(expect)))
    return tuple(out)


def read_reconcile(r: Reader, node: Node | None, path: str) -> dict[str, Any]:
    """A step's ``reconcile:``: ``normalise`` (column -> options, ``ignore: [columns]``) and
    ``group_by`` (a column whose per-group count and sums must move as intended)."""
    if node is None:
        return {}
    items = r.mapping(node, path, "reconcile", RECONCILE_KEYS)
    if items is None:
        return {}
    out: dict[str, Any] = {}
    group = r.text(items.get("group_by"), _join(path, "group_by"))
    if group is not None:
        out["group_by"] = group
    norm = items.get("normalise")
    if norm is not None:
        where = _join(path, "normalise")
        columns = r.mapping(norm, where, "normalise", list(norm.value) if is_map(norm) else [])
        for column, child in (columns or {}).items():
            # each option on its own line, so the message points at the one at fault
            parts = child.value.items() if is_map(child) and child.value else [(None, child)]
            for option, value in parts:
                spec = to_plain(child) if option is None else {option: to_plain(value)}
                problem = normaliser_problem(column, spec)
                if problem is not None:
                    fld = _join(_join(where, column), option) if option else _join(where, column)
                    r.bad(value.where, fld, problem)
        if columns is not None:  # decimals as text: the journal keeps them exact
            out["normalise"] = jsonable(to_plain(norm))
    return out


def normaliser_problem(column: str, spec: Any) -> str | None:
    """What is wrong with one declared normaliser, by the rules reconciliation applies."""
    from console.errors import BadInput
    from console.reconcile.normalise import Normalisers

    try:
        Normalisers.parse({column: spec})
    except BadInput as exc:
        _where, _, problem = str(exc).removeprefix("Reconcile normaliser ").partition(": ")
        return problem.rstrip(".") + "; fix it"
    return None


def read_operation(r: Reader, node: Node, path: str, key: tuple[str, ...]) -> Operation | None:
    if not is_map(node):
        r.bad(node.line, path, "an operation must be a mapping such as {op: update, key, set}")
        return None
    items: dict[str, Node] = node.value
    op = r.choice(items.get("op"), _join(path, "op"), OPS)
    if "op" not in items:
        r.bad(node.line, _join(path, "op"), f"the operation needs 'op' ({_list(OPS)}); add it")
    if op is None:
        return None
    allowed = OP_KEYS[op]
    problems = len(r.problems)
    r.mapping(node, path, f"an {op}" if op[0] in "aeiou" else f"a {op}", allowed, allowed)
    if len(r.problems) > problems:
        return None
    if op == "update":
        keys = r.columns(items["key"], _join(path, "key"), "key")
        values = r.columns(items["set"], _join(path, "set"), "set")
    elif op == "delete":
        keys = r.columns(items["key"], _join(path, "key"), "key")
        values = {}
    else:
        values = r.columns(items["row"], _join(path, "row"), "row")
        keys = {c: values[c] for c in key if c in values} if values is not None else None
    if keys is None or values is None:
        return None
    return Operation(cast(OpName, op), keys, values, node.line)


def read_operations(
    r: Reader, node: Node | None, path: str, key: tuple[str, ...], default_op: OpName | None
) -> list[Operation]:
    if node is None:
        return []
    if not isinstance(node.value, list):
        r.bad(node.where, path, "must be a list of operations")
        return []
    if not node.value:
        r.bad(node.where, path, "lists no operation; add at least one")
    out = []
    for i, item in enumerate(node.value):
        where = _join(path, i)
        if default_op is not None:
            op = read_record(r, item, where, key, default_op)
        else:
            op = read_operation(r, item, where, key)
        if op is not None:
            out.append(op)
    return out


def read_record(
    r: Reader, node: Node, path: str, key: tuple[str, ...], op: OpName
) -> Operation | None:
    """One flat object of a JSON list read with ``--op``: key columns plus values."""
    if not is_map(node):
        r.bad(node.line, path, "with --op each element must be an object of column: value")
        return None
    items: dict[str, Node] = node.value
    if "op" in items and any(is_map(items[k]) for k in ("key", "set", "row") if k in items):
        r.bad(node.line, path, "this is an operation object, not a row; drop --op to read it")
        return None
    shape = shape_problem(op, key, list(items))
    if shape is not None:
        r.bad(node.line, _join(path, shape[0]), shape[1])
        return None
    record = r.columns(node, path, "the row")
    return None if record is None else record_operation(op, key, record, node.line)


def _step(
    name: str,
    table: str,
    key: tuple[str, ...],
    ops: list[Operation],
    *,
    invariants: tuple[Invariant, ...] = (),
    on_error: OnError | None = None,
    target: str | None = None,
    line: int | None = None,
    reconcile: dict[str, Any] | None = None,
) -> Step:
    frozen = tuple(ops)
    return Step(
        name=name,
        table=table,
        key=key,
        operations=lambda: iter(frozen),
        count=len(frozen),
        invariants=invariants,
        on_error=on_error,
        target=target,
        line=line,
        reconcile=reconcile or {},
    )


def read_steps(r: Reader, node: Node | None) -> list[Step]:
    if node is None:
        return []
    if not isinstance(node.value, list) or not node.value:
        r.bad(node.where, "steps", "must be a non-empty list of steps")
        return []
    steps: list[Step] = []
    names: dict[str, int] = {}
    for i, item in enumerate(node.value):
        path = _join("steps", i)
        items = r.mapping(item, path, "a step", STEP_KEYS, ("name", "table", "key", "operations"))
        if items is None:
            continue
        name = r.text(items.get("name"), _join(path, "name"))
        table = r.text(items.get("table"), _join(path, "table"))
        key = read_key(r, items.get("key"), _join(path, "key"))
        target = r.text(items.get("target"), _join(path, "target"), optional=True)
        on_error = r.choice(items.get("on_error"), _join(path, "on_error"), ON_ERROR)
        invariants = read_invariants(r, items.get("invariants"), _join(path, "invariants"))
        ops = read_operations(r, items.get("operations"), _join(path, "operations"), key, None)
        reconcile = read_reconcile(r, items.get("reconcile"), _join(path, "reconcile"))
        if name is not None and name in names:
            r.bad(
                items["name"].where,
                _join(path, "name"),
                f"another step is already named '{name}' (line {names[name]}); rename one",
            )
        elif name is not None:
            names[name] = items["name"].where
        if name is None or table is None or not key:
            continue
        steps.append(
            _step(
                name,
                table,
                key,
                ops,
                invariants=invariants,
                on_error=cast(OnError | None, on_error),
                target=target,
                line=item.line,
                reconcile=reconcile,
            )
        )
    return steps


def digest_of(
    name: str,
    version: int,
    target: str | None,
    options: Options,
    touchpoints: Touchpoints,
    steps: Sequence[Step],
) -> str:
    content = ContentDigest(name, version, target, options, touchpoints)
    for step in steps:
        content.step(
            step.name, step.table, step.key, step.target, step.on_error, tuple(step.invariants)
        )
        for op in step.operations():
            content.op(op.op, op.key, op.values)
    return content.hexdigest()


def read_document(
    r: Reader,
    root: Node,
    *,
    name: str | None,
    version: int | None,
    target: str | None,
) -> ChangeSet | None:
    """The document form; None when problems were recorded."""
    items = r.mapping(root, "", "a change set", TOP_KEYS, ("changeset", "version", "steps"))
    if items is None:
        return None
    doc_name = r.text(items.get("changeset"), "changeset")
    doc_version = r.whole(items.get("version"), "version", 1)
    if name is not None and doc_name is not None and name != doc_name:
        r.bad(
            items["changeset"].where,
            "changeset",
            f"the file names the change set '{doc_name}', not '{name}'; drop --name",
        )
    if version is not None and doc_version is not None and version != doc_version:
        r.bad(
            items["version"].where,
            "version",
            f"the file is version {doc_version}, not {version}; drop --version",
        )
    automation = r.text(items.get("automation"), "automation", optional=True)
    description = r.text(items.get("description"), "description", optional=True)
    doc_target = r.text(items.get("target"), "target", optional=True)
    options = read_options(r, items.get("options"))
    touchpoints = read_touchpoints(r, items.get("touchpoints"))
    steps = read_steps(r, items.get("steps"))
    if r.problems or doc_name is None or doc_version is None:
        return None
    effective_target = target or doc_target
    return ChangeSet(
        name=doc_name,
        version=doc_version,
        digest=digest_of(doc_name, doc_version, effective_target, options, touchpoints, steps),
        target=effective_target,
        steps=tuple(steps),
        options=options,
        automation=automation,
        description=description,
        touchpoints=touchpoints,
        source=r.file,
    )


def read_operation_list(
    r: Reader,
    root: Node,
    *,
    name: str,
    version: int,
    table: str,
    key: tuple[str, ...],
    op: OpName | None,
    target: str | None,
) -> ChangeSet | None:
    """A list of operations (or, with ``op``, of flat rows) for one table."""
    ops = read_operations(r, root, "operations", key, op)
    if r.problems:
        return None
    step = _step(table, table, key, ops, line=root.line)
    options, touchpoints = Options(), Touchpoints()
    return ChangeSet(
        name=name,
        version=version,
        digest=digest_of(name, version, target, options, touchpoints, [step]),
        target=target,
        steps=(step,),
        options=options,
        touchpoints=touchpoints,
        source=r.file,
    )
