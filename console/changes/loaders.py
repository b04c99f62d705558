"""Load a change set from a file: YAML or JSON (the document form, or a list of operations)
and CSV (streamed; see ``console.changes.csv_source`` for its NULL rule).

The format follows the extension: ``.csv`` is CSV, ``.json`` is JSON, anything else is YAML.
Whatever is wrong with the file, ``load_changeset`` raises ``ChangeSetInvalid`` listing every
problem found, each with file, line and field: never another exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from console.changes.csv_source import load_csv
from console.changes.document import Reader, read_document, read_operation_list
from console.changes.errors import MAX_PROBLEMS, ChangeSetInvalid
from console.changes.json_tree import parse_json, parse_json_fast
from console.changes.model import ChangeSet, Problem
from console.changes.records import as_op, check_arguments, key_columns
from console.changes.tree import Fatal, Node
from console.changes.yaml_tree import parse_yaml


def _read_text(path: Path, file: str) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _invalid(file, "file", "the file does not exist; check the path") from None
    except IsADirectoryError:
        raise _invalid(file, "file", "this is a directory; name a change-set file") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _invalid(file, "file", f"the file cannot be read ({reason})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ChangeSetInvalid(
            [Problem(file, line, "file", "the file is not UTF-8 text; save it as UTF-8")]
        ) from None


def _invalid(file: str, fld: str, message: str) -> ChangeSetInvalid:
    return ChangeSetInvalid([Problem(file, None, fld, message)])


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line or 0)[:MAX_PROBLEMS]


def _parse(text: str, path: Path, file: str) -> tuple[Node | None, list[Problem]]:
    try:
        if path.suffix.lower() == ".json":
            return parse_json(text, file)
        return parse_yaml(text, file)
    except Fatal as exc:
        raise ChangeSetInvalid([exc.problem]) from None
    except RecursionError:  # pragma: no cover - depth is bounded before Python's limit
        raise _invalid(file, "document", "the document is nested too deeply") from None


@dataclass(frozen=True)
class _Request:
    """What the caller said about the file (the command line's flags)."""

    file: str
    table: str | None
    key: tuple[str, ...]
    key_given: bool
    op: str | None
    name: str | None
    version: int | None
    target: str | None
    flat_name: str


def _from_tree(root: Node | None, problems: list[Problem], req: _Request) -> ChangeSet:
    reader = Reader(req.file)
    reader.problems.extend(problems)
    if root is None:
        raise _invalid(req.file, "document", "the file is empty; write a change set in it")
    cs: ChangeSet | None = None
    if isinstance(root.value, list):
        reader.problems.extend(check_arguments(req.file, req.table, req.key, req.op, need_op=False))
        if reader.problems or req.table is None:
            raise ChangeSetInvalid(_sorted(reader.problems))
        cs = read_operation_list(
            reader,
            root,
            name=req.flat_name,
            version=req.version or 1,
            table=req.table,
            key=req.key,
            op=as_op(req.op),
            target=req.target,
        )
    elif isinstance(root.value, dict):
        given = ((req.table, "--table"), (req.key if req.key_given else None, "--key"))
        for value, flag in (*given, (req.op, "--op")):
            if value is not None:
                reader.bad(
                    None,
                    flag,
                    f"{flag} is only for CSV files and lists of operations; the steps of this "
                    "change set say it, so drop it",
                )
        cs = read_document(reader, root, name=req.name, version=req.version, target=req.target)
    else:
        reader.bad(
            root.line,
            "document",
            "the file holds a single value; write a change set (changeset, version, steps) "
            "or a list of operations",
        )
    if cs is None or reader.problems:
        raise ChangeSetInvalid(_sorted(reader.problems))
    return cs


def load_changeset(
    path: str | Path,
    *,
    table: str | None = None,
    key: Sequence[str] | None = None,
    op: str | None = None,
    name: str | None = None,
    version: int | None = None,
    target: str | None = None,
) -> ChangeSet:
    """The change set in ``path``.

    ``table``, ``key`` and ``op`` describe a CSV file or a JSON/YAML list (``--table``,
    ``--key``, ``--op``); for a list, ``op`` means its elements are flat rows like CSV records,
    and without it they are operation objects. ``name`` and ``version`` default to the file's
    stem and 1 for those. ``target`` overrides the document's target (and so is part of the
    digest). Raises ``ChangeSetInvalid`` with every problem found.
    """
    path = Path(path)
    file = str(path)
    columns = key_columns(key)
    if version is not None and (isinstance(version, bool) or version < 1):
        raise _invalid(file, "--version", "the version must be a whole number of at least 1")
    if name is not None and not name.strip():
        raise _invalid(file, "--name", "the name is empty; pass a change-set name")
    flat_name = name or path.stem
    if path.suffix.lower() == ".csv":
        problems = check_arguments(file, table, columns, op, need_op=True)
        checked_op = as_op(op)
        if problems or table is None or checked_op is None:
            raise ChangeSetInvalid(problems)
        if not path.is_file():
            _read_text(path, file)  # raises the right sentence for a missing file
        return load_csv(
            path,
            file=file,
            name=flat_name,
            version=version or 1,
            table=table,
            key=columns,
            op=checked_op,
            target=target,
        )

    text = _read_text(path, file)
    request = _Request(file, table, columns, key is not None, op, name, version, target, flat_name)
    if path.suffix.lower() == ".json":
        fast = parse_json_fast(text)
        if fast is not None:
            try:
                return _from_tree(fast, [], request)
            except ChangeSetInvalid:
                pass  # read it again exactly, so that every problem names its own line
    root, problems = _parse(text, path, file)
    return _from_tree(root, problems, request)
