"""A parsed document as a tree of values that remember their source line.

YAML and JSON both parse into ``Node``s, so that the change-set reader is written once and
every problem it finds can name a line. Scalars are ``str``, ``int``, ``Decimal`` (never
``float``: prices must stay exact), ``bool`` or ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from console.changes.model import Problem

# Deeper than this is never a change set; refusing early keeps parsing bounded.
MAX_DEPTH = 64
# YAML aliases can make a small file expand exponentially ("billion laughs").
MAX_ALIAS_EXPANSION = 1_000_000
# Python refuses to turn longer digit strings into ints; such numbers stay Decimal.
MAX_INT_DIGITS = 4000

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(slots=True)
class Node:
    value: Any  # dict[str, Node], list[Node] or a scalar
    line: int
    key_line: int | None = None  # for a mapping value: the line of its key
    size: int = 1  # values in this subtree, aliases expanded

    @property
    def where(self) -> int:
        return self.key_line or self.line


class Fatal(Exception):
    """A problem after which the rest of the document cannot be read."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def is_map(node: Node) -> bool:
    return isinstance(node.value, dict)


def is_seq(node: Node) -> bool:
    return isinstance(node.value, list)


def to_plain(node: Node) -> Any:
    """The plain Python value (dicts, lists, scalars) of a subtree."""
    value = node.value
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


def bad_text(text: str) -> bool:
    """True when ``text`` holds a lone surrogate (a broken \\u escape): it cannot be UTF-8."""
    return _SURROGATE.search(text) is not None


def number(digits: str) -> int | Decimal:
    """An integer literal as int, or as Decimal when it is too long for int()."""
    return int(digits) if len(digits) <= MAX_INT_DIGITS else Decimal(digits)
