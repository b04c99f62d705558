"""The run as it happened: a lane per step (bars per segment), marker lanes, a time axis.

Time runs left to right over ``cols`` columns; each column is one time bucket and shows the
most important thing in it (a failed segment beats an applied one; a failure beats a
checkpoint). A cursor column selects a moment; the detail lines say what is there.
Everything it draws comes from one ``RunBundle`` (segments and markers, loaded by a worker),
so rendering never touches the journal.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.widget import Widget

from console.tui import fmt
from console.tui.data import Marker, RunBundle, SegmentSpan
from console.tui.describe import CHECKPOINT, CONFLICT, FAILURE, GUARD, PAUSE, ROLLBACK

ACTIVE = ("running", "rolling_back")
MAX_ZOOM = 4096
# What is under the cursor: the moment, its event (up to two lines), its segment. A fixed
# count, every line cut to the width: the widget's height then depends on the run's lanes and
# the width only, so moving the cursor or the markers arriving redraws it in place (a layout
# of the whole screen costs a frame several times over).
DETAIL_LINES = 4
EVENT_LINES = 2


@dataclass(frozen=True, slots=True)
class SegmentLook:
    glyph: str
    style: str
    rank: int
    word: str


SEGMENT_LOOK = {
    "applied": SegmentLook("█", "green", 10, "applied"),
    "dry_run": SegmentLook("◌", "cyan", 20, "dry run"),
    "reverted": SegmentLook("▚", "magenta", 30, "reverted"),
    "intent": SegmentLook("▒", "bold yellow", 60, "in flight"),
    "in_doubt": SegmentLook("?", "bold yellow", 70, "in doubt"),
    "failed": SegmentLook("✗", "bold red on #3a0000", 90, "failed"),
}
LANES = ("problems", "actions", "checkpoints")
LEGEND = [(v.glyph, v.style, v.word) for k, v in SEGMENT_LOOK.items() if k != "in_doubt"] + [
    (CHECKPOINT.glyph, CHECKPOINT.style, "checkpoint"),
    (FAILURE.glyph, FAILURE.style, "failure"),
    (CONFLICT.glyph, CONFLICT.style, "conflict"),
    (GUARD.glyph, GUARD.style, "guard"),
    (PAUSE.glyph, PAUSE.style, "pause"),
    (ROLLBACK.glyph, ROLLBACK.style, "rollback"),
    ("◎", "bold blue", "approval"),
    ("≡", "bold cyan", "reconcile"),
]


class Timeline(Widget, can_focus=True):
    HELP_TITLE = "Timeline"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "next_failure", "Next failure", id="timeline.next_failure"),
        Binding("F", "previous_failure", "Prev failure", id="timeline.previous_failure"),
        Binding("c", "next_checkpoint", "Next checkpoint", show=False, id="timeline.next_cp"),
        Binding("C", "previous_checkpoint", "Prev checkpoint", show=False, id="timeline.prev_cp"),
        Binding("l,right", "step(1)", "Later", show=False, id="timeline.later"),
        Binding("h,left", "step(-1)", "Earlier", show=False, id="timeline.earlier"),
        Binding("L,shift+right", "step(10)", "Much later", show=False, id="timeline.later10"),
        Binding("H,shift+left", "step(-10)", "Much earlier", show=False, id="timeline.earlier10"),
        Binding("n", "next_marker(1)", "Next event", show=False, id="timeline.next_marker"),
        Binding("N", "next_marker(-1)", "Prev event", show=False, id="timeline.prev_marker"),
        Binding("g,home", "start", "Start", show=False, id="timeline.start"),
        Binding("G,end", "end", "End", show=False, id="timeline.end"),
        Binding("plus,equals_sign", "zoom(2)", "Zoom in", id="timeline.zoom_in"),
        Binding("minus", "zoom(0.5)", "Zoom out", id="timeline.zoom_out"),
        Binding("0", "zoom_reset", "Fit run", show=False, id="timeline.zoom_fit"),
        Binding("enter", "open", "Event", show=False, id="timeline.open"),
    ]
    DEFAULT_CSS = """
    Timeline { height: auto; min-height: 8; padding: 0 1; }
    Timeline:focus { background: $boost; }
    """

    class Moved(Message):
        """The cursor moved: the status bar shows where."""

        def __init__(self, timeline: Timeline, at: float | None, marker: Marker | None) -> None:
            super().__init__()
            self.timeline = timeline
            self.at = at
            self.marker = marker

    class OpenEvent(Message):
        def __init__(self, seq: int) -> None:
            super().__init__()
            self.seq = seq

    def __init__(self, *, now: Callable[[], float], id: str | None = None) -> None:
        super().__init__(id=id)
        self.now = now
        self.bundle: RunBundle | None = None
        self.zoom = 1.0
        self.origin = 0.0
        self.cursor = 0.0
        self.selected: Marker | None = None
        self.follow = False
        self._times: list[float] = []
        self._cache: dict[tuple[int, float, float], list[list[tuple[str, str]]]] = {}
        self._lines = -1

    # --- data -----------------------------------------------------------------------------

    def show(self, bundle: RunBundle) -> None:
        first = self.bundle is None or self.bundle.run.id != bundle.run.id
        self.bundle = bundle
        self._times = [m.at for m in bundle.markers]
        self._cache.clear()
        if first:
            self.follow = bundle.run.status in ACTIVE
            self.zoom = 1.0
            self.origin = self.t_start
            self.cursor = self.t_start
        if self.follow:
            self.cursor = self.t_end
            self.origin = max(self.t_start, self.t_end - self.window)
        self.selected = self._marker_in_bucket()
        self._refresh()
        self._moved()

    @property
    def running(self) -> bool:
        return self.bundle is not None and self.bundle.run.status in ACTIVE

    @property
    def t_start(self) -> float:
        b = self.bundle
        return b.first_at if b is not None and b.first_at is not None else 0.0

    @property
    def t_end(self) -> float:
        b = self.bundle
        last = b.last_at if b is not None and b.last_at is not None else self.t_start
        if self.running:
            last = max(last, self.now())
        return max(last, self.t_start + 0.001)

    @property
    def window(self) -> float:
        return (self.t_end - self.t_start) / self.zoom

    # --- geometry -------------------------------------------------------------------------

    def _label_width(self) -> int:
        return max(10, min(22, self.size.width // 5))

    def _cols(self) -> int:
        return max(10, self.size.width - 2 - self._label_width() - 1)

    def _dt(self) -> float:
        return self.window / self._cols()

    def _col(self, t: float) -> int:
        return self._mapper()(t)

    def _mapper(self) -> Callable[[float], int]:
        """Time → column for the current window, with everything computed once (hot loop)."""
        cols = self._cols()
        origin = self.origin
        window = self.window
        dt = window / cols
        last = origin + window * (1 + 1e-9)

        def col(t: float) -> int:
            c = int((t - origin) / dt)
            # The window's last instant belongs to its last column, not to the one after it.
            return cols - 1 if c == cols and t <= last else c

        return col

    def _clamp(self) -> None:
        self.origin = max(self.t_start, min(self.origin, self.t_end - self.window))
        self.cursor = max(self.t_start, min(self.cursor, self.t_end))
        if self.cursor < self.origin:
            self.origin = self.cursor
        elif self.cursor >= self.origin + self.window:
            self.origin = self.cursor - self.window + self._dt()
        self.origin = max(self.t_start, min(self.origin, self.t_end - self.window))

    def _bucket(self) -> tuple[float, float]:
        dt = self._dt()
        col = self._col(self.cursor)
        lo = self.origin + col * dt
        return lo, lo + dt

    def _marker_in_bucket(self) -> Marker | None:
        if self.bundle is None:
            return None
        lo, hi = self._bucket()
        a = bisect.bisect_left(self._times, lo)
        b = bisect.bisect_left(self._times, hi)
        inside = self.bundle.markers[a:b]
        return max(inside, key=lambda m: (m.style.rank, -m.seq)) if inside else None

    def _segments_at(self) -> list[SegmentSpan]:
        if self.bundle is None:
            return []
        lo, hi = self._bucket()
        return [s for s in self.bundle.segments if s.start < hi and self._seg_end(s) >= lo]

    def _seg_end(self, s: SegmentSpan) -> float:
        if s.end is not None:
            return s.end
        return self.t_end if self.running else s.start

    # --- rendering ------------------------------------------------------------------------

    def _grid(self) -> list[list[tuple[str, str]]]:
        """Glyphs per lane and column for the current window (cached per window)."""
        assert self.bundle is not None
        cols = self._cols()
        key = (cols, self.origin, self.zoom)
        if key in self._cache:
            return self._cache[key]
        steps = [s.step_no for s in self.bundle.steps] or sorted(
            {s.step_no for s in self.bundle.segments}
        )
        lane_of = {step: n for n, step in enumerate(steps)}
        grid: list[list[tuple[str, str]]] = [[(" ", "")] * cols for _ in steps]
        rank: list[list[int]] = [[0] * cols for _ in steps]
        marker_grid = {lane: [(" ", "")] * cols for lane in LANES}
        marker_rank = {lane: [0] * cols for lane in LANES}
        col = self._mapper()
        end = self.t_end if self.running else None
        for seg in self.bundle.segments:
            lane = lane_of.get(seg.step_no)
            if lane is None:
                continue
            look = SEGMENT_LOOK.get(seg.status, SEGMENT_LOOK["intent"])
            seg_end = seg.end if seg.end is not None else (end if end is not None else seg.start)
            a = max(0, col(seg.start))
            b = min(cols - 1, col(seg_end))
            for c in range(a, b + 1):
                if look.rank > rank[lane][c]:
                    rank[lane][c] = look.rank
                    grid[lane][c] = (look.glyph, look.style)
        lo = bisect.bisect_left(self._times, self.origin)
        hi = bisect.bisect_left(self._times, self.origin + self.window + self._dt())
        for m in self.bundle.markers[lo:hi]:
            c = col(m.at)
            if 0 <= c < cols and m.style.rank > marker_rank[m.style.lane][c]:
                marker_rank[m.style.lane][c] = m.style.rank
                marker_grid[m.style.lane][c] = (m.style.glyph, m.style.style)
        out = grid + [marker_grid[lane] for lane in LANES]
        if len(self._cache) > 32:
            self._cache.clear()
        self._cache[key] = out
        return out

    def _axis(self, label_w: int, cols: int) -> tuple[Text, Text]:
        step = 14 if cols >= 56 else 11
        dt = self._dt()
        fine = dt * step < 1.0
        labels = Text(" " * (label_w + 1), style="dim")
        ticks = Text(" " * label_w + "┌", style="dim")
        c = 0
        while c < cols:
            t = self.origin + c * dt
            label = fmt.at(t)[3:] if fine else fmt.at(t)[:8]
            room = min(step, cols - c)
            labels.append((label if len(label) <= room else "").ljust(room), style="dim")
            ticks.append(("┬" + "─" * (step - 1))[: min(step, cols - c)], style="dim")
            c += step
        return labels, ticks

    def _refresh(self) -> None:
        """Repaint; re-layout only when the number of lines changed (the run's lanes
        arrived: see ``DETAIL_LINES``)."""
        lines = self._line_count()
        self.refresh(layout=lines != self._lines)
        self._lines = lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        # Known without rendering (Textual's default renders the widget to measure it).
        return self._line_count(width)

    def _line_count(self, width: int | None = None) -> int:
        """How many lines ``render`` draws (at ``width``: the current one by default)."""
        b = self.bundle
        if b is None:
            return 1
        if not b.segments and not b.markers:
            return 2
        steps = len(b.steps) or len({s.step_no for s in b.segments})
        # axis (2), a lane per step and per marker kind, the pointer, the detail, the legend
        return 2 + steps + len(LANES) + 1 + DETAIL_LINES + len(self._legend(width))

    def _width(self) -> int:
        return max(10, self.content_size.width)

    def _fit(self, text: Text, most: int) -> list[Text]:
        """``text`` wrapped to the width, at most ``most`` lines (the last one cut)."""
        lines = list(text.wrap(self.app.console, self._width(), overflow="ellipsis"))
        if len(lines) > most:
            last = Text("").join([lines[most - 1], Text(" "), lines[most]])
            last.truncate(self._width(), overflow="ellipsis")
            lines = [*lines[: most - 1], last]
        return lines

    def render(self) -> Text:
        if self.bundle is None:
            return Text("Loading the run…", style="dim")
        b = self.bundle
        label_w = self._label_width()
        cols = self._cols()
        if not b.segments and not b.markers:
            return Text(
                "Nothing on the timeline yet: this run has written no segment.\n"
                "It appears here as soon as the engine journals one.",
                style="dim",
            )
        cursor_col = self._col(self.cursor)
        grid = self._grid()
        lines: list[Text] = list(self._axis(label_w, cols))
        names = [f"{s.step_no} {s.name}" for s in b.steps] or [
            f"step {n}" for n in sorted({s.step_no for s in b.segments})
        ]
        names += ["problems", "actions", "checkpoints"]
        for n, (name, row) in enumerate(zip(names, grid, strict=False)):
            line = Text(name[:label_w].ljust(label_w), style="bold" if n < len(b.steps) else "dim")
            line.append("│", style="dim")
            # Runs of the same glyph become one span: a wide timeline is thousands of cells.
            run_text, run_style = "", ""
            for c, (glyph, style) in enumerate(row):
                if c == cursor_col:
                    line.append(run_text, style=run_style)
                    line.append(glyph if glyph != " " else "┊", style=f"{style} reverse".strip())
                    run_text, run_style = "", ""
                elif style == run_style:
                    run_text += glyph
                else:
                    line.append(run_text, style=run_style)
                    run_text, run_style = glyph, style
            line.append(run_text, style=run_style)
            lines.append(line)
        pointer = Text(" " * (label_w + 1 + max(0, cursor_col)) + "▲", style="bold")
        lines.append(pointer)
        lines.extend(self._detail())
        lines.extend(self._legend())
        out = Text("\n").join(lines)
        out.no_wrap = True  # every line fits already: ``_line_count`` is the height
        out.overflow = "ellipsis"
        return out

    def _detail(self) -> list[Text]:
        head = Text()
        head.append(f"▸ {fmt.at(self.cursor)}", style="bold")
        head.append(f"  zoom ×{self.zoom:g}  window {fmt.duration(self.window)}", style="dim")
        head.append("  ▶ following" if self.follow else "", style="cyan")
        if self.bundle is not None and self.bundle.markers_capped:
            head.append("  (first 20,000 markers shown)", style="dim")
        out = self._fit(head, 1)
        m = self.selected
        if m is not None:
            line = Text("  ")
            line.append(m.style.glyph, style=m.style.style)
            line.append(f" {m.kind}", style=m.style.style if m.style.failure else "bold")
            line.append(f"  seq {m.seq:,}  {fmt.at(m.at)}  ", style="dim")
            line.append(m.summary)
            out += self._fit(line, EVENT_LINES)
        segs = self._segments_at()
        if m is not None:
            # The selected event's own segment first.
            segs.sort(key=lambda seg: not _owns(seg, m))
        if segs:
            s = segs[0]
            look = SEGMENT_LOOK.get(s.status, SEGMENT_LOOK["intent"])
            more = f" (+{len(segs) - 1} more here)" if len(segs) > 1 else ""
            line = Text("  ")
            line.append(look.glyph, style=look.style)
            line.append(
                f" segment {s.seg_no} (step {s.step_no}) {look.word}: ops #{s.first_op:,}"
                f"–{s.last_op:,}{more}"
            )
            out += self._fit(line, 1)
        elif m is None:
            out.append(Text("  nothing here; f/F jump to failures, n/N to events", style="dim"))
        return out + [Text()] * (DETAIL_LINES - len(out))

    def _legend(self, width: int | None = None) -> list[Text]:
        out = Text()
        for glyph, style, word in LEGEND:
            out.append(glyph, style=style)
            out.append(f" {word}  ", style="dim")
        out.rstrip()
        return list(out.wrap(self.app.console, width or self._width()))

    # --- movement -------------------------------------------------------------------------

    def _moved(self) -> None:
        self.post_message(self.Moved(self, self.cursor if self.bundle else None, self.selected))

    def _go(self, t: float, marker: Marker | None = None) -> None:
        self.cursor = t
        self._clamp()
        self.selected = marker if marker is not None else self._marker_in_bucket()
        self.follow = self.running and self._col(self.cursor) >= self._col(self.t_end)
        self._refresh()
        self._moved()

    def _jump(self, direction: int, want: Callable[[Marker], bool], what: str) -> None:
        if self.bundle is None:
            return
        ref_seq = self.selected.seq if self.selected is not None else None
        markers = self.bundle.markers
        if direction > 0:
            candidates = (
                m
                for m in markers
                if want(m) and (m.at > self.cursor or (m.at == self.cursor and _after(m, ref_seq)))
            )
            found = next(candidates, None)
        else:
            found = None
            for m in reversed(markers):
                if want(m) and (
                    m.at < self.cursor or (m.at == self.cursor and _before(m, ref_seq))
                ):
                    found = m
                    break
        if found is None:
            self.app.bell()
            self.notify(f"No {'later' if direction > 0 else 'earlier'} {what}.", timeout=2)
            return
        self._go(found.at, found)

    def action_next_failure(self) -> None:
        self._jump(1, lambda m: m.style.failure, "failure")

    def action_previous_failure(self) -> None:
        self._jump(-1, lambda m: m.style.failure, "failure")

    def action_next_checkpoint(self) -> None:
        self._jump(1, lambda m: m.kind == "checkpoint", "checkpoint")

    def action_previous_checkpoint(self) -> None:
        self._jump(-1, lambda m: m.kind == "checkpoint", "checkpoint")

    def action_next_marker(self, direction: int) -> None:
        self._jump(direction, lambda m: True, "event")

    def action_step(self, columns: int) -> None:
        self._go(self.cursor + columns * self._dt())

    def action_start(self) -> None:
        self._go(self.t_start)

    def action_end(self) -> None:
        self._go(self.t_end)
        self.follow = self.running

    def action_zoom(self, factor: float) -> None:
        new = max(1.0, min(MAX_ZOOM, self.zoom * factor))
        if new == self.zoom:
            self.app.bell()
            return
        # Keep the cursor where it is on screen while the scale changes around it.
        offset = (self.cursor - self.origin) * self.zoom / new
        self.zoom = new
        self.origin = self.cursor - offset
        self._go(self.cursor, self.selected)

    def action_zoom_reset(self) -> None:
        self.zoom = 1.0
        self.origin = self.t_start
        self._go(self.cursor, self.selected)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow:
            self.action_end()
            self.follow = True
        self._refresh()
        self._moved()

    def action_open(self) -> None:
        if self.selected is not None:
            self.post_message(self.OpenEvent(self.selected.seq))


def _owns(seg: SegmentSpan, m: Marker) -> bool:
    if m.seg_no is not None:
        return seg.seg_no == m.seg_no
    return m.op_no is not None and seg.first_op <= m.op_no <= seg.last_op


def _after(m: Marker, ref_seq: int | None) -> bool:
    return ref_seq is None or m.seq > ref_seq


def _before(m: Marker, ref_seq: int | None) -> bool:
    return ref_seq is not None and m.seq < ref_seq
