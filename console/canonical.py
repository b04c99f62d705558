"""Canonical JSON: the one encoding used for hashing, digests and stored images.

Sorted keys, UTF-8, no insignificant whitespace; exact decimals, dates and times as strings;
bytes as ``{"$b64": ...}``. The same value always encodes to the same bytes, in every process.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

JSONValue = Any


def _default(value: object) -> JSONValue:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"non-finite decimal {value} cannot be journaled")
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=canonical_json)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


_encoder = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_default,
)


try:  # the C encoder, built once: JSONEncoder.encode builds a new one on every call
    from json.encoder import (  # type: ignore[attr-defined]
        c_make_encoder,
        encode_basestring,
    )

    # No circular-reference markers: journaled values are trees built from JSON and rows.
    _c_encode = c_make_encoder(
        None, _default, encode_basestring, None, ":", ",", True, False, False
    )
except ImportError:  # pragma: no cover - CPython always has it
    _c_encode = None


# Scalars the C encoder does not take at top level; a tuple, because ``str | int | ...`` in
# the call would build a union object on every call (half its cost on the hot path).
_SCALARS = (str, int, float, bool, type(None))


def canonical_json(value: object) -> str:
    """Encode ``value`` canonically (see module docstring)."""
    if _c_encode is None or isinstance(value, _SCALARS):
        return _encoder.encode(value)
    return "".join(_c_encode(value, 0))


def canonical_bytes(value: object) -> bytes:
    return canonical_json(value).encode("utf-8")


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def digest(value: object) -> str:
    """sha256 of the canonical encoding: the identity of plans, change sets, runbooks."""
    return sha256_hex(canonical_bytes(value))


def loads(text: str | None) -> JSONValue:
    return None if text is None else json.loads(text)


def jsonable(value: object) -> JSONValue:
    """The plain JSON value that ``value`` encodes to (decimals become strings, ...)."""
    return json.loads(canonical_json(value))


def mask_url(url: str) -> str:
    """A URL safe to journal and display: any password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, colon, _pw = creds.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


def as_mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError("expected a JSON object")
    return value
