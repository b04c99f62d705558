"""Drill commands (registered on ``drill_app``)."""

from __future__ import annotations
