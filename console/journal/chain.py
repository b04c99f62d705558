"""The hash chain: ``hash = sha256(prev_hash || canonical bytes of the event)``.

An event's canonical bytes are built from its columns, with the payload stored as canonical
JSON text, so verifying never parses a payload: it is string formatting and sha256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from json.encoder import encode_basestring

_encode: Callable[[str], str] = encode_basestring


def _s(value: str | None) -> str:
    return "null" if value is None else str(encode_basestring(value))


def event_bytes(
    seq: int,
    ts: str,
    kind: str,
    run_id: str | None,
    corr: str | None,
    actor: str,
    payload: str,
) -> bytes:
    """Canonical JSON (sorted keys) of the event; ``payload`` is already canonical JSON."""
    # _s() inlined: this runs once per event on append and on verify.
    enc = _encode
    return (
        f'{{"actor":{"null" if actor is None else enc(actor)},'
        f'"corr":{"null" if corr is None else enc(corr)},'
        f'"kind":{"null" if kind is None else enc(kind)},"payload":{payload},'
        f'"run":{"null" if run_id is None else enc(run_id)},"seq":{seq},'
        f'"ts":{"null" if ts is None else enc(ts)}}}'
    ).encode()


def genesis_hash(journal_id: str) -> str:
    """The ``prev_hash`` of event 1: binds the chain to this journal's id."""
    return hashlib.sha256(f"backout-journal:{journal_id}".encode()).hexdigest()


def next_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()
