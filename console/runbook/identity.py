"""Who acts, and what time it is.

Identity: on a SQLite journal (one machine) the claimed user (``--as``, ``BACKOUT_USER``, the
config, the OS user). On a PostgreSQL journal the authenticated database role is the identity
(``SELECT current_user``), so nobody can sign as someone else; a different ``--as`` is refused.

Clock: ``BACKOUT_CLOCK`` overrides the journal's clock for drills and tests: an ISO instant
(``2026-11-27T10:00:00Z``: time stands still there) or an offset from now (``+31m``, ``-2d``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable

from sqlalchemy import text

from console.config import parse_duration
from console.errors import BadInput
from console.journal import Journal
from console.journal.store import utcnow

_OFFSET = re.compile(r"^([+-])\s*(\S+)$")


def database_user(journal: Journal) -> str | None:
    """The authenticated role on a PostgreSQL journal; None on SQLite."""
    if journal.dialect != "postgresql":
        return None
    with journal.read() as conn:
        return str(conn.execute(text("SELECT current_user")).scalar_one())


def clock_from_env(value: str | None = None) -> Callable[[], dt.datetime] | None:
    raw = value if value is not None else os.environ.get("BACKOUT_CLOCK")
    if not raw:
        return None
    m = _OFFSET.match(raw.strip())
    if m:
        try:
            delta = parse_duration(m.group(2))
        except ValueError:
            raise BadInput(
                f"BACKOUT_CLOCK={raw}: use an ISO time or an offset such as +31m."
            ) from None
        sign = 1 if m.group(1) == "+" else -1
        return lambda: utcnow() + sign * delta
    try:
        fixed = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"BACKOUT_CLOCK={raw}: use an ISO time or an offset such as +31m.") from None
    if fixed.tzinfo is None:
        fixed = fixed.replace(tzinfo=dt.UTC)
    return lambda: fixed
