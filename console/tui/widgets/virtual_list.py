"""A Line API list over a ``PagedSource``: rows render on demand from an LRU of pages.

Only the visible rows are rendered (``render_line``); a missing page renders as a
placeholder and is fetched by a thread worker that posts it back, its rows already rendered
to unstyled segments at the list's width, so the event loop only styles and crops them, and
only the lines of that page that are on screen are redrawn (Toolong's way). A refresh (the
journal moved) keeps the old pages on screen until the new ones arrive, so nothing flickers.
Memory is bounded by ``MAX_PAGES`` pages whatever the size of the run. Each line on screen
is one ``Strip`` (Strip's own ``apply_style``/``crop_extend`` keep every intermediate strip
alive in per-strip caches: thousands of objects the cyclic collector walks in every full
collection, which holds the GIL: the interface's longest freezes).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar, Generic, TypeVar

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.tui.data import PAGE_SIZE, Key, PagedSource
from console.tui.widgets.columns import Column, Layout

R = TypeVar("R")
MAX_PAGES = 24
LINE_CACHE = 256  # rendered lines kept: five 50-row screens
Plain = list[Segment]  # a row rendered without the list's styles, not cropped


class VirtualList(ScrollView, Generic[R], can_focus=True):
    """Rows from a paged source; a sticky header; a cursor; j/k/g/G and friends."""

    HELP_TITLE: ClassVar[str] = "List"
    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    EMPTY_TEXT: ClassVar[str] = "Nothing to show."

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="list.up"),
        Binding("g,home", "first", "First row", show=False, id="list.first"),
        Binding("G,end", "last", "Last row", show=False, id="list.last"),
        Binding("pagedown,ctrl+d,space", "page_down", "Page down", show=False, id="list.page_down"),
        Binding("pageup,ctrl+u", "page_up", "Page up", show=False, id="list.page_up"),
        Binding("enter", "open", "Open", id="list.open"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "virtual-list--cursor",
        "virtual-list--header",
        "virtual-list--placeholder",
    }

    DEFAULT_CSS = """
    VirtualList {
        height: 1fr;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    VirtualList > .virtual-list--cursor { background: $accent 40%; text-style: bold; }
    VirtualList:focus > .virtual-list--cursor { background: $accent 70%; }
    VirtualList > .virtual-list--header { color: $text-muted; text-style: bold; }
    VirtualList > .virtual-list--placeholder { color: $text-disabled; }
    """

    class Counted(Message):
        def __init__(self, generation: int, total: int, cursor: int | None) -> None:
            super().__init__()
            self.generation = generation
            self.total = total
            self.cursor = cursor

    class PageLoaded(Message):
        def __init__(
            self,
            generation: int,
            page: int,
            total: int,
            rows: list[Any],
            width: int,
            strips: list[Plain | None],
        ) -> None:
            super().__init__()
            self.generation = generation
            self.page = page
            self.total = total  # the count the page was fetched under
            self.rows = rows
            self.width = width  # the width ``strips`` were rendered at
            self.strips = strips

    class CursorMoved(Message):
        """The position changed (the status bar shows it)."""

        def __init__(self, widget: VirtualList[Any], index: int, total: int) -> None:
            super().__init__()
            self.widget = widget
            self.index = index
            self.total = total

        @property
        def control(self) -> VirtualList[Any]:
            return self.widget

    class Opened(Message):
        def __init__(self, widget: VirtualList[Any], row: Any) -> None:
            super().__init__()
            self.widget = widget
            self.row = row

        @property
        def control(self) -> VirtualList[Any]:
            return self.widget

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.source: PagedSource[R] | None = None
        self.total = 0
        self.cursor = 0
        self.generation = 0
        self.counted = False  # the first count of the current source arrived
        self.follow = False  # keep the cursor on the last row as rows arrive
        self._pages: OrderedDict[int, list[R]] = OrderedDict()
        self._stale: dict[int, list[R]] = {}
        self._wanted: set[int] = set()
        self._requested: set[int] = set()
        self._layout: Layout | None = None
        self._layout_width = -1
        self._fetch_scheduled = False
        # Rendered rows: a cursor move re-renders two rows, a scroll one (Toolong's trick).
        self._lines: LRUCache[tuple[int, int, bool, bool, int], Strip] = LRUCache(LINE_CACHE)
        # Per loaded page: its load stamp (part of the line cache key, so a page that arrives
        # invalidates its own rows only), and its rows pre-rendered by the worker.
        self._stamps: dict[int, int] = {}
        self._loads = 0
        self._rendered: dict[int, tuple[int, list[Plain | None]]] = {}
        self._styles: tuple[Style, Style, Style, Style] | None = None

    # --- data -----------------------------------------------------------------------------

    def set_source(self, source: PagedSource[R], *, keep: Key | None = None) -> None:
        """Show ``source`` (a new filter or sort): count it, then load what is visible."""
        self.source = source
        self.counted = False
        self._reload(keep=keep, keep_stale=False)

    def reload(self, *, keep: Key | None = None) -> None:
        """The journal moved: count again and refetch, showing the old rows meanwhile."""
        if self.source is not None:
            self._reload(keep=keep, keep_stale=True)

    def _reload(self, *, keep: Key | None, keep_stale: bool) -> None:
        assert self.source is not None
        self.generation += 1
        self._stale = dict(self._pages) if keep_stale else {}
        self._pages.clear()
        self._rendered.clear()
        self._requested.clear()
        self._wanted.clear()
        self._lines.clear()
        self._count(self.generation, self.source, keep)
        self.refresh()

    @work(thread=True, group="count", exclusive=True, exit_on_error=False)
    def _count(self, generation: int, source: PagedSource[R], keep: Key | None) -> None:
        total = source.count()
        cursor = source.index_of(keep) if keep is not None and total else None
        self.post_message(self.Counted(generation, total, cursor))

    @work(thread=True, group="pages", exclusive=True, exit_on_error=False)
    def _fetch(
        self,
        generation: int,
        source: PagedSource[R],
        total: int,
        wanted: list[tuple[int, R | None, R | None]],
        width: int,
        console: Console,
        near: range,
    ) -> None:
        # Rendering here, not in render_line, keeps Rich's text layout off the event loop;
        # only the rows ``near`` the screen: the GIL makes the rest a cost, not a saving.
        layout = Layout(self.columns_for(width), width)
        for page, prev_last, next_first in wanted:
            rows = source.page(page, total, prev_last, next_first)
            first = page * PAGE_SIZE
            strips = [
                _plain(self.render_row(row, layout), console) if first + n in near else None
                for n, row in enumerate(rows)
            ]
            self.post_message(self.PageLoaded(generation, page, total, rows, width, strips))

    def _on_virtual_list_counted(self, message: VirtualList.Counted) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        grew = message.total > self.total
        self.total = message.total
        self.counted = True
        if message.cursor is not None:
            self.cursor = message.cursor
        if self.follow and grew:
            self.cursor = max(0, self.total - 1)
        self.cursor = max(0, min(self.cursor, self.total - 1))
        self._stale = {p: rows for p, rows in self._stale.items() if p * PAGE_SIZE < self.total}
        for page in [p for p, rows in self._pages.items() if self._short(p, rows)]:
            self._stale[page] = self._pages.pop(page)  # the run grew: fetch its tail again
        self.virtual_size = Size(self.size.width, self.total + 1)
        self._lines.clear()
        self._scroll_cursor_into_view()
        self.refresh()
        self._announce()

    def _on_virtual_list_page_loaded(self, message: VirtualList.PageLoaded) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        page = message.page
        self._requested.discard(page)
        if message.total != self.total and self._short(page, message.rows):
            # Fetched before the count grew (the count is another worker): show it, refetch.
            self._stale[page] = message.rows
            self._want(page)
            self._refresh_rows(page * PAGE_SIZE, (page + 1) * PAGE_SIZE)
            return
        self._pages[page] = message.rows
        self._pages.move_to_end(page)
        self._rendered[page] = (message.width, message.strips)
        self._loads += 1
        self._stamps[page] = self._loads
        self._stale.pop(page, None)
        while len(self._pages) > MAX_PAGES:
            evicted, _ = self._pages.popitem(last=False)
            self._rendered.pop(evicted, None)
        self._refresh_rows(page * PAGE_SIZE, (page + 1) * PAGE_SIZE)
        if page == self.cursor // PAGE_SIZE:
            self._announce()

    def _short(self, page: int, rows: list[R]) -> bool:
        """Whether ``rows`` miss rows the count says ``page`` has."""
        return len(rows) < min(PAGE_SIZE, self.total - page * PAGE_SIZE)

    def _refresh_rows(self, start: int, end: int) -> None:
        """Redraw the rows in ``[start, end)`` that are on screen (nothing if none is)."""
        top = int(self.scroll_offset.y)
        first = max(start, top)
        last = min(end, top + self.body_height, self.total)
        if first < last:
            self.refresh_lines(first + 1, last - first)  # line 0 is the header

    def row_at(self, index: int) -> R | None:
        """The row at ``index`` if its page is in memory (else ask for it)."""
        page, offset = divmod(index, PAGE_SIZE)
        rows = self._pages.get(page)
        if rows is not None:
            self._pages.move_to_end(page)
        else:
            rows = self._stale.get(page)
            self._want(page)
        if rows is None or offset >= len(rows):
            return None
        return rows[offset]

    @property
    def current(self) -> R | None:
        return self.row_at(self.cursor) if self.total else None

    def _want(self, page: int) -> None:
        if page in self._requested or page in self._pages:
            return
        self._wanted.add(page)
        if not self._fetch_scheduled:
            self._fetch_scheduled = True
            self.call_after_refresh(self._fetch_wanted)

    def _fetch_wanted(self) -> None:
        self._fetch_scheduled = False
        if self.source is None or not self.counted or not self._wanted:
            return
        wanted: list[tuple[int, R | None, R | None]] = []
        for page in sorted(self._wanted):
            before = self._pages.get(page - 1)
            after = self._pages.get(page + 1)
            wanted.append((page, before[-1] if before else None, after[0] if after else None))
        self._requested |= self._wanted
        self._wanted.clear()
        width = self.scrollable_content_region.width
        top, height = int(self.scroll_offset.y), self.body_height
        near = range(top - height, top + 2 * height)
        console = self.app.console
        self._fetch(self.generation, self.source, self.total, wanted, width, console, near)

    # --- rendering ------------------------------------------------------------------------

    def columns_for(self, width: int) -> tuple[Column, ...]:
        """The columns to offer at this width (subclasses may offer more when wide)."""
        return self.COLUMNS

    def layout_for(self, width: int) -> Layout:
        if self._layout is None or self._layout_width != width:
            self._layout = Layout(self.columns_for(width), width)
            self._layout_width = width
        return self._layout

    def render_row(self, row: R, layout: Layout) -> Text:
        raise NotImplementedError

    def empty_text(self) -> str:
        return self.EMPTY_TEXT if self.counted else "Loading…"

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self.total + 1)
        self._scroll_cursor_into_view()

    def render_lines(self, crop: Region) -> list[Strip]:
        # Styles resolve through the DOM: once per frame, not once per line.
        base = self.rich_style
        self._styles = (
            base,
            base + self.get_component_rich_style("virtual-list--header"),
            base + self.get_component_rich_style("virtual-list--placeholder"),
            base + self.get_component_rich_style("virtual-list--cursor"),
        )
        try:
            return super().render_lines(crop)
        finally:
            self._styles = None

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base, header, placeholder, cursor = self._styles or (self.rich_style,) * 4
        layout = self.layout_for(width)
        if y == 0:
            return self._strip(layout.header(), width, header)
        index = self.scroll_offset.y + y - 1
        if index >= self.total:
            if index == 0:
                return self._strip(Text(f" {self.empty_text()}"), width, placeholder)
            return Strip.blank(width, base)
        selected = index == self.cursor
        page, offset = divmod(index, PAGE_SIZE)
        key = (index, width, selected, self.has_focus, self._stamps.get(page, 0))
        cached = self._lines.get(key)
        if cached is not None:
            return cached
        row = self.row_at(index)
        if row is None:
            return self._strip(Text(" …"), width, placeholder)
        style = cursor if selected else base
        rendered = self._rendered.get(page)
        plain = None
        if rendered is not None and rendered[0] == width and offset < len(rendered[1]):
            plain = rendered[1][offset]
        if plain is None:  # far from the screen at fetch, a stale page, or a new width
            plain = _plain(self.render_row(row, layout), self.app.console)
        strip = _finish(plain, style, width)
        self._lines[key] = strip
        return strip

    def _strip(self, text: Text, width: int, style: Style) -> Strip:
        return _finish(_plain(text, self.app.console), style, width)

    # --- cursor ---------------------------------------------------------------------------

    @property
    def body_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def move_to(self, index: int) -> None:
        if not self.total:
            return
        index = max(0, min(index, self.total - 1))
        self.follow = self.follow and index == self.total - 1
        if index == self.cursor:
            self._scroll_cursor_into_view()
            return
        before, top = self.cursor, self.scroll_offset.y
        self.cursor = index
        self._scroll_cursor_into_view()
        if self.scroll_offset.y == top:  # a scroll redraws everything anyway
            self._refresh_rows(before, before + 1)
            self._refresh_rows(index, index + 1)
        else:
            self.refresh()
        self._announce()

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_offset.y)
        height = self.body_height
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def _announce(self) -> None:
        self.post_message(self.CursorMoved(self, self.cursor, self.total))

    def action_cursor_down(self) -> None:
        self.move_to(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_to(self.cursor - 1)

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(self.total - 1)

    def action_page_down(self) -> None:
        self.move_to(self.cursor + self.body_height)

    def action_page_up(self) -> None:
        self.move_to(self.cursor - self.body_height)

    def action_open(self) -> None:
        row = self.current
        if row is not None:
            self.post_message(self.Opened(self, row))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            index = int(self.scroll_offset.y) + event.y - 1
            if index < self.total:
                if index == self.cursor and event.chain >= 2:
                    self.action_open()
                self.move_to(index)

    def on_unmount(self) -> None:
        # Free the pages and lines now, a little at a time by reference counting, rather
        # than all at once in the collector's next full pass (a closed run screen is a cycle).
        self._pages.clear()
        self._stale.clear()
        self._rendered.clear()
        self._lines.clear()

    def on_focus(self) -> None:
        self._announce()
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()


def _plain(text: Text, console: Console) -> Plain:
    """``text`` as one unstyled line (safe in a worker thread: it reads the console only)."""
    return [s for s in text.render(console) if s.text != "\n"]


def _finish(plain: Plain, style: Style, width: int) -> Strip:
    """``plain`` under ``style``, cut or padded to ``width``: one new strip."""
    line = list(Segment.apply_style(plain, style))
    return Strip(Segment.adjust_line_length(line, width, style), width)
