"""Loading and validating YAML runbooks.

The YAML is composed into nodes (PyYAML keeps each node's line and column), then checked
whole: every problem is collected with its position, so ``backout runbook validate`` lists
all of them at once. Graph checks follow the schema: a ``goto`` to a missing step, steps no
path reaches, and cycles with no way out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from console.canonical import sha256_hex
from console.config import parse_duration
from console.errors import BadInput, NotFound
from console.runbook import expr
from console.runbook.schema import (
    ACTIONS,
    CHECKS,
    END,
    PREREQUISITES,
    STEP_KINDS,
    AnswerSpec,
    ApprovalSpec,
    Criterion,
    Prerequisites,
    Runbook,
    Step,
    StepKind,
    Where,
)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COMMON = {"id", "title", "next", "on_fail"}
_KIND_KEYS: dict[str, set[str]] = {
    "check": {"check", "against", "sql", "target", "expect", "decide"},
    "verify": {"verify", "against", "sql", "target", "expect", "decide"},
    "decide": {"decide"},
    "approval": {"approval", "on_denied"},
    "action": {"action", "with"},
    "manual": {"manual", "answer"},
    "escalate": {"escalate"},
}
_TOP = {"runbook", "version", "title", "description", "prerequisites", "steps"}
_EXCLUSIONS = ("requester", "executor", "owner")


@dataclass(frozen=True)
class Problem:
    where: Where
    message: str

    def render(self, source: str) -> str:
        # Keys quoted from the file must not break the line or drive the terminal.
        text = f"{source}:{self.where.line}:{self.where.column}: {self.message}"
        return "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
        )


class RunbookInvalid(BadInput):
    """A runbook with problems; the message lists every one, one per line."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = [p.render(source) for p in problems]
        super().__init__("\n".join(lines) if lines else f"{source}: invalid runbook.")


def _at(node: yaml.Node) -> Where:
    return Where(node.start_mark.line + 1, node.start_mark.column + 1)


def _value_at(node: yaml.Node, offset: int) -> Where:
    """Position of character ``offset`` inside a one-line scalar (after any quote)."""
    base = _at(node)
    quote = 1 if isinstance(node, yaml.ScalarNode) and node.style in ("'", '"') else 0
    return Where(base.line, base.column + quote + offset)


