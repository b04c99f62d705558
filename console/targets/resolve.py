"""Name a target: a name from backout.toml, a SQLAlchemy URL, or a SQLite file path."""

from __future__ import annotations

import os
from pathlib import Path

from console.config import Settings, TargetConfig
from console.errors import BadInput, TargetUnavailable
from console.targets.sql import SqlTarget, sqlalchemy_url

# A target that nothing names an environment for is treated as the strictest one.
DEFAULT_ENVIRONMENT = "production"


def _configured(name_or_url: str, settings: Settings) -> TargetConfig | None:
    """The configured target this names: by name, or by the same URL."""
    spec = name_or_url.strip()
    found = settings.targets.get(spec)
    if found is not None:
        return found
    if "://" not in spec and not Path(spec).expanduser().is_file():
        return None
    try:
        url = sqlalchemy_url(spec)
        for cfg in settings.targets.values():
            if sqlalchemy_url(cfg.url) == url:
                return cfg
    except BadInput:
        return None
    return None


def _is_bare_name(spec: str) -> bool:
    return "://" not in spec and os.sep not in spec and "/" not in spec


def open_target(name_or_url: str, settings: Settings) -> SqlTarget:
    """Open the target named by ``name_or_url`` (see module docstring)."""
    spec = name_or_url.strip()
    if not spec:
        raise TargetUnavailable(
            "no target given; pass a URL, a SQLite file path or a name from backout.toml."
        )
    cfg = _configured(spec, settings)
    if cfg is not None:
        return SqlTarget(cfg.url, statement_timeout_ms=cfg.statement_timeout_ms)
    if "://" in spec:
        return SqlTarget(spec)
    if Path(spec).expanduser().is_file():
        return SqlTarget(spec)
    if _is_bare_name(spec):
        where = settings.source or "backout.toml"
        raise TargetUnavailable(
            f"target '{spec}' is not defined in {where}; add a [targets.{spec}] table with "
            "its url, or give a URL or a SQLite file path."
        )
    # Opening a missing path would create an empty SQLite file: refuse instead.
    raise TargetUnavailable(f"database file '{spec}' does not exist; check the path.")


def is_configured(name_or_url: str, settings: Settings) -> bool:
    """Is this a target of backout.toml (by name, or by the same URL)?"""
    return _configured(name_or_url, settings) is not None


def environment_of(name_or_url: str, settings: Settings) -> str:
    """The configured environment of a target; unconfigured targets count as production."""
    cfg = _configured(name_or_url, settings)
    return cfg.environment if cfg is not None else DEFAULT_ENVIRONMENT
