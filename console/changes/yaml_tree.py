"""YAML text → ``Node`` tree, built from the parser's flat event stream.

Why events and not ``yaml.safe_load``: events carry the line of every value, building the tree
with an explicit stack cannot overflow Python's stack on deeply nested input, and scalars are
resolved here with YAML 1.2 core rules instead of PyYAML's YAML 1.1 ones, so ``NO`` (Norway),
``on`` or ``0012`` stay text and ``10.50`` stays an exact decimal. Plain numbers with leading
zeros (``007``) stay text: they are identifiers far more often than numbers. Timestamps stay
text too; the column type decides what they mean.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml

from console.changes.model import Problem
from console.changes.tree import (
    MAX_ALIAS_EXPANSION,
    MAX_DEPTH,
    Fatal,
    Node,
    bad_text,
    number,
)

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INT = re.compile(r"[-+]?[0-9]+")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_TAG = "tag:yaml.org,2002:"
_MAP_TAGS = {None, "!", _TAG + "map", _TAG + "omap"}
_SEQ_TAGS = {None, "!", _TAG + "seq"}


@dataclass(slots=True)
class _Frame:
    """A mapping or sequence being built."""

    is_map: bool
    line: int
    anchor: str | None
    items: Any  # dict[str, Node] or list[Node]
    merged: dict[str, Node] = field(default_factory=dict)  # from `<<` merge keys
    key: str | None = None  # mapping: the key waiting for its value
    key_line: int = 0
    merge_key: bool = False
    size: int = 1

    def node(self) -> Node:
        if self.is_map and self.merged:
            return Node({**self.merged, **self.items}, self.line, size=self.size)
        return Node(self.items, self.line, size=self.size)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, Node] = {}
        self.root: Node | None = None
        self.expanded = 0

    def fatal(self, line: int | None, fld: str, message: str) -> Fatal:
        return Fatal(Problem(self.file, line, fld, message))

    def problem(self, line: int, fld: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, fld, message))

    def expecting_key(self) -> bool:
        return bool(self.stack) and self.stack[-1].is_map and self.stack[-1].key is None

    def open(self, event: Any, is_map: bool, line: int) -> None:
        if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
            raise self.fatal(line, "tag", f"the tag {event.tag} is not supported; remove it")
        if self.expecting_key():
            raise self.fatal(line, "key", "a key must be plain text, not a list or mapping")
        if len(self.stack) >= MAX_DEPTH:
            raise self.fatal(
                line, "document", f"the document is nested more than {MAX_DEPTH} levels deep"
            )
        self.stack.append(_Frame(is_map, line, event.anchor, {} if is_map else []))

    def close(self) -> None:
        frame = self.stack.pop()
        node = frame.node()
        if frame.anchor:
            self.anchors[frame.anchor] = node
        self.attach(node)

    def key(self, value: str, line: int, plain: bool) -> None:
        frame = self.stack[-1]
        if bad_text(value):
            raise self.fatal(line, "key", "the key holds an invalid \\u escape")
        frame.key, frame.key_line, frame.merge_key = value, line, plain and value == "<<"

    def alias(self, anchor: str, line: int) -> None:
        target = self.anchors.get(anchor)
        if target is None:
            raise self.fatal(
                line, "alias", f"*{anchor} refers to no anchor defined before it; define &{anchor}"
            )
        self.expanded += target.size
        if self.expanded > MAX_ALIAS_EXPANSION:
            raise self.fatal(
                line, "alias", "aliases expand to too many values; write the values out instead"
            )
        if self.expecting_key():
            if isinstance(target.value, dict | list):
                raise self.fatal(line, "key", "a key must be plain text, not a list or mapping")
            self.key(str(target.value), line, plain=False)
            return
        self.attach(Node(target.value, line, size=target.size))

    def attach(self, node: Node) -> None:
        if not self.stack:
            self.root = node
            return
        frame = self.stack[-1]
        frame.size += node.size
        if not frame.is_map:
            frame.items.append(node)
            return
        key, frame.key = frame.key, None
        if key is None:  # unreachable: the parser alternates keys and values
            raise self.fatal(node.line, "key", "a mapping value has no key")
        if frame.merge_key:
            self.merge(frame, node)
            return
        if key in frame.items:
            first = frame.items[key].where
            self.problem(frame.key_line, key, f"the key appears twice (first on line {first})")
            return
        node.key_line = frame.key_line
        frame.items[key] = node

    def merge(self, frame: _Frame, node: Node) -> None:
        sources = node.value if isinstance(node.value, list) else [node]
        for source in sources:
            if not isinstance(source.value, dict):
                raise self.fatal(
                    frame.key_line, "<<", "a merge key takes a mapping or a list of mappings"
                )
            for k, v in source.value.items():
                frame.merged.setdefault(k, v)  # the first source wins, as YAML specifies

    def scalar(self, event: Any, line: int) -> Node:
        value: str = event.value
        if bad_text(value):
            self.problem(line, "value", "the text holds an invalid \\u escape; fix it")
        tag = event.tag
        if tag is None:
            if event.implicit[0]:
                return Node(_plain(value), line)
            return Node(value, line)
        if tag in ("!", _TAG + "str", _TAG + "timestamp"):
            return Node(value, line)
        if tag == _TAG + "null":
            return Node(None, line)
        if tag == _TAG + "bool":
            if value in _TRUE or value in _FALSE:
                return Node(value in _TRUE, line)
        elif tag == _TAG + "int":
            if _INT.fullmatch(value.strip()):
                return Node(number(value.strip()), line)
        elif tag == _TAG + "float":
            if _FLOAT.fullmatch(value.strip()):
                return Node(Decimal(value.strip()), line)
        elif tag == _TAG + "binary":
            try:
                raw = base64.b64decode("".join(value.split()), validate=True)
            except (binascii.Error, ValueError):
                pass
            else:
                text = base64.b64encode(raw).decode("ascii")
                return Node({"$b64": Node(text, line)}, line, size=2)
        else:
            self.problem(line, "tag", f"the tag {tag} is not supported; remove it")
            return Node(value, line)
        self.problem(line, "value", f"'{value[:40]}' is not a valid {tag.removeprefix(_TAG)}")
        return Node(value, line)


def _plain(value: str) -> Any:
    """YAML 1.2 core schema for untagged plain scalars (see the module docstring)."""
    if value in _NULL:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if _INT.fullmatch(value):
        return value if _LEADING_ZERO.fullmatch(value) else number(value)
    if _FLOAT.fullmatch(value):
        return Decimal(value)
    return value


def _event_line(event: Any) -> int:
    mark = event.start_mark
    return int(mark.line) + 1 if mark is not None else 1


def _syntax_problem(file: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    line = int(mark.line) + 1 if mark is not None else None
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{what} ({context})" if context else what
    return Problem(file, line, "document", f"not valid YAML: {detail}; fix the syntax there")


def parse_yaml(text: str, file: str) -> tuple[Node | None, list[Problem]]:
    """The document's tree (None when empty) and the non-fatal problems found.

    Raises ``Fatal`` when the text cannot be read as one YAML document.
    """
    builder = _Builder(file)
    loader = _Loader(text)
    documents = 0
    try:
        while True:
            event = loader.get_event()
            kind = type(event)  # exact types: a dict-free if-chain ordered by frequency
            if kind is yaml.ScalarEvent:
                line = event.start_mark.line + 1
                if builder.expecting_key():
                    plain = event.tag is None and bool(event.implicit[0])
                    builder.key(event.value, line, plain)
                    continue
                node = builder.scalar(event, line)
                if event.anchor:
                    builder.anchors[event.anchor] = node
                builder.attach(node)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                builder.open(event, kind is yaml.MappingStartEvent, _event_line(event))
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                builder.close()
            elif kind is yaml.AliasEvent:
                builder.alias(str(event.anchor), _event_line(event))
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise builder.fatal(
                        _event_line(event),
                        "document",
                        "the file holds several YAML documents; keep one",
                    )
            elif kind is yaml.StreamEndEvent:
                break
    except yaml.YAMLError as exc:
        raise Fatal(_syntax_problem(file, exc)) from None
    finally:
        loader.dispose()
    return builder.root, builder.problems
