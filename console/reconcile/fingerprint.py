"""Stable row fingerprints and key encodings.

A fingerprint is blake2b (16 bytes) over the canonical JSON of a row's normalised values in
compared-column order (key columns included, so it binds the key too). It is the same in
every process and on every machine: never Python's salted ``hash`` for anything stored.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from hashlib import blake2b
from typing import Any

from console.canonical import canonical_json, digest
from console.errors import BadInput
from console.reconcile.normalise import Normalisers
from console.targets.types import KeyTuple, Row, TableInfo

FP_SIZE = 16
NormKey = tuple[Any, ...]
Values = tuple[Any, ...]


def _list_encoder() -> Callable[[Sequence[Any]], str]:
    """canonical_json for a flat list of JSON-native values, without building an encoder per
    call (the C encoder, when this Python has it; checked against canonical_json)."""
    try:
        from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - other Pythons
        c_make_encoder = None
    if c_make_encoder is None:  # pragma: no cover
        return lambda values: canonical_json(list(values))
    enc = c_make_encoder(None, None, encode_basestring, None, ":", ",", True, False, False)

    def encode(values: Sequence[Any]) -> str:
        return "".join(enc(values, 0))

    probe = [1, -0.5, 'é"\n', None, True, 10**20]
    if encode(probe) != canonical_json(probe):  # pragma: no cover
        return lambda values: canonical_json(list(values))
    return encode


_encode = _list_encoder()


def encode_values(values: Sequence[Any]) -> bytes:
    """The canonical encoding of normalised values (canonical JSON of a list)."""
    return _encode(values).encode("utf-8")


def fingerprint_values(values: Sequence[Any]) -> bytes:
    """blake2b-128 of the canonical encoding of already normalised values."""
    return blake2b(_encode(values).encode("utf-8"), digest_size=FP_SIZE).digest()


def key_text(key: Sequence[Any]) -> str:
    """The journal's text form of a key: canonical JSON of its values in key order."""
    return canonical_json(list(key))


def state_digest(entries: Iterable[tuple[str, bytes | None]]) -> str:
    """sha256 over (key text, fingerprint or absent) pairs, sorted: order-independent."""
    return digest(sorted((k, None if fp is None else fp.hex()) for k, fp in entries))


def _getter(columns: Sequence[str]) -> Callable[[Row], tuple[Any, ...]]:
    if len(columns) == 1:
        (only,) = columns
        return lambda row: (row[only],)
    return operator.itemgetter(*columns)


class RowCodec:
    """Compiled access to one table's rows: raw values, normalised values, keys, fingerprints.

    ``raw()`` is the cheap path (an itemgetter): rows with equal raw values have equal
    fingerprints by construction, so callers hash only rows whose raw values differ.
    """

    def __init__(
        self, table: TableInfo, key_columns: Sequence[str], normalisers: Normalisers | None = None
    ) -> None:
        self.table = table
        self.normalisers = normalisers or Normalisers()
        self.key_columns = tuple(key_columns)
        for c in self.key_columns:
            if not table.has(c):
                raise BadInput(f"Key column {c} is not in table {table.name}.")
            if c in self.normalisers.ignored or c in self.normalisers.rules:
                raise BadInput(f"Reconcile normaliser {c}: key columns are compared exactly.")
        self.columns: tuple[str, ...] = self.normalisers.compared(table)
        self._fns = self.normalisers.compile(table, self.columns)
        self._key_fns = [self.normalisers.compile(table, [c])[0] for c in self.key_columns]
        self._get = _getter(self.columns)
        self._key_get = _getter(self.key_columns)
        self.key_positions = tuple(self.columns.index(c) for c in self.key_columns)
        # key(raw_key): the normalised key, equal for keys equal by meaning (1, "1", 1.0 in an
        # int key); an attribute, not a method, because it runs once per row
        self.key: Callable[[Sequence[Any]], NormKey] = self._make_key()
        # row_key(row) = key(raw_key(row)) in one call; KeyError if a key column is missing
        self.row_key: Callable[[Row], NormKey] = self._make_row_key()
        self.getter = self._get  # raw() without the fallback for partial images

    # -- raw ------------------------------------------------------------------------------

    def raw(self, row: Row) -> tuple[Any, ...]:
        try:
            return self._get(row)
        except KeyError:  # a partial image: absent columns read as NULL
            return tuple(row.get(c) for c in self.columns)

    def raw_key(self, row: Row) -> KeyTuple:
        try:
            return self._key_get(row)
        except KeyError:
            missing = [c for c in self.key_columns if c not in row]
            raise BadInput(f"A row of {self.table.name} has no key column {missing[0]}.") from None

    # -- normalised -----------------------------------------------------------------------

    def _make_row_key(self) -> Callable[[Row], NormKey]:
        if len(self.key_columns) != 1:
            get, key = self._key_get, self.key
            return lambda row: key(get(row))
        (column,) = self.key_columns
        (f,) = self._key_fns
        kind = self.table.columns[column].kind
        plain = int if kind == "int" else str if kind == "text" else None

        def one(row: Row) -> NormKey:
            v = row[column]
            return (v,) if type(v) is plain else (f(v),)

        return one

    def _make_key(self) -> Callable[[Sequence[Any]], NormKey]:
        """``key`` specialised: one key column of int or text (the common case) returns the
        given tuple itself when it is already normal."""
        fns = self._key_fns
        if len(fns) == 1:
            (f,) = fns
            kind = self.table.columns[self.key_columns[0]].kind
            plain = int if kind == "int" else str if kind == "text" else None

            def one(rk: Sequence[Any]) -> NormKey:
                v = rk[0]
                if type(v) is plain and type(rk) is tuple:
                    return rk
                return (f(v),)

            return one
        return lambda rk: tuple([f(v) for f, v in zip(fns, rk, strict=True)])

    def values(self, raw: Sequence[Any]) -> Values:
        return tuple([f(v) for f, v in zip(self._fns, raw, strict=True)])

    def values_like(self, raw: Sequence[Any], ref_raw: Sequence[Any], ref_values: Values) -> Values:
        """``values(raw)``, reusing ``ref_values`` where the raw value is the reference's
        (same type and value): rows of one key differ in a few columns only."""
        return tuple(
            [
                rv if (r is rr or (type(r) is type(rr) and r == rr)) else f(r)
                for f, r, rr, rv in zip(self._fns, raw, ref_raw, ref_values, strict=True)
            ]
        )

    def row_values(self, row: Row | None) -> Values | None:
        return None if row is None else self.values(self.raw(row))

    def fingerprint(self, row: Row | None) -> bytes | None:
        return None if row is None else fingerprint_values(self.values(self.raw(row)))

    def fingerprint_hex(self, row: Row | None) -> str | None:
        fp = self.fingerprint(row)
        return None if fp is None else fp.hex()

    def describe(self) -> dict[str, Any]:
        """What a fingerprint covers, for evidence."""
        return {
            "table": self.table.name,
            "key": list(self.key_columns),
            "columns": list(self.columns),
            "normalisers": self.normalisers.as_dict(),
            "algorithm": f"blake2b-{FP_SIZE * 8} over canonical JSON of normalised values",
        }
