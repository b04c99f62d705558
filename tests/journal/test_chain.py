"""The hash chain functions (no database)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from console.canonical import canonical_bytes, canonical_json
from console.journal.chain import event_bytes, genesis_hash, next_hash

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
PAYLOAD = st.dictionaries(
    TEXT, st.none() | st.booleans() | st.integers() | TEXT | st.lists(st.integers(), max_size=3)
)


@settings(max_examples=150)
@given(
    seq=st.integers(1, 2**53),
    ts=TEXT,
    kind=TEXT,
    run_id=st.none() | TEXT,
    corr=st.none() | TEXT,
    actor=TEXT,
    payload=PAYLOAD,
)
def test_event_bytes_are_the_canonical_json_of_the_event(
    seq: int,
    ts: str,
    kind: str,
    run_id: str | None,
    corr: str | None,
    actor: str,
    payload: dict[str, Any],
) -> None:
    body = event_bytes(seq, ts, kind, run_id, corr, actor, canonical_json(payload))
    expected = {
        "actor": actor,
        "corr": corr,
        "kind": kind,
        "payload": payload,
        "run": run_id,
        "seq": seq,
        "ts": ts,
    }
    # String formatting for speed, but byte for byte the canonical encoding of the event.
    assert body == canonical_bytes(expected)
    assert json.loads(body) == expected


def test_event_bytes_example() -> None:
    body = event_bytes(7, "2026-11-27T02:13:00.000000Z", "run.started", "r1", None, "ålice", "{}")
    assert (
        body
        == (
            '{"actor":"ålice","corr":null,"kind":"run.started","payload":{},"run":"r1","seq":7,'
            '"ts":"2026-11-27T02:13:00.000000Z"}'
        ).encode()
    )


def test_next_hash_is_sha256_of_previous_digest_and_body() -> None:
    prev = genesis_hash("j")
    body = b'{"x":1}'
    assert next_hash(prev, body) == hashlib.sha256(bytes.fromhex(prev) + body).hexdigest()
    assert len(next_hash(prev, body)) == 64


def test_genesis_binds_the_chain_to_the_journal() -> None:
    assert genesis_hash("a") == hashlib.sha256(b"backout-journal:a").hexdigest()
    assert genesis_hash("a") != genesis_hash("b")
    # The same events under two journal ids give two unrelated chains.
    body = event_bytes(1, "t", "k", None, None, "x", "{}")
    assert next_hash(genesis_hash("a"), body) != next_hash(genesis_hash("b"), body)


FIELDS = ["seq", "ts", "kind", "run_id", "corr", "actor", "payload"]


@settings(max_examples=200)
@given(field=st.sampled_from(FIELDS), data=st.data())
def test_changing_any_field_changes_the_hash(field: str, data: st.DataObject) -> None:
    event: dict[str, Any] = {
        "seq": 3,
        "ts": "2026-11-27T02:13:00.000000Z",
        "kind": "segment.applied",
        "run_id": "r1",
        "corr": "c1",
        "actor": "alice",
        "payload": '{"applied":[1,2]}',
    }
    prev = genesis_hash("j")
    original = next_hash(prev, event_bytes(**event))
    new: Any
    if field == "seq":
        new = data.draw(st.integers(1, 10**9))
    elif field == "payload":
        new = canonical_json(data.draw(PAYLOAD))
    elif field in ("run_id", "corr"):
        new = data.draw(st.none() | TEXT)
    else:
        new = data.draw(TEXT)
    assume(new != event[field])
    event[field] = new
    assert next_hash(prev, event_bytes(**event)) != original


def test_a_changed_link_changes_every_later_hash() -> None:
    bodies = [event_bytes(i, "t", "k", None, None, "x", "{}") for i in range(1, 6)]

    def chain(start: str) -> list[str]:
        out, h = [], start
        for b in bodies:
            h = next_hash(h, b)
            out.append(h)
        return out

    honest = chain(genesis_hash("j"))
    forged = chain(genesis_hash("k"))
    assert all(a != b for a, b in zip(honest, forged, strict=True))
