"""Field-by-field comparison of a row's images: before / ours / now (headless)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console.tui import data, fmt


class _Missing:
    """The row (or field) does not exist in this image."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class FieldDiff:
    field: str
    before: Any
    ours: Any
    now: Any
    changed: bool  # this batch changed it (before ≠ ours)
    drifted: bool  # someone changed it after us (now ≠ ours)


@dataclass(frozen=True, slots=True)
class RowDiff:
    images: tuple[str, ...]  # ("before", "ours") or ("before", "ours", "now")
    fields: list[FieldDiff]
    row_before: bool
    row_ours: bool
    row_now: bool


def _image(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def row_diff(op: data.OpRow) -> RowDiff:
    """The op's images; a conflict's detail (before, ours, now) wins when present."""
    detail = fmt.loads(op.detail) if op.detail else None
    detail = detail if isinstance(detail, dict) else {}
    before = _image(detail.get("before", fmt.loads(op.before)))
    ours = _image(detail.get("ours", fmt.loads(op.after)))
    has_now = "now" in detail
    return compare(before, ours, _image(detail.get("now")) if has_now else None, has_now=has_now)


def compare(
    before: dict[str, Any] | None,
    ours: dict[str, Any] | None,
    now: dict[str, Any] | None,
    *,
    has_now: bool,
) -> RowDiff:
    """Three images of one row, field by field (the first-seen order of their fields)."""
    names: list[str] = []
    for image in (before, ours, now):
        for name in image or {}:
            if name not in names:
                names.append(name)
    fields = []
    for name in names:
        b = before.get(name, MISSING) if before is not None else MISSING
        o = ours.get(name, MISSING) if ours is not None else MISSING
        n = now.get(name, MISSING) if now is not None else MISSING
        fields.append(FieldDiff(name, b, o, n, changed=b != o, drifted=has_now and n != o))
    images = ("before", "ours", "now") if has_now else ("before", "ours")
    return RowDiff(images, fields, before is not None, ours is not None, now is not None)
