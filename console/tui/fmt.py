"""Formatting for the console: numbers, times, durations, JSON (headless, no Textual)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def count(n: int) -> str:
    return f"{n:,}"


def position(index: int, total: int) -> str:
    """``12,345 / 104,876`` (1-based); ``0 / 0`` for an empty list."""
    return f"{min(index + 1, total):,} / {total:,}" if total else "0 / 0"


def epoch(ts: str | None) -> float | None:
    """A journal timestamp (UTC ``...Z``) as POSIX seconds."""
    if not ts:
        return None
    try:
        return dt.datetime.strptime(ts, _TS_FORMAT).replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


def clock_time(ts: str | None, *, millis: bool = False) -> str:
    """``02:13:05`` (UTC; the journal's time zone, the same on every terminal)."""
    if not ts or len(ts) < 19:
        return "—"
    return ts[11:23] if millis else ts[11:19]


def date_time(ts: str | None, *, short: bool = False) -> str:
    if not ts or len(ts) < 19:
        return "—"
    return f"{ts[5:10]} {ts[11:16]}" if short else f"{ts[:10]} {ts[11:19]}"


def at(seconds: float) -> str:
    """POSIX seconds → ``02:13:05.120``."""
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%H:%M:%S.%f")[:12]


def duration(seconds: float | None) -> str:
    """``850ms``, ``42.5s``, ``4m12s``, ``3h05m``, ``2d04h``."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def span(start: str | None, end: str | None) -> float | None:
    a, b = epoch(start), epoch(end)
    return None if a is None or b is None else max(0.0, b - a)


def compact(value: Any, limit: int = 60) -> str:
    """A value in one short line: strings bare, everything else as compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def pretty(value: Any) -> str:
    """Pretty JSON for structures and for strings that hold JSON; other values as text."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in "{[":
            try:
                return json.dumps(json.loads(stripped), indent=2, ensure_ascii=False)
            except ValueError:
                return value
        return value
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} kB"
    return f"{n / 1024 / 1024:.1f} MB"
