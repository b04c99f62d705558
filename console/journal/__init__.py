"""The journal: append-only, hash-chained events plus projections (see DESIGN.md)."""

from console.journal.store import Journal, StoredEvent, Writer, format_ts, new_id, parse_ts, utcnow

__all__ = ["Journal", "StoredEvent", "Writer", "format_ts", "new_id", "parse_ts", "utcnow"]
