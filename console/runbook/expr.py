"""Decision expressions (``when: "findings.wrong_value + findings.collateral > 0"``).

Parsed with ``ast`` and checked against a whitelist: names and one-level attributes of the
known roots, numbers and strings, comparisons, ``+ -``, ``and or not``. Nothing is ever passed
to ``eval``; evaluation walks the checked tree.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

FINDING_CLASSES = (
    "applied",
    "not_applied",
    "wrong_value",
    "collateral",
    "missing_row",
    "unexpected_row",
    "later_overwrite",
    "restored",
    "not_restored",
    "tolerated",
)
RUN_FIELDS = (
    "status",
    "kind",
    "rows_total",
    "rows_applied",
    "rows_failed",
    "rows_conflict",
    "rows_reverted",
    "rows_skipped",
)
RESULT_FIELDS = ("value", "ok", "exit_code", "conflicts")

# root name -> the attributes an expression may read
NAMES: Mapping[str, tuple[str, ...]] = {
    "findings": (*FINDING_CLASSES, "total"),
    "run": RUN_FIELDS,
    "result": RESULT_FIELDS,
}

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
}


class ExprError(ValueError):
    """An expression that is not allowed; ``offset`` is the 0-based column inside it."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Expr:
    text: str
    tree: ast.Expression

    def names(self) -> set[str]:
        """``root.attr`` references, e.g. ``{"findings.wrong_value"}``."""
        return {
            f"{n.value.id}.{n.attr}"
            for n in ast.walk(self.tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
        }

    def evaluate(self, env: Mapping[str, Mapping[str, Any]]) -> bool:
        try:
            return bool(_eval(self.tree.body, env))
        except TypeError as exc:
            raise ExprError(f"'{self.text}' cannot be evaluated: {exc}") from None


def parse(text: str) -> Expr:
    """Parse and check ``text``; raise ``ExprError`` naming the first forbidden construct."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(
            f"not a valid expression ({exc.msg})", max((exc.offset or 1) - 1, 0)
        ) from None
    lead = len(text) - len(text.lstrip())
    owned = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in owned:
            raise ExprError(
                f"'{node.id}' alone is not a value; name a field such as findings.wrong_value",
                _where(node, lead),
            )
        _check(node, lead)
    return Expr(text, tree)


def _where(node: ast.AST, lead: int) -> int:
    return lead + int(getattr(node, "col_offset", 0))


def _check(node: ast.AST, lead: int) -> None:
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.UAdd,
        ast.BinOp,
        ast.Add,
        ast.Sub,
        ast.Compare,
        ast.Load,
        *_COMPARE,
    )
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float | str):
            raise ExprError(f"constant {node.value!r} is not allowed", _where(node, lead))
        return
    if isinstance(node, ast.Attribute):
        if not isinstance(node.value, ast.Name):
            raise ExprError(
                "only one level of attributes, like findings.wrong_value", _where(node, lead)
            )
        root = node.value.id
        if root not in NAMES:
            raise ExprError(f"unknown name '{root}'; use {', '.join(NAMES)}", _where(node, lead))
        if node.attr not in NAMES[root]:
            raise ExprError(
                f"'{root}.{node.attr}' is unknown; {root} has {', '.join(NAMES[root])}",
                _where(node, lead),
            )
        return
    if isinstance(node, ast.Name):
        if node.id not in NAMES:
            raise ExprError(f"unknown name '{node.id}'; use {', '.join(NAMES)}", _where(node, lead))
        return
    if isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
        raise ExprError("only + and - are allowed", _where(node, lead))
    if not isinstance(node, allowed):
        what = type(node).__name__.lower()
        raise ExprError(f"'{what}' is not allowed in a decision", _where(node, lead))


def _eval(node: ast.AST, env: Mapping[str, Mapping[str, Any]]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        scope = env.get(node.value.id)
        if scope is None or node.attr not in scope or scope[node.attr] is None:
            raise ExprError(f"{node.value.id}.{node.attr} is not known at this point")
        return scope[node.attr]
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, env) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not value
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, env)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise ExprError(f"cannot evaluate {type(node).__name__}")