class _Parser:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")

    def error(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(_at(node), message))

    def python(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """``key -> (key node, value node)``; reports non-mappings and duplicate keys."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping of keys to values")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            key = str(k.value) if isinstance(k, yaml.ScalarNode) else "?"
            if key in out:
                self.error(k, f"duplicate key '{key}' in {what}")
                continue
            out[key] = (k, v)
        return out

    def string(self, node: yaml.Node, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            self.error(node, f"{what} must be text")
            return None
        return str(node.value)

    def integer(self, node: yaml.Node, what: str, minimum: int = 0) -> int | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:int":
            self.error(node, f"{what} must be a whole number")
            return None
        value = int(self.python(node))
        if value < minimum:
            self.error(node, f"{what} must be at least {minimum}")
            return None
        return value

    def boolean(self, node: yaml.Node, what: str) -> bool | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:bool":
            self.error(node, f"{what} must be true or false")
            return None
        return bool(self.python(node))

    def strings(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        if isinstance(node, yaml.ScalarNode):
            one = self.string(node, what)
            return (one,) if one is not None else ()
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list of names")
            return ()
        out = [self.string(item, what) for item in node.value]
        return tuple(s for s in out if s is not None)

    def step_ref(self, node: yaml.Node, what: str, refs: list[tuple[str, yaml.Node]]) -> str | None:
        value = self.string(node, what)
        if value is not None:
            refs.append((value, node))
        return value

    def duration(self, node: yaml.Node, what: str) -> str | None:
        text = self.string(node, what)
        if text is None:
            return None
        try:
            parse_duration(text)
        except ValueError as exc:
            self.error(node, f"{what}: {exc}")
            return None
        return text

    # --- the document ---------------------------------------------------------------

    def runbook(self, root: yaml.Node, digest: str, source: str) -> Runbook | None:
        top = self.mapping(root, "a runbook")
        if not isinstance(root, yaml.MappingNode):  # reported; an empty one lacks every key
            return None
        for key, (knode, _) in top.items():
            if key not in _TOP:
                self.error(knode, f"unknown key '{key}'; a runbook has {', '.join(sorted(_TOP))}")
        name = version = None
        for required in ("runbook", "version", "steps"):
            if required not in top:
                self.error(root, f"'{required}' is missing")
        if "runbook" in top:
            name = self.string(top["runbook"][1], "runbook (its name)")
            if name is not None and not _ID.match(name):
                self.error(
                    top["runbook"][1], f"runbook name '{name}' may use letters, digits, _ . - only"
                )
        if "version" in top:
            version = self.integer(top["version"][1], "version", 1)
        title = self.string(top["title"][1], "title") if "title" in top else None
        description = (
            self.string(top["description"][1], "description") if "description" in top else None
        )
        prereq = self.prerequisites(top["prerequisites"][1]) if "prerequisites" in top else None
        steps = self.steps(top["steps"][1]) if "steps" in top else ()
        if name is None or version is None or not steps or self.problems:
            return None
        return Runbook(
            name,
            version,
            title or name,
            description or "",
            prereq or Prerequisites(),
            steps,
            digest,
            source,
        )

    def prerequisites(self, node: yaml.Node) -> Prerequisites:
        """``[lock_target, backup_reference]`` or ``{lock_target: true, ...}``."""
        found: dict[str, bool] = {}
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                name = self.string(item, "a prerequisite")
                if name is not None:
                    found[name] = True
                    if name not in PREREQUISITES:
                        self.error(
                            item, f"unknown prerequisite '{name}'; use {', '.join(PREREQUISITES)}"
                        )
        else:
            for key, (knode, vnode) in self.mapping(node, "prerequisites").items():
                if key not in PREREQUISITES:
                    self.error(
                        knode, f"unknown prerequisite '{key}'; use {', '.join(PREREQUISITES)}"
                    )
                    continue
                flag = self.boolean(vnode, key)
                found[key] = bool(flag)
        return Prerequisites(found.get("lock_target", False), found.get("backup_reference", False))

    def steps(self, node: yaml.Node) -> tuple[Step, ...]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.error(node, "steps must be a non-empty list")
            return ()
        steps: list[Step] = []
        ids: dict[str, yaml.Node] = {}
        refs: list[tuple[str, yaml.Node]] = []
        for index, item in enumerate(node.value):
            step = self.step(item, index, refs)
            if step.id in ids:
                self.error(
                    item, f"duplicate step id '{step.id}' (first at line {_at(ids[step.id]).line})"
                )
                step = Step(f"{step.id}#{index + 1}", step.kind, index, step.where)
            ids.setdefault(step.id, item)
            steps.append(step)
        named = [i for i in ids if "#" not in i]
        for ref, rnode in refs:
            if ref != END and ref not in named:
                self.error(
                    rnode,
                    f"goto '{ref}': no step has this id; steps are {', '.join(named) or 'none'}",
                )
        # With other problems, a step only a broken criterion points at is not reported.
        referenced = {r for r, _ in refs} if self.problems else set()
        self.graph(tuple(steps), set(ids), referenced)
        return tuple(steps)

    def step(self, node: yaml.Node, index: int, refs: list[tuple[str, yaml.Node]]) -> Step:
        """The step at ``index``; a broken one still comes back (as a placeholder) so that
        the graph checks see every position."""
        keys = self.mapping(node, f"step {index + 1}")
        step_id = None
        if keys and "id" not in keys:
            self.error(node, f"step {index + 1} has no 'id'")
        elif keys:
            step_id = self.string(keys["id"][1], "id")
            if step_id is not None and (not _ID.match(step_id) or step_id == END):
                self.error(
                    keys["id"][1],
                    f"step id '{step_id}' may use letters, digits, _ . - only (and is not 'end')",
                )
                step_id = None
        fields: dict[str, Any] = {}
        if "title" in keys:
            fields["title"] = self.string(keys["title"][1], "title")
        if "next" in keys:
            fields["next"] = self.step_ref(keys["next"][1], "next", refs)
        if "on_fail" in keys:
            fields["on_fail"] = self.step_ref(keys["on_fail"][1], "on_fail", refs)
        placeholder = Step(step_id or f"#{index + 1}", "manual", index, _at(node), **fields)
        if not keys:
            return placeholder
        kinds = [k for k in STEP_KINDS if k in keys]
        # `check` + `decide` on one step is a check that decides.
        if kinds in (["check", "decide"], ["verify", "decide"]):
            kinds = kinds[:1]
        if not kinds:
            unknown = [k for k in keys if k not in _COMMON]
            where = keys[unknown[0]][0] if unknown else node
            self.error(
                where,
                f"unknown step kind{(' ' + repr(unknown[0])) if unknown else ''}"
                f"; a step is one of {', '.join(STEP_KINDS)}",
            )
            return placeholder
        if len(kinds) > 1:
            self.error(
                keys[kinds[1]][0],
                f"a step has one kind, this one has {' and '.join(kinds)}; split it",
            )
            return placeholder
        kind: StepKind = kinds[0]
        allowed = _COMMON | _KIND_KEYS[kind]
        for key, (knode, _) in keys.items():
            if key not in allowed:
                self.error(
                    knode,
                    f"unknown key '{key}' in a {kind} step; it may have "
                    f"{', '.join(sorted(allowed))}",
                )
        getattr(self, f"kind_{kind}")(keys, fields, refs)
        return Step(placeholder.id, kind, index, _at(node), **fields)

    # --- step kinds -----------------------------------------------------------------

    def kind_check(self, keys: dict[str, Any], fields: dict[str, Any], refs: list[Any]) -> None:
        self._check(keys, fields, refs, "check")

    def kind_verify(self, keys: dict[str, Any], fields: dict[str, Any], refs: list[Any]) -> None:
        self._check(keys, fields, refs, "verify")

    def _check(
        self, keys: dict[str, Any], fields: dict[str, Any], refs: list[Any], kind: str
    ) -> None:
        knode, vnode = keys[kind]
        what = self.string(vnode, kind)
        if what is not None and what not in CHECKS:
            self.error(vnode, f"unknown {kind} '{what}'; use {', '.join(CHECKS)}")
        fields["check"] = what
        if "against" in keys:
            against = self.string(keys["against"][1], "against")
            if against not in ("expected", "baseline"):
                self.error(keys["against"][1], "against must be expected or baseline")
            if what != "reconcile":
                self.error(keys["against"][0], "'against' applies to reconcile checks only")
            fields["against"] = against
        elif what == "reconcile":
            fields["against"] = "baseline" if kind == "verify" else "expected"
        if "sql" in keys:
            fields["sql"] = self.string(keys["sql"][1], "sql")
            if what != "sql":
                self.error(keys["sql"][0], "'sql' applies to sql checks only")
        elif what == "sql":
            self.error(knode, "a sql check needs 'sql: SELECT ...'")
        if "target" in keys:
            fields["target"] = self.string(keys["target"][1], "target")
        if "expect" in keys:
            fields["expect"] = self._expect(keys["expect"][1], what)
        if "decide" in keys:
            fields["decide"] = self._criteria(keys["decide"][1], refs)

    def _expect(self, node: yaml.Node, what: str | None) -> Any:
        value = self.python(node)
        if what == "reconcile":
            if not isinstance(value, dict):
                self.error(
                    node, "expect for a reconcile check is a mapping such as {not_restored: 0}"
                )
                return None
            for key, (knode, vnode) in self.mapping(node, "expect").items():
                if key not in expr.FINDING_CLASSES:
                    self.error(
                        knode,
                        f"unknown finding class '{key}'; use {', '.join(expr.FINDING_CLASSES)}",
                    )
                else:
                    self.integer(vnode, f"expect.{key}")
        elif what == "run_status" and not (
            isinstance(value, str)
            or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            self.error(node, "expect for a run_status check is a status or a list of statuses")
        return value

    def _criteria(self, node: yaml.Node, refs: list[Any]) -> tuple[Criterion, ...]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.error(node, "decide must be a non-empty list of {when: EXPR, goto: STEP}")
            return ()
        out: list[Criterion] = []
        for i, item in enumerate(node.value):
            keys = self.mapping(item, "a decide criterion")
            for key, (knode, _) in keys.items():
                if key not in ("when", "goto"):
                    self.error(
                        knode, f"unknown key '{key}' in a decide criterion; use when and goto"
                    )
            if "goto" not in keys:
                if keys:
                    self.error(item, "a decide criterion needs 'goto: STEP'")
                continue
            goto = self.step_ref(keys["goto"][1], "goto", refs)
            when: expr.Expr | None = None
            if "when" in keys:
                wnode = keys["when"][1]
                text = self.string(wnode, "when")
                if text is not None:
                    try:
                        when = expr.parse(text)
                    except expr.ExprError as exc:
                        self.problems.append(Problem(_value_at(wnode, exc.offset), f"when: {exc}"))
                        continue
            elif i != len(node.value) - 1:
                self.error(item, "a criterion without 'when' is the default and must be last")
            if goto is not None:
                out.append(Criterion(when, goto, _at(item)))
        return tuple(out)

    def kind_decide(self, keys: dict[str, Any], fields: dict[str, Any], refs: list[Any]) -> None:
        fields["decide"] = self._criteria(keys["decide"][1], refs)

    def kind_approval(self, keys: dict[str, Any], fields: dict[str, Any], refs: list[Any]) -> None:
        node = keys["approval"][1]
        spec: dict[str, Any] = {}
        if not (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
            allowed = ("quorum", "require_roles", "exclude", "expires_after", "for")
            for key, (knode, vnode) in self.mapping(node, "approval").items():
                if key == "quorum":
                    spec["quorum"] = self.integer(vnode, "quorum", 1)
                elif key == "require_roles":
                    spec["require_roles"] = self.strings(vnode, "require_roles")
                elif key == "exclude":
                    spec["exclude"] = self.strings(vnode, "exclude")
                    for bad in (e for e in spec["exclude"] if e not in _EXCLUSIONS):
                        self.error(vnode, f"exclude '{bad}': use {', '.join(_EXCLUSIONS)}")
                elif key == "expires_after":
                    spec["expires_after"] = self.duration(vnode, "expires_after")
                elif key == "for":
                    spec["guards"] = self.step_ref(vnode, "for", refs)
                else:
                    self.error(knode, f"unknown key '{key}' in approval; use {', '.join(allowed)}")
        fields["approval"] = ApprovalSpec(**spec)
        if "on_denied" in keys:
            fields["on_denied"] = self.step_ref(keys["on_denied"][1], "on_denied", refs)

    def kind_action(self, keys: dict[str, Any], fields: dict[str, Any], refs: list[Any]) -> None:
        vnode = keys["action"][1]
        action = self.string(vnode, "action")
        if action is not None and action not in ACTIONS:
            self.error(vnode, f"unknown action '{action}'; use {', '.join(ACTIONS)}")
        fields["action"] = action
        if "with" in keys:
            wnode = keys["with"][1]
            options = self.mapping(wnode, "with")
            fields["with_"] = {k: self.python(v) for k, (_, v) in options.items()}
            if action == "rollback":
                self._rollback_with(options)
            if action == "notify":
                fields["message"] = fields["with_"].get("message")

    def _rollback_with(self, options: dict[str, tuple[yaml.Node, yaml.Node]]) -> None:
        for key, (knode, vnode) in options.items():
            if key == "on_conflict":
                if self.string(vnode, "on_conflict") not in ("review", "skip"):
                    self.error(vnode, "on_conflict must be review or skip")
            elif key == "scope":
                if isinstance(vnode, yaml.ScalarNode) and vnode.value in ("run", "all"):
                    continue
                for skey, (sk, sv) in self.mapping(vnode, "scope").items():
                    if skey == "steps":
                        self.strings(sv, "scope.steps")
                    elif skey == "keys":
                        if not isinstance(self.python(sv), list):
                            self.error(sv, "scope.keys must be a list of key mappings")
                    else:
                        self.error(sk, f"unknown scope key '{skey}'; use steps, keys")
            else:
                self.error(knode, f"unknown rollback option '{key}'; use scope, on_conflict")

    def kind_manual(self, keys: dict[str, Any], fields: dict[str, Any], refs: list[Any]) -> None:
        fields["manual"] = self.string(keys["manual"][1], "manual (the instruction)")
        if "answer" in keys:
            node = keys["answer"][1]
            spec = self.mapping(node, "answer")
            prompt = self.string(spec["prompt"][1], "prompt") if "prompt" in spec else None
            if prompt is None and "prompt" not in spec:
                self.error(node, "answer needs a 'prompt'")
            required = self.boolean(spec["required"][1], "required") if "required" in spec else True
            pattern = self.string(spec["pattern"][1], "pattern") if "pattern" in spec else None
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    self.error(spec["pattern"][1], f"pattern is not a regular expression ({exc})")
            for key, (knode, _) in spec.items():
                if key not in ("prompt", "required", "pattern"):
                    self.error(
                        knode, f"unknown key '{key}' in answer; use prompt, required, pattern"
                    )
            fields["answer"] = AnswerSpec(prompt or "answer", bool(required), pattern)

    def kind_escalate(self, keys: dict[str, Any], fields: dict[str, Any], refs: list[Any]) -> None:
        node = keys["escalate"][1]
        if isinstance(node, yaml.ScalarNode | yaml.SequenceNode):
            fields["page"] = self.strings(node, "escalate (who to page)")
            return
        spec = self.mapping(node, "escalate")
        if "page" not in spec:
            self.error(node, "escalate needs 'page: WHO'")
        for key, (knode, vnode) in spec.items():
            if key == "page":
                fields["page"] = self.strings(vnode, "page")
            elif key == "message":
                fields["message"] = self.string(vnode, "message")
            else:
                self.error(knode, f"unknown key '{key}' in escalate; use page, message")

    # --- the graph ------------------------------------------------------------------

    def graph(self, steps: tuple[Step, ...], ids: set[str], referenced: set[str]) -> None:
        book = Runbook("", 1, "", "", Prerequisites(), steps, "", "")
        # A goto to a missing step is reported already; here it leads nowhere.
        edges = {s.id: [t if t in ids else None for t in successors(book, s)] for s in steps}
        reachable: set[str] = set()
        todo = [steps[0].id]
        while todo:
            sid = todo.pop()
            if sid in reachable:
                continue
            reachable.add(sid)
            todo.extend(t for t in edges[sid] if t is not None)
        for s in steps:
            if s.id not in reachable and s.id not in referenced and "#" not in s.id:
                self.problems.append(
                    Problem(s.where, f"step '{s.id}' is unreachable: no step goes to it")
                )
        # Steps that can reach the end, walked backwards from the steps that end (linear in
        # the steps: a hostile file may have thousands); a reachable step that cannot is
        # trapped in a cycle.
        preds: dict[str, list[str]] = {}
        for sid, targets in edges.items():
            for t in targets:
                if t is not None:
                    preds.setdefault(t, []).append(sid)
        exits = {s.id for s in steps if None in edges[s.id]}
        todo = list(exits)
        while todo:
            for p in preds.get(todo.pop(), []):
                if p not in exits:
                    exits.add(p)
                    todo.append(p)
        trapped = {s.id for s in steps if s.id in reachable and s.id not in exits}
        reported: set[str] = set()
        for s in steps:
            if s.id not in trapped or s.id in reported:
                continue
            loop = _loop_through(s.id, edges, trapped)
            if loop:
                reported.update(loop)
                self.problems.append(
                    Problem(
                        s.where,
                        "cycle without an exit: "
                        f"{' -> '.join([*loop, loop[0]])} never "
                        "reaches the end; add a decide or next: end",
                    )
                )


def _loop_through(start: str, edges: dict[str, list[str | None]], inside: set[str]) -> list[str]:
    """A path start -> ... -> start within ``inside`` (empty if ``start`` is on no cycle)."""
    parent: dict[str, str] = {}
    todo = [start]
    while todo:
        node = todo.pop(0)
        for nxt in edges[node]:
            if nxt is None or nxt not in inside:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return list(reversed(path))
            if nxt not in parent:
                parent[nxt] = node
                todo.append(nxt)
    return []


def successors(book: Runbook, step: Step) -> list[str | None]:
    """Where a step may go next (None: the end of the runbook)."""
    out: list[str | None] = []
    default = book.after(step)
    for c in step.decide:
        out.append(None if c.goto == END else c.goto)
    if not step.decide or all(c.when is not None for c in step.decide):
        out.append(default)
    for branch in (step.on_fail, step.on_denied):
        if branch is not None:
            out.append(None if branch == END else branch)
    return out


# --- entry points -----------------------------------------------------------------------


_TOO_DEEP = "nested too deeply to be a runbook; a runbook is a flat list of steps"


def check_text(text: str, source: str) -> tuple[Runbook | None, list[Problem]]:
    """Parse and validate; return the runbook (None if invalid) and every problem found."""
    parser = _Parser()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Where(mark.line + 1, mark.column + 1) if mark else Where(1, 1)
        return None, [Problem(where, f"not valid YAML: {exc.problem or exc.context}")]
    except yaml.YAMLError as exc:  # e.g. a control character, found before any position
        return None, [Problem(Where(1, 1), f"not valid YAML: {str(exc).splitlines()[0]}")]
    except RecursionError:
        return None, [Problem(Where(1, 1), _TOO_DEEP)]
    if root is None:
        return None, [
            Problem(
                Where(1, 1), "the file is empty; a runbook needs 'runbook', 'version' and 'steps'"
            )
        ]
    try:
        book = parser.runbook(root, sha256_hex(text.encode("utf-8")), source)
    except RecursionError:
        return None, [Problem(Where(1, 1), _TOO_DEEP)]
    parser.problems.sort(key=lambda p: (p.where.line, p.where.column))
    return (book if not parser.problems else None), parser.problems


def parse_text(text: str, source: str) -> Runbook:
    book, problems = check_text(text, source)
    if book is None:
        raise RunbookInvalid(source, problems)
    return book


def read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such runbook file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the runbook ({exc}).") from None


def load_file(path: Path) -> tuple[Runbook, str]:
    text = read_file(path)
    return parse_text(text, str(path)), text


def shipped_dir() -> Path:
    """The runbooks that ship with backout (``runbooks/`` beside the package)."""
    return Path(__file__).resolve().parents[2] / "runbooks"


def search_dirs() -> list[Path]:
    """``./runbooks`` first (a team's own, which may override a shipped one), then shipped."""
    local = Path.cwd() / "runbooks"
    dirs = [local]
    if shipped_dir().resolve() != local.resolve():
        dirs.append(shipped_dir())
    return dirs


def available() -> Iterator[tuple[str, Path]]:
    """(name, path) of every runbook file found, local ones first; names are file stems."""
    seen: set[str] = set()
    for folder in search_dirs():
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            if path.stem not in seen:
                seen.add(path.stem)
                yield path.stem, path


def find(name_or_path: str) -> Path:
    """A runbook by file path, or by name in ``./runbooks`` then the shipped ones."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not candidate.exists():
            raise NotFound(f"{candidate}: no such runbook file.")
        return candidate
    for name, path in available():
        if name == name_or_path:
            return path
    names = ", ".join(n for n, _ in available()) or "none"
    raise NotFound(
        f"no runbook named '{name_or_path}'; available: {names} (`backout runbook list`)."
    )
