"""Summary notifications after every reconciliation and every rollback, to the channels
configured in ``backout.toml`` ``[notify]`` (``--no-notify`` skips them): a JSON log line and
a webhook POST with a Slack-compatible ``text`` field. Stdout is the CLI's own.

Delivery is best effort by design: every webhook attempt is journaled (``notify.sent`` /
``notify.failed``) and retried with backoff, a JSON log that cannot be written is journaled
as ``notify.failed`` too, and a failure never fails the caller.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from console.canonical import jsonable
from console.config import Settings
from console.journal import Journal

TIMEOUT_S = 5.0
BACKOFF_S = 0.2  # first retry delay; doubles per attempt, capped
MAX_BACKOFF_S = 5.0


def _line(text: str, summary: Mapping[str, Any]) -> str:
    return json.dumps(jsonable({"text": text, **summary}), sort_keys=True, default=str)


def write_json_log(path: str, text: str, summary: Mapping[str, Any]) -> str:
    """Append one JSON line; returns "ok" or the error (never raises)."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(_line(text, summary) + "\n")
    except OSError as exc:
        return f"failed: {exc.strerror or exc}"
    return "ok"


def post_webhook(
    journal: Journal | None,
    run_id: str | None,
    url: str,
    text: str,
    summary: Mapping[str, Any],
    *,
    retries: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """POST the summary as JSON (``text`` first-class for Slack); ``retries`` more attempts
    after the first, each outcome journaled. Returns "ok" or the last error."""
    body = _line(text, summary).encode()
    shown = _where(url)
    error = "not attempted"
    for attempt in range(1, retries + 2):
        try:
            req = urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                status = int(resp.status)
            _record(journal, run_id, "notify.sent", shown, attempt, status=status)
            return "ok"
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = str(getattr(exc, "reason", None) or exc)
        _record(journal, run_id, "notify.failed", shown, attempt, error=error)
        if attempt <= retries:
            sleep(min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (attempt - 1)))
    return f"failed: {error}"


def _where(url: str) -> str:
    """What is journaled of the URL: scheme and host only (a Slack webhook's path is its
    secret, and credentials never go in the journal)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def _record(
    journal: Journal | None,
    run_id: str | None,
    kind: str,
    url: str,
    attempt: int,
    *,
    channel: str = "webhook",
    **extra: Any,
) -> None:
    if journal is None:
        return
    # recording a notification must never fail the caller
    with contextlib.suppress(Exception):
        journal.append(
            kind, {"channel": channel, "url": url, "attempt": attempt, **extra}, run_id=run_id
        )


def configured(settings: Settings) -> bool:
    """Whether ``[notify]`` names any channel (then every reconciliation and rollback uses
    them unless told not to)."""
    return bool(settings.notify.webhook or settings.notify.json_log)


def wanted(settings: Settings, notify: bool | None) -> bool:
    """``notify`` None (the default): the configured channels; False: none (``--no-notify``)."""
    return configured(settings) if notify is None else notify and configured(settings)


def send(
    journal: Journal | None,
    settings: Settings,
    run_id: str | None,
    text: str,
    summary: Mapping[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """Send to every configured channel; channel -> "ok" / "failed: ...". Stdout is the
    caller's (the CLI prints the same ``text``)."""
    cfg = settings.notify
    out: dict[str, str] = {}
    if cfg.json_log:
        out["json_log"] = write_json_log(cfg.json_log, text, summary)
        if out["json_log"] != "ok":
            _record(
                journal,
                run_id,
                "notify.failed",
                cfg.json_log,
                1,
                channel="json_log",
                error=out["json_log"],
            )
    if cfg.webhook:
        out["webhook"] = post_webhook(
            journal, run_id, cfg.webhook, text, summary, retries=cfg.retries, sleep=sleep
        )
    return out


def notify_rollback(journal: Journal | None, settings: Settings, report: Any) -> dict[str, str]:
    """For the rollback: its ``RunReport`` summarised to the same channels."""
    run_id = getattr(report, "run_id", None)
    summary = {
        "event": "rollback",
        "run_id": run_id,
        "status": getattr(report, "status", None),
        "exit_code": int(getattr(report, "exit_code", 0)),
        "extra": dict(getattr(report, "extra", {}) or {}),
    }
    text = str(getattr(report, "message", "") or f"rollback of run {run_id}")
    return send(journal, settings, run_id, text, summary)
