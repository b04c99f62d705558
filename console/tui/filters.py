"""The `/` filter language, shared by every list (headless, no Textual).

``status:failed target:crm price !drill:yes``: terms are ANDed; ``field:a,b`` matches any of
the values; a leading ``!`` negates a term; a bare word is free text. Each list declares its
fields (with aliases) and turns terms into SQL in ``data.py``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass


class FilterError(ValueError):
    """A filter the user must fix; the message is shown under the filter input."""


@dataclass(frozen=True, slots=True)
class Term:
    field: str  # canonical field name; "" for free text
    values: tuple[str, ...]
    negate: bool = False

    def __str__(self) -> str:
        body = ",".join(self.values)
        return f"{'!' if self.negate else ''}{self.field + ':' if self.field else ''}{body}"


@dataclass(frozen=True, slots=True)
class Filter:
    text: str
    terms: tuple[Term, ...]

    def __bool__(self) -> bool:
        return bool(self.terms)


EMPTY = Filter("", ())


def parse(text: str, fields: Mapping[str, str]) -> Filter:
    """Parse ``text``; ``fields`` maps every accepted name and alias to its canonical name."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise FilterError(f"{exc}; close the quote.") from None
    terms: list[Term] = []
    for token in tokens:
        negate = token.startswith("!")
        body = token[1:] if negate else token
        if not body:
            raise FilterError("'!' must precede a term, as in !status:paused.")
        name, sep, rest = body.partition(":")
        if sep and name.lower() in fields:
            values = tuple(v for v in (p.strip() for p in rest.split(",")) if v)
            if not values:
                raise FilterError(f"'{name}:' needs a value, as in {name}:{_example(name)}.")
            terms.append(Term(fields[name.lower()], values, negate))
        elif sep and name and " " not in name and not name.startswith(("http", "sqlite")):
            known = ", ".join(sorted({f"{f}:" for f in fields.values()}))
            raise FilterError(f"unknown field '{name}:'; use {known} or plain words.")
        else:
            terms.append(Term("", (body,), negate))
    return Filter(text, tuple(terms))


def _example(name: str) -> str:
    return {"status": "failed", "target": "crm", "kind": "segment.*"}.get(name, "value")


def truthy(value: str) -> bool:
    v = value.lower()
    if v in {"yes", "y", "true", "1", "on"}:
        return True
    if v in {"no", "n", "false", "0", "off"}:
        return False
    raise FilterError(f"'{value}' is not yes or no.")


def match_prefix(values: tuple[str, ...], choices: tuple[str, ...], what: str) -> list[str]:
    """Values may be prefixes of known choices (``status:roll`` matches every rollback state)."""
    out: list[str] = []
    for v in values:
        hits = [c for c in choices if c.startswith(v.lower())]
        if not hits:
            raise FilterError(f"no {what} starts with '{v}'; use one of {', '.join(choices)}.")
        out.extend(hits)
    return out
