"""Offline verification of an evidence bundle: string formatting and sha256, no journal."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from console.errors import BadInput
from console.export.bundle import FORMAT, NOTE, events_digest
from console.journal.chain import event_bytes, genesis_hash, next_hash

_STR_FIELDS = ("ts", "kind", "actor", "payload_text", "hash", "prev_hash")
_OPT_FIELDS = ("run_id", "corr")


@dataclass
class BundleReport:
    ok: bool
    bundle: str
    journal_id: str = ""
    run: str = ""
    events: int = 0
    rehashed: int = 0
    links: int = 0
    left_out: int = 0
    head_seq: int = 0
    head_hash: str = ""
    first_bad_seq: int | None = None
    problem: str | None = None
    note: str = NOTE
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_bundle(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(
            f"{path}: no such bundle file; export one with `backout export RUN`."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the bundle ({exc}).") from exc
    try:
        return json.loads(text)
    except ValueError:
        return None  # reported as a failed verification: a damaged bundle is evidence too


def _is_hex64(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 64:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return value == value.lower()


def verify_bundle(data: Any, name: str = "bundle") -> BundleReport:
    """Re-hash every included event and check the links between consecutive ones."""
    report = BundleReport(ok=False, bundle=name)

    def fail(seq: int | None, problem: str) -> BundleReport:
        report.first_bad_seq, report.problem = seq, problem
        return report

    if data is None:
        return fail(None, "the bundle is not valid JSON (damaged or edited)")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInput(f"{name}: not a backout evidence bundle (format {FORMAT} expected).")
    report.journal_id = str(data.get("journal_id", ""))
    run = data.get("run")
    report.run = str(run.get("id", "")) if isinstance(run, dict) else ""
    events = data.get("events")
    if not isinstance(events, list):
        return fail(None, "the bundle has no list of events")
    report.events = len(events)
    prev_seq: int | None = None
    prev_hash: str | None = None
    for index, e in enumerate(events):
        seq = e.get("seq") if isinstance(e, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            return fail(prev_seq, f"event #{index + 1} in the bundle has no valid seq")
        assert isinstance(e, dict)
        for key in _STR_FIELDS:
            if not isinstance(e.get(key), str):
                return fail(seq, f"event {seq}: field {key} is missing or not text")
        for key in _OPT_FIELDS:
            if key not in e or not (e[key] is None or isinstance(e[key], str)):
                return fail(seq, f"event {seq}: field {key} is missing or not text/null")
        if prev_seq is not None and seq <= prev_seq:
            return fail(seq, f"event {seq} is out of order (after event {prev_seq})")
        if not _is_hex64(e["prev_hash"]) or not _is_hex64(e["hash"]):
            return fail(seq, f"event {seq}: hash or prev_hash is not a sha256 hex digest")
        if seq == 1 and e["prev_hash"] != genesis_hash(report.journal_id):
            return fail(1, "event 1 does not start this journal's chain (journal id changed)")
        body = event_bytes(
            seq, e["ts"], e["kind"], e["run_id"], e["corr"], e["actor"], e["payload_text"]
        )
        if next_hash(e["prev_hash"], body) != e["hash"]:
            return fail(
                seq,
                f"event {seq} was changed: its content and prev_hash do not re-hash to its hash",
            )
        report.rehashed += 1
        if prev_seq is not None and seq == prev_seq + 1:
            if e["prev_hash"] != prev_hash:
                return fail(
                    seq, f"event {seq} does not link to event {prev_seq} (prev_hash differs)"
                )
            report.links += 1
        prev_seq, prev_hash = seq, e["hash"]
    head = data.get("head")
    if isinstance(head, dict) and isinstance(head.get("seq"), int):
        report.head_seq, report.head_hash = int(head["seq"]), str(head.get("hash", ""))
        if prev_seq is not None and prev_seq > report.head_seq:
            return fail(prev_seq, f"event {prev_seq} is after the stated head {report.head_seq}")
        if prev_seq == report.head_seq and prev_hash != report.head_hash:
            return fail(prev_seq, f"event {prev_seq} is the head but its hash is not the head's")
    else:
        report.notes.append("the bundle states no journal head")
    if data.get("digest") != events_digest(events):
        return fail(None, "the bundle digest does not match its events (events added or removed)")
    filtered = data.get("filtered")
    if isinstance(filtered, dict) and isinstance(filtered.get("left_out"), int):
        report.left_out = int(filtered["left_out"])
        expected = report.head_seq - len(events)
        if report.head_seq and report.left_out != expected:
            report.notes.append(
                f"the filter statement says {report.left_out} events were left out, "
                f"but head and events imply {expected}"
            )
    report.notes.append(
        "run summaries and the filter statement are copies for reading; only events are hashed"
    )
    report.ok = True
    return report
