"""A reconciliation finding as a row diff: before / expected / actual, field by field.

The three images show at once (they travel with the finding); DeepDiff's explanation (each
field's class, tolerance, normaliser and the paths inside JSON values) is computed in a
thread worker for this row only, and fills in when it arrives.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.widgets import Static

from console.tui import data, fmt, look
from console.tui.diff import compare
from console.tui.screens.row_diff import DiffScreen, cell

TITLES = ("before", "expected", "actual")


def _field_note(field: dict[str, Any] | None) -> Text:
    """The explanation's word on one field: its class, tolerance, normaliser, JSON paths."""
    if field is None:
        return Text("")
    out = look.finding(str(field["class"])) if field.get("class") else Text("as intended")
    if field.get("tolerance"):
        out.append(f"\n± {field['tolerance']}", style="cyan")
    if field.get("normaliser"):
        out.append(f"\n{field['normaliser']}", style="dim")
    paths = [p for p in field.get("paths") or [] if p != f"root[{field['column']!r}]"]
    if paths:
        out.append("\n" + "\n".join(paths[:4]), style="dim")
    return out


def render_finding(
    rec: data.Reconciliation,
    row: data.FindingRow,
    explained: dict[str, Any] | None,
    error: str | None = None,
) -> RenderableType:
    f = row.finding
    reference = "expected" if rec.against == "expected" and f.in_scope else "before"
    diff = compare(f.before, f.expected, f.actual, has_now=True)
    notes = {str(x["column"]): x for x in (explained or {}).get("fields", [])}
    head = Text()
    head.append(" finding ", style="bold reverse")
    head.append(" ")
    head.append_text(look.finding(f.cls))
    head.append(f"  {row.table} {fmt.compact(list(f.key), 60)}", style="bold")
    if f.op_no is not None:
        head.append(f"   op #{f.op_no:,}", style="dim")
    head.append(
        f"   against {rec.against}" + ("" if f.in_scope else " · outside the change set"),
        style="dim",
    )
    table = Table(box=box.SIMPLE_HEAD, expand=True, padding=(0, 1), show_edge=False)
    table.add_column("", width=2, no_wrap=True)
    table.add_column("field", style="bold", overflow="fold", ratio=1, min_width=10)
    for title in TITLES:
        table.add_column(title, overflow="fold", ratio=2)
    table.add_column("class", overflow="fold", ratio=1, min_width=12)
    off: list[str] = []
    for d in diff.fields:
        ref = d.ours if reference == "expected" else d.before
        wrong = d.now != ref
        note = notes.get(d.field)
        loud = d.changed or wrong or note is not None
        mark = Text()
        if d.changed:
            mark.append("≠", style="bold green")
        if wrong:
            mark.append("⚠", style="bold yellow")
            off.append(d.field)
        if not mark:
            mark.append("=", style="dim")
        quiet = "" if loud else "dim"
        table.add_row(
            mark,
            Text(d.field, style="bold reverse" if loud else "dim"),
            cell(d.before, "red" if d.changed else quiet, pretty=loud),
            cell(d.ours, "bold green" if d.changed else quiet, pretty=loud),
            cell(d.now, "bold reverse yellow" if wrong else quiet, pretty=loud),
            _field_note(note),
        )
    images = (f.before, f.expected, f.actual)
    missing = [t for t, image in zip(TITLES, images, strict=True) if image is None]
    parts: list[RenderableType] = [head]
    if missing:
        parts.append(Text(f" no row in: {', '.join(missing)}", style="italic"))
    summary = Text(" ≠ changed by the run   ", style="green")
    summary.append(
        f"⚠ {len(off)} differ from {reference}" + (f" ({', '.join(off)})" if off else ""),
        style="bold yellow" if off else "dim",
    )
    summary.append("   = unchanged", style="dim")
    parts.append(summary)
    if error is not None:
        parts.append(Text(f" ✗ explanation failed: {error}", style="bold red"))
    elif explained is None:
        parts.append(Text(" … explaining (DeepDiff, this row only)", style="italic dim"))
    else:
        ignored = explained.get("ignored") or []
        line = Text(" ✓ explained by DeepDiff", style="dim")
        if ignored:
            line.append(f" · ignored columns: {', '.join(map(str, ignored))}", style="dim")
        parts.append(line)
    parts.append(table)
    if f.cls == "aggregate_mismatch" and explained is not None:
        parts.append(Text(f" {fmt.compact(explained.get('deepdiff'), 400)}", style="dim"))
    return Group(*parts)


class FindingDiffScreen(DiffScreen):
    HELP_TITLE = "Finding"

    class Explained(Message):
        def __init__(self, explained: dict[str, Any] | None, error: str | None) -> None:
            super().__init__()
            self.explained = explained
            self.error = error

    def __init__(
        self, run: data.RunRow | None, run_id: str, rec: data.Reconciliation, row: data.FindingRow
    ) -> None:
        super().__init__(run)
        self.run_id = run_id
        self.rec = rec
        self.row = row
        self.explained: dict[str, Any] | None = None

    def body(self) -> RenderableType:
        return render_finding(self.rec, self.row, self.explained)

    def on_mount(self) -> None:
        super().on_mount()
        self.status.set(run=self.run_id[:12], position=f"finding {self.row.index + 1:,}")
        self._explain()

    @work(thread=True, group="explain", exclusive=True, exit_on_error=False)
    def _explain(self) -> None:
        app = self.console_app
        try:
            found = data.explain(app.journal, app.settings, self.run_id, self.rec, self.row)
        except Exception as exc:  # a target gone or a key no longer found: say so here
            self.post_message(self.Explained(None, getattr(exc, "message", None) or str(exc)))
            return
        self.post_message(self.Explained(found, None))

    @on(Explained)
    def _explained(self, message: Explained) -> None:
        self.explained = message.explained
        self.query_one("#diff", Static).update(
            render_finding(self.rec, self.row, message.explained, message.error)
        )
