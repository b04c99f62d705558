"""JSON text → ``Node`` tree, with source lines.

Two parsers, one result. ``parse_json`` is exact: the standard library's pure-Python scanner,
with the object and array parsers and the value scanner wrapped so that every value learns the
offset where it starts; duplicate keys, NaN/Infinity and broken ``\\u`` escapes become problems
instead of silently winning, passing or crashing later. ``parse_json_fast`` uses the C decoder
(several times faster on big files) and knows exact lines for objects and arrays only (an
operation's line is its object's line, so that is all a valid change set needs); it gives up on
anything unusual, and the loader re-reads an invalid file with ``parse_json`` so that every
problem names its exact line. Numbers with a fraction or an exponent become ``Decimal`` in both.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from json.decoder import JSONArray, JSONObject  # type: ignore[attr-defined]
from json.scanner import py_make_scanner  # type: ignore[attr-defined]
from typing import Any

from console.changes.model import Problem
from console.changes.tree import MAX_DEPTH, Fatal, Node, bad_text, number

# A JSON string (valid JSON only reaches this), and the escape of a UTF-16 surrogate half.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

_Scan = Callable[[str, int], tuple[Any, int]]


class _NotFinite(Exception):
    pass


def _constant(name: str) -> Any:
    raise _NotFinite(name)


class _Decoder(json.JSONDecoder):
    def __init__(self, text: str, file: str) -> None:
        super().__init__(parse_float=Decimal, parse_int=number, parse_constant=_constant)
        self.file = file
        self.problems: list[Problem] = []
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.depth = 0
        self.parse_object = self._object
        self.parse_array = self._array
        self.scan_once = self._located(py_make_scanner(self))

    def line(self, offset: int) -> int:
        return bisect.bisect_left(self.newlines, offset) + 1

    def _located(self, scan: _Scan) -> _Scan:
        def scan_located(text: str, offset: int) -> tuple[Node, int]:
            value, end = scan(text, offset)
            if isinstance(value, Node):
                return value, end
            if isinstance(value, str) and bad_text(value):
                self.problems.append(
                    Problem(self.file, self.line(offset), "value", "invalid \\u escape; fix it")
                )
            return Node(value, self.line(offset)), end

        return scan_located

    def _enter(self, offset: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Fatal(
                Problem(
                    self.file,
                    self.line(offset),
                    "document",
                    f"the document is nested more than {MAX_DEPTH} levels deep",
                )
            )

    def _object(
        self,
        s_and_end: tuple[str, int],
        strict: bool,
        scan: _Scan,
        object_hook: Any,
        pairs_hook: Any,
        memo: dict[str, str],
    ) -> tuple[Node, int]:
        start = s_and_end[1] - 1
        self._enter(start)
        try:
            pairs, end = JSONObject(s_and_end, strict, self._located(scan), None, list, memo)
        finally:
            self.depth -= 1
        items: dict[str, Node] = {}
        size = 1
        for key, node in pairs:
            if bad_text(key):
                self.problems.append(
                    Problem(self.file, node.line, "key", "invalid \\u escape in a key; fix it")
                )
            if key in items:
                first = items[key].line
                self.problems.append(
                    Problem(self.file, node.line, key, f"the key appears twice (also line {first})")
                )
                continue
            node.key_line = node.line
            items[key] = node
            size += node.size
        return Node(items, self.line(start), size=size), end

    def _array(self, s_and_end: tuple[str, int], scan: _Scan) -> tuple[Node, int]:
        start = s_and_end[1] - 1
        self._enter(start)
        try:
            values, end = JSONArray(s_and_end, self._located(scan))
        finally:
            self.depth -= 1
        return Node(values, self.line(start), size=1 + sum(v.size for v in values)), end


def parse_json(text: str, file: str) -> tuple[Node, list[Problem]]:
    """The document's tree and the non-fatal problems; ``Fatal`` when it is not JSON."""
    decoder = _Decoder(text, file)
    try:
        node = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise Fatal(
            Problem(file, exc.lineno, "document", f"not valid JSON: {exc.msg}; fix the syntax")
        ) from None
    except _NotFinite as exc:
        raise Fatal(
            Problem(file, None, "value", f"{exc} is not a JSON number; write a finite number")
        ) from None
    if not isinstance(node, Node):  # pragma: no cover - the wrapped scanner always locates
        raise Fatal(Problem(file, None, "document", "not valid JSON"))
    return node, decoder.problems


class _Pairs(list[tuple[str, Any]]):
    """An object's (key, value) pairs, told apart from an array."""


class _GiveUp(Exception):
    pass


def _container_lines(text: str) -> Iterator[int]:
    """The line of every ``{`` and ``[`` outside strings, in document order."""
    bare = _STRING.sub('""', text)  # strings hold no raw newline or bracket that counts
    newlines = [m.start() for m in re.finditer("\n", bare)]
    for m in re.finditer(r"[\[{]", bare):
        yield bisect.bisect_left(newlines, m.start()) + 1


def _walk(value: Any, lines: Iterator[int], depth: int, line: int) -> Node:
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise _GiveUp
        line = next(lines)
        size = 1
        if isinstance(value, _Pairs):
            items: dict[str, Node] = {}
            for key, v in value:
                if key in items:
                    raise _GiveUp
                child = _walk(v, lines, depth + 1, line)
                child.key_line = child.line
                items[key] = child
                size += child.size
            return Node(items, line, size=size)
        children = [_walk(v, lines, depth + 1, line) for v in value]
        return Node(children, line, size=size + sum(c.size for c in children))
    return Node(value, line)


def parse_json_fast(text: str) -> Node | None:
    """The tree with exact lines for objects and arrays; None when ``parse_json`` is needed."""
    if _SURROGATE_ESCAPE.search(text):
        return None
    try:
        value = json.loads(
            text,
            parse_float=Decimal,
            parse_int=number,
            parse_constant=_constant,
            object_pairs_hook=_Pairs,
        )
        return _walk(value, _container_lines(text), 0, 1)
    except (ValueError, RecursionError, _NotFinite, _GiveUp, StopIteration):
        return None
