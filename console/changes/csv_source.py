"""CSV change sets, streamed: one step, one operation per row, never the whole file in memory.

The header row names the columns; every other row is one record: the key columns plus, for
``update``, the columns to set and, for ``insert``/``upsert``, the whole row. A ``delete`` file
has only the key columns. Blank lines are skipped.

NULL rule: **an empty cell is NULL**, for every column and every operation (an update with an
empty ``price`` cell sets ``price`` to NULL). There is no way to write an empty string in a CSV
change set: use YAML or JSON for that. Any other text, ``\\N`` and ``NULL`` included, is taken
literally and converted by the column's type at validation.

The file must be UTF-8 (a byte-order mark is allowed) and comma-separated. Loading reads it once
to check its shape, count the rows and compute the digest; ``Step.operations`` reads it again
on every call and refuses to go on if the file changed since it was loaded (size and mtime
before reading, a hash of the raw text after).
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from console.changes.digest import ContentDigest, FlatOps
from console.changes.errors import MAX_PROBLEMS, ChangeSetInvalid
from console.changes.model import ChangeSet, Operation, OpName, Options, Problem, Step, Touchpoints
from console.changes.records import shape_problem


class _Shape:
    """What the header says; builds operations from rows once the header checks."""

    def __init__(
        self, file: str, line: int, header: list[str], key: tuple[str, ...], op: OpName
    ) -> None:
        self.file, self.line, self.header, self.key, self.op = file, line, header, key, op
        where = {name: i for i, name in enumerate(header)}
        self._key = [(c, where[c]) for c in key if c in where]
        if op == "delete":
            self._values: list[tuple[str, int]] = []
        elif op == "update":
            self._values = [(c, i) for i, c in enumerate(header) if c not in key]
        else:
            self._values = [(c, i) for i, c in enumerate(header)]
        self.flat = FlatOps(op, self._key, self._values)

    def problems(self) -> list[Problem]:
        out: list[Problem] = []

        def bad(fld: str, message: str) -> None:
            out.append(Problem(self.file, self.line, fld, message))

        if len(self.header) == 1 and any(sep in self.header[0] for sep in ";\t|"):
            bad("header", "the file is not comma-separated; save it as CSV with commas")
            return out
        seen: set[str] = set()
        for i, name in enumerate(self.header, start=1):
            if not name:
                bad(f"column {i}", "the header names no column here; name every column")
            elif name in seen:
                bad(name, "the header names this column twice; keep one")
            seen.add(name)
        missing = [c for c in self.key if c not in seen]
        if missing:
            bad(
                "header",
                f"the key column {', '.join(missing)} is not in the header; add it or fix --key",
            )
        shape = shape_problem(self.op, self.key, self.header)
        if shape is not None:
            bad(shape[0], shape[1])
        return out

    def operation(self, line: int, cells: list[str]) -> Operation:
        # `or None`: the empty cell is NULL (module docstring); any other text is truthy.
        key = {c: cells[i] or None for c, i in self._key}
        values = {c: cells[i] or None for c, i in self._values}
        return Operation(self.op, key, values, line)


def _hashed(lines: Iterator[str], digest: Any) -> Iterator[str]:
    for line in lines:
        digest.update(line.encode("utf-8", "surrogatepass"))
        yield line


def _rows(path: Path, file: str, raw: Any) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of every non-blank row, the header included; feeds ``raw``."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ChangeSetInvalid(
            [Problem(file, None, "file", f"the file cannot be read ({reason}); check it")]
        ) from None
    with handle:
        reader = csv.reader(_hashed(iter(handle), raw), strict=True)
        last = 0
        try:
            for cells in reader:
                line, last = last + 1, reader.line_num
                if cells:
                    yield line, cells
        except csv.Error as exc:
            raise ChangeSetInvalid(
                [Problem(file, last + 1, "row", f"not valid CSV: {exc}; fix the quoting")]
            ) from None
        except UnicodeDecodeError:
            raise ChangeSetInvalid(
                [Problem(file, last + 1, "file", "the file is not UTF-8 text; save it as UTF-8")]
            ) from None


def _fingerprint(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)  # gone or unreadable: never equal to what was loaded
    return st.st_size, st.st_mtime_ns


def _ragged(file: str, line: int, cells: int, header: int) -> Problem:
    return Problem(
        file,
        line,
        "row",
        f"the row has {cells} cells but the header {header}; quote cells that contain commas",
    )


def load_csv(
    path: Path,
    *,
    file: str,
    name: str,
    version: int,
    table: str,
    key: tuple[str, ...],
    op: OpName,
    target: str | None,
) -> ChangeSet:
    """First pass: shape, row count and digest; the rows themselves are not kept."""
    options, touchpoints = Options(), Touchpoints()
    content = ContentDigest(name, version, target, options, touchpoints)
    content.step(table, table, key, None, None, ())
    fingerprint = _fingerprint(path)
    raw = hashlib.sha256()
    problems: list[Problem] = []
    shape: _Shape | None = None
    count = 0
    for line, cells in _rows(path, file, raw):
        if shape is None:
            shape = _Shape(file, line, cells, key, op)
            problems.extend(shape.problems())
            if problems:
                break
            continue
        count += 1
        if len(cells) != len(shape.header):
            problems.append(_ragged(file, line, len(cells), len(shape.header)))
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        content.flat_op(shape.flat, [cell or None for cell in cells])
    if shape is None:
        problems.append(Problem(file, 1, "header", "the file is empty; add a header and rows"))
    elif count == 0 and not problems:
        problems.append(
            Problem(file, shape.line + 1, "rows", "the file has a header but no rows; add rows")
        )
    if problems or shape is None:
        raise ChangeSetInvalid(problems)
    header = shape
    raw_digest = raw.hexdigest()

    def operations() -> Iterator[Operation]:
        """Re-read the file, refusing a file that changed since it was loaded."""
        changed = ChangeSetInvalid(
            [Problem(file, None, "file", "the file changed since it was loaded; load it again")]
        )
        if _fingerprint(path) != fingerprint:
            raise changed
        again = hashlib.sha256()
        rows = iter(_rows(path, file, again))
        first = next(rows, None)
        if first is None or first[1] != header.header:
            raise changed
        width = len(header.header)
        done = 0
        for line, cells in rows:
            if len(cells) != width:
                raise changed
            done += 1
            yield header.operation(line, cells)
        if done != count or again.hexdigest() != raw_digest:
            raise changed

    step = Step(
        name=table, table=table, key=key, operations=operations, count=count, line=header.line
    )
    return ChangeSet(
        name=name,
        version=version,
        digest=content.hexdigest(),
        target=target,
        steps=(step,),
        options=options,
        touchpoints=touchpoints,
        source=file,
    )
