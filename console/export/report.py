"""The Markdown incident report (filled in below)."""

from __future__ import annotations

from typing import Any

from console.journal.store import Journal


def render_markdown(journal: Journal, bundle: dict[str, Any]) -> str:
    return f"# Incident report: run {bundle['run']['id']}\n"
